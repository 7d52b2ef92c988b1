"""A pretraining model's view of one clip: its masked spectrogram and reconstruction, or its CLAP
target against its prediction (``supmam-plot-reconstruction``)."""
from __future__ import annotations

import os
import textwrap

import numpy as np
import torch


# ----------------------------------------------------------------------------- pure functions


def unpatchify(patches: torch.Tensor, patch_size: int, grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of ``supmam_model.patchify``: (B, T/p * F/p, p*p) -> (B, T, F).

    grid = (T/p, F/p); patch index t * (F/p) + f, each patch row-major (frame, mel bin)."""
    batch = patches.size(0)
    p = patch_size
    grid_t, grid_f = grid
    if patches.shape[1:] != (grid_t * grid_f, p * p):
        raise ValueError(f"patches of shape {tuple(patches.shape)} do not fit a {grid} grid of {p}x{p} patches")
    x = patches.reshape(batch, grid_t, grid_f, p, p)
    return x.permute(0, 1, 3, 2, 4).reshape(batch, grid_t * p, grid_f * p)


def denormalise_patches(normalised: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Inverse of ``normalise_patches`` with the statistics of ``reference`` (the input patches):
    x * sqrt(var_ref + 1e-6) + mean_ref, per patch (unbiased variance, as in normalise_patches)."""
    mean = reference.mean(dim=-1, keepdim=True)
    var = reference.var(dim=-1, keepdim=True)
    return normalised * (var + 1e-6).sqrt() + mean


def reconstruct(
    fbank: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor, patch_size: int, norm_pix: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectrograms from a spectrogram-target model's output.

    fbank (B, T, F) model input; prediction (B, L, p*p); mask (B, L), 1 = masked.
    Returns (prediction alone (B, T, F), mixed (B, T, F): visible patches from the input,
    masked ones from the prediction). With ``norm_pix`` each predicted patch is de-normalised
    with the mean / std of the input patch at its place."""
    from ..models.supmam_model import patchify

    grid = (fbank.size(1) // patch_size, fbank.size(2) // patch_size)
    inputs = patchify(fbank, patch_size)
    predicted = denormalise_patches(prediction, inputs) if norm_pix else prediction
    masked = mask.to(torch.bool).unsqueeze(-1)
    mixed = torch.where(masked, predicted.to(inputs.dtype), inputs)
    return unpatchify(predicted, patch_size, grid), unpatchify(mixed, patch_size, grid)


def patch_cosine(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, L, D) x (B, L, D) -> (B, L) cosine similarity of each patch's vectors."""
    return torch.nn.functional.cosine_similarity(prediction.float(), target.float(), dim=-1, eps=1e-8)


# ----------------------------------------------------------------------------- model and audio


def load_pretraining_model(path: str, teacher_checkpoint: str | None = None, device: str = "cpu"):
    """(SupmamModel in eval mode on ``device``, info dict) of a ``supmam`` pretraining checkpoint or
    AudioMAE's full ``pretrained.pth`` (:meth:`SupmamModel.from_checkpoint`)."""
    import supmam_plugin  # noqa: F401  (registers the model and task with fairseq)
    from ..models.supmam_model import SupmamModel

    model = SupmamModel.from_checkpoint(path, teacher_checkpoint).to(device)
    num_classes = 0 if model.cls_branch is None else int(model.cls_branch.mlp[3].out_features)
    info = {"path": path, "name": os.path.basename(path), "num_updates": model.num_updates,
            "sample_rate": model.fbank_settings.sample_rate, "num_classes": num_classes}
    return model, info


def load_clip(audio_path: str, model, sample_rate: int = 16000) -> dict:
    """The model input of ``audio_path`` as the dataset makes it (first span, no random crop):
    {"source" (1, N), "source_lengths" (1,), "teacher_source" (1, S) and "teacher_source_lengths"
    (1,) (what the model's teacher hears, if it has one), "seconds"}."""
    from ..core.audio import read_mono, resample
    from ..core.fbank import FbankSettings, require_one_frame

    settings = FbankSettings(sample_rate=sample_rate)
    clip_samples = settings.num_samples_for(model.cfg.input_frames)
    clip_seconds = clip_samples / sample_rate
    native, native_rate = read_mono(audio_path)
    span = native[: int(np.ceil(clip_seconds * native_rate))]
    source = resample(span, native_rate, sample_rate)[:clip_samples]
    require_one_frame(len(source), settings, audio_path)
    out = {
        "source": torch.from_numpy(np.ascontiguousarray(source)).unsqueeze(0),
        "source_lengths": torch.tensor([len(source)], dtype=torch.long),
        "seconds": len(native) / native_rate,
    }
    teacher = model.teacher
    if teacher is not None:
        span = native[: int(np.ceil(teacher.num_samples / teacher.sample_rate * native_rate))]
        heard = resample(span, native_rate, teacher.sample_rate)[: teacher.num_samples]
        padded = np.zeros(teacher.num_samples, dtype=np.float32)
        padded[: len(heard)] = heard
        out["teacher_source"] = torch.from_numpy(padded).unsqueeze(0)
        out["teacher_source_lengths"] = torch.tensor([len(heard)], dtype=torch.long)
    return out


@torch.no_grad()
def run_model(model, clip: dict, clip_id: int = 0) -> dict:
    """Model outputs (batch of one, on the CPU as float32) plus the input fbank."""
    device = next(model.parameters()).device
    source = clip["source"].to(device)
    lengths = clip["source_lengths"].to(device)
    fbank = model.input_fbank(source, lengths)
    kwargs = {"fbank": fbank, "clip_ids": torch.tensor([clip_id], dtype=torch.long, device=device)}
    if "teacher_source" in clip:
        kwargs["teacher_source"] = clip["teacher_source"].to(device)
        kwargs["teacher_source_lengths"] = clip["teacher_source_lengths"].to(device)
    out = model(**kwargs)
    result = {k: v.detach().float().cpu() for k, v in out.items() if isinstance(v, torch.Tensor)}
    result["fbank"] = fbank.float().cpu()
    return result


# ----------------------------------------------------------------------------- figure


def _frames_in_clip(num_samples: int, sample_rate: int) -> int:
    from ..core.fbank import FbankSettings

    return FbankSettings(sample_rate=sample_rate).num_frames(num_samples)


def plot(out: dict, model, info: dict, audio_path: str, out_png: str, clip_id: int, valid_frames: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    cfg = model.cfg
    p = cfg.patch_size
    grid_t, grid_f = model.encoder.grid
    fbank = out["fbank"][0].numpy()  # (T, F)
    frames, bins = fbank.shape
    mask = out["mask"][0].numpy().reshape(grid_t, grid_f)  # 1 = masked
    seconds_per_frame = model.fbank_settings.frame_shift_ms / 1000.0
    extent = (0.0, frames * seconds_per_frame, 0.0, float(bins))
    # colour scale from the clip's own frames (the zero padding past its end is one flat value)
    vmin, vmax = np.percentile(fbank[: max(1, valid_frames)], [1, 99.5])

    teacher_target = cfg.target == "teacher"
    num_panels = 3 if teacher_target else 4
    wide = frames / bins >= 3
    ncols = 1 if wide else 2
    nrows = -(-num_panels // ncols)
    panel_w = 10.0 if wide else 5.0
    panel_h = max(2.2, min(4.0, panel_w * bins / frames)) if wide else 4.0
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_w * ncols + 1.0, panel_h * nrows + 1.2), squeeze=False)
    axes = axes.ravel()
    for ax in axes[num_panels:]:
        ax.axis("off")

    wrap = 120 if wide else 62

    def set_title(ax, title):
        ax.set_title(textwrap.fill(title, wrap), fontsize=9)

    def spectrogram(ax, image, title):
        shown = ax.imshow(image.T, origin="lower", aspect="auto", extent=extent, cmap="magma",
                          vmin=vmin, vmax=vmax, interpolation="nearest")
        set_title(ax, title)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel bin")
        if valid_frames < frames:
            ax.axvline(valid_frames * seconds_per_frame, color="cyan", linestyle="--", linewidth=1)
        return shown

    def patch_box(ax, t, f, **style):
        ax.add_patch(Rectangle((t * p * seconds_per_frame, f * p), p * seconds_per_frame, p, fill=False, **style))

    masked_fraction = float(mask.mean())
    end_note = f"; dashed: end of audio ({valid_frames} frames)" if valid_frames < frames else ""
    image = spectrogram(axes[0], fbank, f"(a) input log-mel fbank, {frames} frames x {bins} mel bins "
                        f"(normalised){end_note}")
    fig.colorbar(image, ax=axes[0], fraction=0.04, pad=0.01)

    image = spectrogram(axes[1], fbank, f"(b) mask: {int(mask.sum())}/{mask.size} patches of {p}x{p} masked "
                f"(shaded; mask_ratio {cfg.mask_ratio:g})")
    fig.colorbar(image, ax=axes[1], fraction=0.04, pad=0.01)
    shade = np.repeat(np.repeat(mask, p, axis=0), p, axis=1)  # (T, F)
    axes[1].imshow(np.ma.masked_where(shade.T == 0, shade.T), origin="lower", aspect="auto", extent=extent,
                   cmap="Greys", vmin=0, vmax=1.5, alpha=0.75, interpolation="nearest")
    for t in range(grid_t):
        for f in range(grid_f):
            if mask[t, f]:
                patch_box(axes[1], t, f, edgecolor="white", linewidth=0.3)

    if not teacher_target:
        predicted, mixed = reconstruct(out["fbank"], out["prediction"], out["mask"], p, cfg.norm_pix_loss)
        how = "de-normalised with each input patch's mean/std" if cfg.norm_pix_loss else "raw predictions"
        image = spectrogram(axes[2], mixed[0].numpy(),
                            f"(c) reconstruction: visible patches from the input, masked ones predicted ({how})")
        fig.colorbar(image, ax=axes[2], fraction=0.04, pad=0.01)
        target = out["target"][0]
        pred = out["prediction"][0]
        m = out["mask"][0].bool()
        mse_masked = float((pred[m] - target[m]).square().mean()) if m.any() else float("nan")
        image = spectrogram(axes[3], predicted[0].numpy(),
                            f"(d) prediction alone, all patches (masked-patch MSE to the "
                            f"{'norm_pix ' if cfg.norm_pix_loss else ''}target: {mse_masked:.3f}; the loss "
                            f"never sees the visible ones)")
        fig.colorbar(image, ax=axes[3], fraction=0.04, pad=0.01)
    else:
        cos = patch_cosine(out["prediction"], out["target"])[0].numpy().reshape(grid_t, grid_f)
        masked_cos = float(cos[mask > 0].mean()) if mask.any() else float("nan")
        visible_cos = float(cos[mask == 0].mean()) if (mask == 0).any() else float("nan")
        ax = axes[2]
        image = ax.imshow(cos.T, origin="lower", aspect="auto", extent=extent, cmap="RdBu_r", vmin=-1, vmax=1,
                          interpolation="nearest")
        for t in range(grid_t):
            for f in range(grid_f):
                if mask[t, f]:
                    patch_box(ax, t, f, edgecolor="black", linewidth=1.0)
        set_title(ax, f"(c) cosine(prediction, {cfg.teacher} teacher target) per patch (outlined: masked); mean cosine: "
                      f"masked {masked_cos:.3f}, visible {visible_cos:.3f}")
        ax.set_xlabel(f"time (s); {grid_t} patches")
        ax.set_ylabel(f"mel bin; {grid_f} patches")
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.01, label="cosine")

    updates = f", {info['num_updates']} updates" if info.get("num_updates") else ""
    fig.suptitle(
        f"{info['name']}{updates}: target={cfg.target}, mask_ratio {cfg.mask_ratio:g} "
        f"({masked_fraction:.0%} masked), clip id {clip_id}\n{os.path.basename(audio_path)}",
        fontsize=11,
    )
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def plot_reconstruction(checkpoint: str, audio_path: str, out_png: str, clip_id: int = 0,
                        teacher_checkpoint: str | None = None, device: str = "cpu") -> str:
    model, info = load_pretraining_model(checkpoint, teacher_checkpoint, device)
    clip = load_clip(audio_path, model, info["sample_rate"])
    out = run_model(model, clip, clip_id)
    valid_frames = _frames_in_clip(int(clip["source_lengths"][0]), info["sample_rate"])
    return plot(out, model, info, audio_path, out_png, clip_id, min(valid_frames, model.cfg.input_frames))
