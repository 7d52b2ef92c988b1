"""Teacher ``checkpoint_encoder`` (formerly ``supmam``): the frozen encoder of a checkpoint this plugin reads, as the target.

Any encoder :func:`~supmam_plugin.core.checkpoints.read_encoder` reads: a ``supmam`` pretraining
checkpoint, a fine-tuned ``supmam_classifier`` (a teacher that knows the labels) or AudioMAE's
``pretrained.pth`` / ``finetuned.pth``. It hears what its checkpoint was trained on (16 kHz, its
``input_frames`` of Kaldi fbank: 10.24 s for 1024 frames), computed exactly as in training (zero
frames past a clip's end). Its native map is one block's output over its patch grid,
(B, D, freq patches, time patches); the targets are that map sampled at the student's patch
centres (the map itself when the grids match) and normalised per patch (layer norm without
weights: the residual stream's scale varies across channels and layers, data2vec's
``layer_norm_targets``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.fbank import FbankSettings, batch_fbank
from ..core.checkpoints import CheckpointError, build_encoder, read_encoder
from .teacher import Teacher, fit_to_length, register_teacher


@register_teacher("checkpoint_encoder")
class CheckpointEncoderTeacher(Teacher):
    """Args:
        checkpoint: path of a plugin checkpoint (``.pt``) or an AudioMAE ``.pth``.
        layer: the block whose output is the target (0-based; negative counts from the end; -1:
            the last block, before the final LayerNorm, which a fine-tuned classifier never
            trains: it pools before it).
        grid, student_seconds, interpolation: the student's side (:class:`Teacher`).
        state: the file as ``read_checkpoint`` read it, when the caller has it already.
    """

    checkpoint_help = "a checkpoint of this plugin (.pt: pretraining or fine-tuned classifier) or an AudioMAE .pth"
    kinds: tuple[str, ...] = ()  # the checkpoint kinds (read_encoder's) this teacher takes; () = any
    cuda_dtype = torch.bfloat16  # a ViT's residual stream can leave float16's range

    def __init__(self, checkpoint: str, grid, layer: int = -1, interpolation: str = "bilinear",
                 student_seconds: float | None = None, state=None):
        super().__init__(grid, student_seconds, interpolation)
        found = read_encoder(checkpoint, state)
        if self.kinds and found.kind not in self.kinds:
            raise CheckpointError(f"{checkpoint}: a checkpoint of kind {found.kind!r}, but model.teacher={self.name} reads "
                                  f"{' or '.join(self.kinds)} checkpoints ({self.checkpoint_help}); for any encoder "
                                  "of this plugin use model.teacher=checkpoint_encoder")
        self.checkpoint = str(checkpoint)
        self.encoder = build_encoder(found, self.checkpoint, what="teacher encoder")
        depth = len(self.encoder.blocks)
        if not -depth <= int(layer) < depth:
            raise ValueError(f"model.teacher_layer={layer}: {checkpoint} has blocks 0..{depth - 1} "
                             f"(or -{depth}..-1 from the end)")
        self.layer = int(layer) % depth
        self.settings = FbankSettings(sample_rate=found.sample_rate)
        self.sample_rate = found.sample_rate
        self.input_frames = self.encoder.grid[0] * self.encoder.patch_embed.patch_size[0]
        self.seconds = self.input_frames * self.settings.frame_shift_ms / 1000  # the map's span, as the student's
        self.output_dim = self.encoder.norm.normalized_shape[0]
        self.freeze()

    @classmethod
    def from_config(cls, cfg, grid, student_seconds: float | None = None, cached: bool = False) -> "CheckpointEncoderTeacher":
        """The teacher of a model config (``model.teacher_checkpoint``, ``teacher_layer``,
        ``teacher_interpolation``); built whole even when ``cached`` (its maps are normalised with its
        own weights)."""
        return cls(cfg.teacher_checkpoint, grid, cfg.teacher_layer, cfg.teacher_interpolation, student_seconds)

    @property
    def num_samples(self) -> int:
        """Samples that give exactly ``input_frames`` fbank frames (as the student's crop)."""
        return self.settings.num_samples_for(self.input_frames)

    @torch.no_grad()
    def token_map(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) waveform at ``sample_rate`` with its valid ``lengths`` (B,) (None: all valid)
        -> (B, D, freq patches, time patches) float output of block ``layer``."""
        if waveform.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(waveform.shape)}")
        device = self.encoder.pos_embed.device
        waveform = fit_to_length(waveform, self.num_samples).to(device, torch.float32)
        lengths = (torch.full((len(waveform),), waveform.shape[1]) if lengths is None
                   else lengths.clamp(max=waveform.shape[1])).to(device)
        return self.map_of_fbank(batch_fbank(waveform, lengths, self.input_frames, self.settings))

    @torch.no_grad()
    def map_of_fbank(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, input_frames, mel) normalised fbank -> (B, D, freq patches, time patches) float
        output of block ``layer`` (the encoder's tokens are time-major: t * F + f)."""
        tokens = self.encoder.features(fbank, layers=(self.layer,))[f"layer_{self.layer}"]  # (B, T * F, D)
        time_patches, freq_patches = self.encoder.grid
        return tokens.float().reshape(len(tokens), time_patches, freq_patches, -1).permute(0, 3, 2, 1)

    def finish_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, L, D) sampled block outputs -> each patch's vector normalised (zero mean, unit variance)."""
        return F.layer_norm(targets.float(), targets.shape[-1:])

    def identity(self) -> dict:
        from ..core.file_hash import file_sha256

        return {"teacher": self.name, "variant": f"layer {self.layer}", "checkpoint_sha256": file_sha256(self.checkpoint)}
