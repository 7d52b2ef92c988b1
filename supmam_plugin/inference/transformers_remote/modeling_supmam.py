"""transformers' model of a SupMAM audio encoder written by ``supmam-export --format transformers``
(remote code of this export: imports transformers, torch and the files beside it only).

    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    extractor = AutoFeatureExtractor.from_pretrained(folder, trust_remote_code=True)
    out = model(**extractor(waveform_16k, sampling_rate=16000, return_tensors="pt"))
    out.pooler_output      # (B, D): the clip embedding supmam_plugin.inference gives ("clip")
    out.last_hidden_state  # (B, L, D): every patch's final, normed token (its "patches")
"""
import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .configuration_supmam import SupmamAudioConfig
from .vit import VitEncoder, VitEncoderConfig


class SupmamAudioModel(PreTrainedModel):
    """The plugin's ViT encoder: forward(input_values (B, frames, mel), the normalised fbank of
    SupmamFeatureExtractor) -> last_hidden_state (B, L, D), pooler_output (B, D) (their mean)."""

    config_class = SupmamAudioConfig
    base_model_prefix = "supmam"
    main_input_name = "input_values"

    def __init__(self, config: SupmamAudioConfig):
        super().__init__(config)
        self.encoder = VitEncoder(VitEncoderConfig(**config.encoder))
        self.post_init()

    def _init_weights(self, module):
        """Every weight comes from model.safetensors: nothing to initialise."""

    def forward(self, input_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        features = self.encoder.features(input_values)
        return BaseModelOutputWithPooling(last_hidden_state=features["patches"], pooler_output=features["clip"])
