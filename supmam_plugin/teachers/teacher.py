"""What every frozen teacher is: the interface the model, the task and the cache rely on.

A teacher hears audio (``sample_rate``, ``seconds``: read from each clip's file at that rate, the
same span the student crops), turns it into its NATIVE map (B, C, rows, steps) -- C channels, rows
along frequency (low first), steps along time -- which is what a target cache stores, and samples
that map at the student's patch centres to give one target vector per student patch
(B, T * F, output_dim), in the student's time-major patch order. Each teacher owns its device and
precision policy (:meth:`Teacher.follow`) and says what made its maps (:meth:`Teacher.identity`,
recorded by target caches).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from ..core.checkpoints.legacy import TEACHER_ALIASES

logger = logging.getLogger(__name__)

INTERPOLATIONS = ("bilinear", "nearest", "bicubic")  # F.grid_sample modes


def patch_centres(grid: tuple, student_seconds: float, teacher_seconds: float, device) -> torch.Tensor:
    """Where each student patch centre falls in a teacher's (time, freq) map, in ``F.grid_sample``'s
    normalised coordinates: (1, T, F, 2) as (x = freq, y = time).

    Time is aligned in seconds: the student's T patches span ``student_seconds``, the teacher's map
    spans ``teacher_seconds``; patches past the teacher's end take its last step. Frequency spans
    the same range in both. With equal spans and sizes every centre falls on a map cell's centre
    (the map is returned as it is); with equal spans this is exactly a bilinear resize
    (``F.interpolate(..., align_corners=False)``).
    """
    time_patches, freq_patches = grid
    centres = (torch.arange(time_patches, device=device, dtype=torch.float64) + 0.5) * student_seconds / time_patches
    y = 2.0 * centres / teacher_seconds - 1.0  # in [-1, 1] over the teacher's span
    x = 2.0 * (torch.arange(freq_patches, device=device, dtype=torch.float64) + 0.5) / freq_patches - 1.0
    return torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1).unsqueeze(0).float()  # (1, T, F, 2)


class Teacher(nn.Module):
    """A frozen model whose features are the student's per-patch targets.

    Subclasses set ``name`` (the registered name), ``sample_rate``, ``seconds``, ``output_dim`` and
    ``checkpoint``, and define :meth:`token_map` and :meth:`identity`; they may override
    :meth:`finish_targets` (e.g. a projection) and ``cuda_dtype``.

    Args (the student's side, the same for every teacher):
        grid: the student's patch grid (time, freq).
        student_seconds: the time the student's ``grid`` spans (10.24 s for 1024 frames);
            None: the teacher's own ``seconds``.
        interpolation: ``F.grid_sample`` mode sampling the native map at the patch centres.
    """

    name: str = ""
    checkpoint_help: str = ""  # what model.teacher_checkpoint must be, for error messages
    cuda_dtype: torch.dtype = torch.float16  # the weights' precision on a GPU (float32 on the CPU)
    followed: torch.device | None = None  # the device of the last follow (a part built later goes there)

    def __init__(self, grid: tuple, student_seconds: float | None = None, interpolation: str = "bilinear"):
        super().__init__()
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.grid = tuple(grid)
        self.student_seconds = student_seconds
        self.interpolation = interpolation

    # --- what the teacher hears and gives -------------------------------------------------------

    @property
    def num_samples(self) -> int:
        """Samples of one clip at ``sample_rate``: shorter clips are zero-padded, longer ones cropped."""
        return int(round(self.seconds * self.sample_rate))

    def token_map(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) zero-padded waveform at ``sample_rate``, valid samples ``lengths`` (B,) or None (all)
        -> (B, C, rows, steps) native map (what a cache stores)."""
        raise NotImplementedError

    def identity(self) -> dict:
        """What makes this teacher's native maps: {"teacher", "variant", "checkpoint_sha256"}; a target
        cache records it and a model whose teacher differs refuses the cache."""
        raise NotImplementedError

    def finish_targets(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, L, C) sampled map -> (B, L, output_dim) targets; by default the sampled map itself."""
        return targets

    # --- shared behaviour -------------------------------------------------------------------------

    @torch.no_grad()
    def targets_from_token_map(self, token_map: torch.Tensor) -> torch.Tensor:
        """(B, C, rows, steps) native map -> (B, T * F, output_dim) float32 targets: the map sampled
        at the student's patch centres (:func:`patch_centres`) and flattened row-major over (time,
        freq), patch index = t * F + f, the student's patch order."""
        time_major = token_map.float().transpose(2, 3)  # (B, C, steps, rows)
        where = patch_centres(self.grid, self.student_seconds or self.seconds, self.seconds, token_map.device)
        sampled = F.grid_sample(time_major, where.expand(len(time_major), -1, -1, -1), mode=self.interpolation,
                                padding_mode="border", align_corners=False)  # (B, C, T, F)
        return self.finish_targets(sampled.flatten(2).transpose(1, 2)).float()

    def forward(self, waveform: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) waveform at ``sample_rate`` -> (B, T * F, output_dim) float32 targets, no grad."""
        return self.targets_from_token_map(self.token_map(waveform, lengths))

    def follow(self, device: torch.device, force: bool = False) -> "Teacher":
        """Move to ``device`` when not there yet (``force``: even so): float32 on the CPU, ``cuda_dtype``
        on a GPU. The student's precision (fairseq's bf16 / fp16) never reaches the teacher: it is kept
        out of the student's module tree."""
        self.followed = torch.device(device)
        first = next(self.parameters(), None)  # None: nothing built yet (a cached teacher's maps need no weights)
        if first is not None and (force or first.device != self.followed):
            self.to(self.followed)
            if self.followed.type == "cuda":
                self.to(self.cuda_dtype)
        return self

    def train(self, mode: bool = True):
        """The teacher is frozen: it stays in eval mode whatever is asked."""
        return super().train(False)

    def freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()


def fit_to_length(waveform: torch.Tensor, samples: int) -> torch.Tensor:
    """(B, S) -> (B, samples): zero-pad at the end or crop."""
    missing = samples - waveform.shape[-1]
    if missing > 0:
        return F.pad(waveform, (0, missing))
    return waveform[..., :samples]


TEACHERS: dict[str, type] = {}  # registered name -> Teacher subclass


def register_teacher(name: str):
    """Class decorator: register a :class:`Teacher` subclass under ``name`` (``model.teacher=name``).
    The class builds itself from the model config with ``from_config(cfg, grid, student_seconds, cached)``
    (``cached``: its maps will come from a target cache, so it may leave out what only ``token_map``
    needs)."""

    def register(cls):
        if name in TEACHERS:
            raise ValueError(f"teacher {name!r} is registered twice ({TEACHERS[name].__name__}, {cls.__name__})")
        if not issubclass(cls, Teacher):
            raise ValueError(f"teacher {name!r}: {cls.__name__} is not a Teacher")
        cls.name = name
        TEACHERS[name] = cls
        return cls

    return register


def teacher_class(name: str) -> type:
    """The teacher registered as ``name``; an old name (``TEACHER_ALIASES``: ``supmam`` for
    ``checkpoint_encoder``) is read as today's, with a warning."""
    if name in TEACHER_ALIASES:
        logger.warning(f"teacher {name!r} is now called {TEACHER_ALIASES[name]!r}; reading it as that")
        name = TEACHER_ALIASES[name]
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}: choose one of {sorted(TEACHERS)}")
    return TEACHERS[name]
