"""Embeddings from a trained encoder, for users who only want features.

    from supmam_plugin.inference.encoder import load_encoder

    encoder = load_encoder("checkpoint_last.pt", device="cuda")
    out = encoder.embed([wave_a, wave_b], sample_rate=44100, layers=(5, 11))
    out["clip"]       # (2, D) float32
    out["layer_11"]   # (2, L, D): output of block 11 (0-based), before the final LayerNorm
    out = encoder.embed_files(["a.wav", "b.flac"], patches=True)
    out["patches"]    # (2, L, D): final (normed) encoder outputs, L = 512 for 1024 x 128 inputs
    frames, times_ms = encoder.embed_frames([wave_a, wave_b], sample_rate=44100)
    frames[0]         # (T, D): one embedding every 160 ms (a column of patches), times_ms[0] (T,)

Checkpoints: a fine-tuned ``supmam_classifier`` or a ``supmam`` pretraining checkpoint (fairseq
``.pt``; those written before the AudioMAE layout too), or AudioMAE's released ``pretrained.pth`` /
``finetuned.pth`` (read by :mod:`supmam_plugin.core.checkpoints`). Only the encoder is used
(a classifier's ``fc_norm`` and ``head`` are not).

Input: waveforms in [-1, 1] (float) or integer PCM (scaled: int16 / 32768), mono, or with a
channel axis when ``channels='last'`` ((N, C), as soundfile.read returns) or ``'first'`` ((C, N)):
the channels are averaged; resampled to 16 kHz (soxr, high quality) when given at another rate. The model input is exactly the training one: Kaldi fbank (25 ms / 10 ms), AudioMAE's
normalisation, zero frames past a clip's end (``batch_fbank`` with lengths, so a clip's embedding
does not depend on the other clips of its batch).

Long clips: the encoder sees ``input_frames`` frames (1024 = 10.24 s). A longer clip is cut into
windows of exactly ``input_frames`` frames: window k starts at k x 10.24 s; the last window ends
at the clip's end (so it is full too and overlaps the one before it, rather than being a short
tail padded with silence). Every output (clip, patches, layers) of such a clip is the plain mean
over its windows. A clip of at most one window is padded (with zero frames, as in training).
"""
from __future__ import annotations

import os
from typing import Iterator, Sequence

import numpy as np
import torch

from ..core.audio import downmix, pcm_to_float, read_mono, resample
from ..core.checkpoints import build_encoder, read_encoder
from ..core.fbank import FbankSettings, batch_fbank, require_one_frame
from ..core.vit import VitEncoder, VitEncoderConfig

SAMPLE_RATE = 16000


def load_encoder(path: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 random_init: bool = False, seed: int = 0) -> "AudioEncoder":
    """The encoder of a checkpoint (see the module docstring for the kinds), in eval mode on ``device``,
    its weights in ``dtype`` (torch.bfloat16 / float16 for speed on a GPU; the fbank is computed in
    float32 whatever it is, and outputs are float32).

    ``random_init``: the checkpoint's architecture and input pipeline (its position table included)
    with NONE of its learned weights: initialised as training from scratch initialises it (MAE's
    init, :meth:`VitEncoder.init_module_weights`) from torch seed ``seed``; the pretrained encoder's
    "random twin" for linear probes.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError (a ValueError): a file that holds no encoder we can build, with the reason.
    """
    path = os.fspath(path)
    found = read_encoder(path)
    config = VitEncoderConfig(**found.architecture)
    if random_init:
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
            torch.manual_seed(seed)
            encoder = VitEncoder(config)
            encoder.apply(encoder.init_module_weights)
        if "pos_embed" in found.weights:  # a fixed table is data, not a learned weight
            encoder.pos_embed.copy_(found.weights["pos_embed"].to(encoder.pos_embed.dtype))
        source = f"random init (seed {seed}) of the architecture of {path}"
    else:
        encoder = build_encoder(found, path)
        source = path
    return AudioEncoder(encoder, device=device, sample_rate=found.sample_rate, source=source, dtype=dtype)


class AudioEncoder:
    """A VitEncoder with its input pipeline: waveforms -> fbank -> encoder -> numpy features."""

    def __init__(self, encoder: "VitEncoder", device: str | torch.device = "cpu", sample_rate: int = SAMPLE_RATE,
                 source: str | None = None, dtype: torch.dtype = torch.float32):
        self.encoder = encoder.to(torch.device(device), dtype).eval()
        self.settings = FbankSettings(sample_rate=sample_rate)
        self.source = source
        self.input_frames = encoder.grid[0] * encoder.patch_embed.patch_size[0]
        self.window_samples = self.settings.num_samples_for(self.input_frames)  # exactly input_frames frames
        self.window_stride = self.input_frames * self.settings.window_shift  # 10.24 s for 1024 frames

    @property
    def sample_rate(self) -> int:
        return self.settings.sample_rate

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights are (moving the encoder moves the computation)."""
        return self.encoder.pos_embed.device

    @property
    def num_layers(self) -> int:
        return len(self.encoder.blocks)

    @property
    def embed_dim(self) -> int:
        return self.encoder.norm.normalized_shape[0]

    @property
    def num_patches(self) -> int:
        return self.encoder.num_patches

    def windows(self, num_samples: int) -> list[tuple[int, int]]:
        """(start, stop) samples of the windows a clip of ``num_samples`` (at 16 kHz) is cut into."""
        if num_samples <= self.window_samples:
            return [(0, num_samples)]
        count = 1 + -(-(num_samples - self.window_samples) // self.window_stride)  # ceil
        starts = [k * self.window_stride for k in range(count - 1)] + [num_samples - self.window_samples]
        return [(s, s + self.window_samples) for s in starts]

    def embed(self, waveforms, sample_rate: int = SAMPLE_RATE, layers: Sequence[int] = (), patches: bool = False,
              batch_size: int = 16, names: Sequence[str] | None = None, channels: str | None = None,
              ) -> dict[str, np.ndarray]:
        """Embeddings of clips: ``waveforms`` is one clip (1-D), a list of 1-D clips (any lengths)
        or a (B, N) array, mono, at ``sample_rate``; numpy or torch; float in [-1, 1] or integer PCM
        (int16 and int32 are scaled to [-1, 1], uint8 centred first). With ``channels='last'`` each
        clip is (N, C) (as soundfile.read returns it), with ``'first'`` (C, N): channels are averaged.

        Returns float32 numpy arrays: {"clip": (B, D)}, plus "patches": (B, L, D) when ``patches``
        and "layer_{i}": (B, L, D) (block i's output, 0-based) for i in ``layers``. ``batch_size``
        windows go through the encoder at a time. ``names`` (one per clip) only label errors.
        """
        clips = self._prepare(waveforms, sample_rate, names, channels)
        layers = self._check_layers(layers)
        keys = ["clip"] + (["patches"] if patches else []) + [f"layer_{i}" for i in layers]
        jobs = [(c, start, stop) for c, clip in enumerate(clips) for start, stop in self.windows(len(clip))]
        out = {k: None for k in keys}
        counts = np.zeros(len(clips), dtype=np.int64)
        for batch, features in self._encode(clips, jobs, layers, batch_size):
            for k in keys:
                values = features[k].float().cpu().numpy()
                if out[k] is None:
                    out[k] = np.zeros((len(clips),) + values.shape[1:], dtype=np.float32)
                for j, (c, _, _) in enumerate(batch):
                    out[k][c] += values[j]
            for c, _, _ in batch:
                counts[c] += 1
        scale = (1.0 / counts).astype(np.float32)
        return {k: v * scale.reshape((-1,) + (1,) * (v.ndim - 1)) for k, v in out.items()}

    # --- frame-level (timestamp) embeddings -----------------------------------------------------

    @property
    def frame_hop_ms(self) -> float:
        """Hop of frame embeddings: one per column of patches (16 fbank frames of 10 ms: 160 ms).
        The encoder sees a patch, not a frame: a finer hop would need shifted passes."""
        return self.encoder.patch_embed.patch_size[0] * self.settings.frame_shift_ms

    def frame_times_ms(self, num_samples: int) -> np.ndarray:
        """(T,) float64 timestamps (ms) of a clip's frame embeddings: the centre of each column of
        patches (its 16 fbank frames' 25 ms windows: 87.5 ms, then every 160 ms), every one within the
        clip (a clip shorter than the first centre gets one embedding, at its middle)."""
        duration_ms = 1000.0 * num_samples / self.sample_rate
        patch_frames = self.encoder.patch_embed.patch_size[0]
        first = (patch_frames - 1) / 2 * self.settings.frame_shift_ms + self.settings.frame_length_ms / 2
        if duration_ms < first:
            return np.array([duration_ms / 2])
        return first + self.frame_hop_ms * np.arange(int((duration_ms - first) // self.frame_hop_ms) + 1)

    def embed_frames(self, waveforms, sample_rate: int = SAMPLE_RATE, layer: int | None = None, batch_size: int = 16,
                     names: Sequence[str] | None = None, channels: str | None = None,
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Frame (timestamp) embeddings of clips (inputs as :meth:`embed`): ([(T_i, D) float32 per
        clip], [(T_i,) timestamps in ms per clip], :meth:`frame_times_ms`). A frame is the mean over
        frequency of one column of patch tokens (the final normed outputs, or block ``layer``'s).
        Long clips are cut into back-to-back windows of ``input_frames`` (10.24 s = 64 columns), so
        the hop stays regular across windows; the last window is padded with zero frames, as in
        training, and frames past the clip's end are dropped. Memory: ``batch_size`` windows at a time
        and the outputs (a 10-minute clip at 160 ms: 3750 x D)."""
        clips = self._prepare(waveforms, sample_rate, names, channels)
        (layer,) = self._check_layers([layer]) if layer is not None else (None,)
        key = "patches" if layer is None else f"layer_{layer}"
        times = [self.frame_times_ms(len(clip)) for clip in clips]
        columns, rows = self.encoder.grid
        out = [np.zeros((len(t), self.embed_dim), dtype=np.float32) for t in times]
        jobs = []  # back-to-back windows, as many as the frames need
        for c, clip in enumerate(clips):
            for k in range(-(-len(times[c]) // columns)):
                start = k * self.window_stride
                jobs.append((c, start, min(start + self.window_samples, len(clip))))
        for batch, features in self._encode(clips, jobs, [] if layer is None else [layer], batch_size):
            tokens = features[key].float()
            frames = tokens.reshape(len(tokens), columns, rows, -1).mean(dim=2).cpu().numpy()  # (B, T, D)
            for j, (c, start, _) in enumerate(batch):
                first = start // self.window_stride * columns
                count = min(columns, len(times[c]) - first)
                out[c][first:first + count] = frames[j, :count]
        return out, times

    def embed_frames_batch(self, audio: torch.Tensor, layer: int | None = None, batch_size: int = 16
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`embed_frames` of a (B, N) tensor of equal-length sounds at the encoder's rate, as
        tensors on the audio's device (what the HEAR and X-ARES wrappers return): (B, T, D) float32
        frames and (B, T) float32 timestamps in ms."""
        if audio.ndim != 2:
            raise ValueError(f"audio must be (n_sounds, n_samples), got shape {tuple(audio.shape)}")
        frames, times = self.embed_frames(audio, self.sample_rate, layer, batch_size)
        return (torch.from_numpy(np.stack(frames)).to(audio.device),
                torch.from_numpy(np.stack(times).astype(np.float32)).to(audio.device))

    # --- shared steps ---------------------------------------------------------------------------

    def _prepare(self, waveforms, sample_rate, names, channels) -> list[np.ndarray]:
        """Mono float32 clips at the encoder's rate, each at least one fbank frame long."""
        clips = self._as_clips(waveforms, names, channels)
        if sample_rate != self.sample_rate:
            clips = [resample(c, sample_rate, self.sample_rate) for c in clips]
        for i, clip in enumerate(clips):
            require_one_frame(len(clip), self.settings, names[i] if names else f"clip {i}")
        return clips

    def _check_layers(self, layers) -> list[int]:
        layers = sorted({int(i) for i in layers})
        for i in layers:
            if not 0 <= i < self.num_layers:
                raise ValueError(f"layer {i} does not exist: the encoder has blocks 0..{self.num_layers - 1}")
        return layers

    def _encode(self, clips, jobs, layers, batch_size) -> Iterator[tuple[list, dict]]:
        """Run the encoder over ``jobs`` ((clip, start, stop) sample spans), ``batch_size`` at a time:
        yields (the batch's jobs, VitEncoder.features of their fbank)."""
        device = self.device
        with torch.inference_mode():
            for b in range(0, len(jobs), max(1, batch_size)):
                batch = jobs[b:b + max(1, batch_size)]
                pieces = [clips[c][start:stop] for c, start, stop in batch]
                lengths = torch.tensor([len(p) for p in pieces])
                source = torch.zeros(len(pieces), int(lengths.max()))
                for j, piece in enumerate(pieces):
                    source[j, :len(piece)] = torch.from_numpy(piece)
                fbank = batch_fbank(source.to(device), lengths.to(device), self.input_frames, self.settings)
                yield batch, self.encoder.features(fbank, layers)

    def embed_files(self, paths: Sequence[str], layers: Sequence[int] = (), patches: bool = False,
                    batch_size: int = 16, where: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """``embed`` of audio files (any rate libsndfile reads; channels averaged), all in memory;
        ``where`` (one per path, e.g. 'manifest.tsv:12') is added to read errors."""
        parts = list(self.iter_files(paths, layers, patches, batch_size, where=where))
        if not parts:
            raise ValueError("embed_files: no paths given")
        return {k: np.concatenate([p[k] for _, p in parts]) for k in parts[0][1]}

    def iter_files(self, paths: Sequence[str], layers: Sequence[int] = (), patches: bool = False,
                   batch_size: int = 16, files_per_step: int | None = None, where: Sequence[str] | None = None,
                   frames: bool = False, frame_layer: int | None = None,
                   ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Embed files a few at a time: yields (index of the step's first file, ``embed`` output);
        with ``frames``, the output also holds "frames" and "frame_times_ms": ``embed_frames``'s lists."""
        step = files_per_step or max(1, batch_size)
        for first in range(0, len(paths), step):
            clips, names = [], []
            for i in range(first, min(first + step, len(paths))):
                samples, rate = read_mono(paths[i], where=where[i] if where else None)
                if rate != self.sample_rate:
                    samples = resample(samples, rate, self.sample_rate)
                clips.append(samples)
                names.append(f"{where[i]}: {paths[i]}" if where else str(paths[i]))
            out = self.embed(clips, self.sample_rate, layers, patches, batch_size, names)
            if frames:
                out["frames"], out["frame_times_ms"] = self.embed_frames(clips, self.sample_rate, frame_layer,
                                                                         batch_size, names)
            yield first, out

    @staticmethod
    def _as_clips(waveforms, names, channels: str | None = None) -> list[np.ndarray]:
        """Mono float32 clips of what ``embed`` accepts (see its docstring)."""
        if isinstance(waveforms, torch.Tensor):
            waveforms = _to_numpy(waveforms)
        if isinstance(waveforms, np.ndarray):
            clip_ndim = 1 if channels is None else 2
            if waveforms.ndim == 2 and channels is None and waveforms.shape[1] < FbankSettings().window_size:
                raise ValueError(
                    f"waveforms of shape {waveforms.shape}: {waveforms.shape[1]} samples per clip is less than one "
                    "25 ms frame; if this is one clip as (samples, channels), as soundfile.read returns it, pass "
                    "channels='last' (the channels are averaged)")
            if waveforms.ndim == clip_ndim:
                waveforms = [waveforms]
            elif waveforms.ndim != clip_ndim + 1:
                raise ValueError(f"waveforms of shape {tuple(waveforms.shape)}: give (N,) samples of one clip, (B, N) "
                                 "clips, or a list of (N,) clips; with channels='last'/'first', (N, C) / (C, N) per clip")
        clips = []
        for i, w in enumerate(waveforms):
            if isinstance(w, torch.Tensor):
                w = _to_numpy(w)
            label = names[i] if names else f"clip {i}"
            w = np.ascontiguousarray(downmix(pcm_to_float(w, label), channels, label), dtype=np.float32)
            if not np.isfinite(w).all():
                raise ValueError(f"{label}: contains NaN or infinite samples")
            clips.append(w)
        if not clips:
            raise ValueError("no clips given")
        return clips


def _to_numpy(samples: torch.Tensor) -> np.ndarray:
    """A tensor's samples as numpy: float types (bf16 / fp16 included) as float32, integers as they are."""
    samples = samples.detach().cpu()
    return (samples.float() if samples.is_floating_point() else samples).numpy()
