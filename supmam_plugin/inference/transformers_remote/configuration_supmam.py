"""transformers' config of a SupMAM audio encoder written by ``supmam-export --format transformers``.

Remote code of this export (``trust_remote_code=True``), written for it: it imports transformers,
torch and the files beside it, never fairseq or supmam_plugin.
"""
from transformers import PretrainedConfig


class SupmamAudioConfig(PretrainedConfig):
    """``encoder``: the ViT's sizes, as the VitEncoderConfig fields of vit.py beside this file."""

    model_type = "supmam_audio"

    def __init__(self, encoder: dict | None = None, **kwargs):
        self.encoder = dict(encoder or {})
        super().__init__(**kwargs)
