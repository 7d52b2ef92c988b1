"""transformers' feature extractor of a SupMAM audio encoder written by ``supmam-export --format
transformers`` (remote code of this export: imports transformers, torch, numpy and fbank.py beside it).

Mono float audio at the model's rate (16 kHz) -> ``input_values`` (B, frames, mel): the Kaldi fbank
of fbank.py, frames past each clip's end zeroed, padded or cropped to the model's frames and
normalised, as supmam_plugin.inference prepares one window of a clip.
"""
import numpy as np
import torch
from transformers import BatchFeature, SequenceFeatureExtractor

from .fbank import FbankSettings, batch_fbank


class SupmamFeatureExtractor(SequenceFeatureExtractor):
    model_input_names = ["input_values"]

    def __init__(self, feature_size: int = 128, sampling_rate: int = 16000, padding_value: float = 0.0,
                 input_frames: int = 1024, **kwargs):
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs)
        self.input_frames = input_frames

    def __call__(self, raw_speech, sampling_rate: int | None = None, return_tensors: str | None = "pt",
                 **kwargs) -> BatchFeature:
        """One clip (1-D) or a list of clips (1-D each, any lengths), float mono at ``sampling_rate``."""
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            raise ValueError(f"this model hears {self.sampling_rate} Hz audio, not {sampling_rate} Hz: resample first")
        single = isinstance(raw_speech, (np.ndarray, torch.Tensor)) and np.asarray(raw_speech).ndim == 1
        clips = [np.asarray(c, dtype=np.float32) for c in ([raw_speech] if single else raw_speech)]
        if any(c.ndim != 1 for c in clips):
            raise ValueError("each clip must be 1-D mono audio (average the channels first)")
        lengths = torch.tensor([len(c) for c in clips])
        source = torch.zeros(len(clips), int(lengths.max()))
        for i, clip in enumerate(clips):
            source[i, :len(clip)] = torch.from_numpy(clip)
        settings = FbankSettings(sample_rate=self.sampling_rate, num_mel_bins=self.feature_size)
        values = batch_fbank(source, lengths, self.input_frames, settings)
        return BatchFeature({"input_values": values}, tensor_type=return_tensors)
