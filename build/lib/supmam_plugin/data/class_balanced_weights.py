"""Per-clip sampling weights that balance the classes of a (multi-label) training split."""
from __future__ import annotations

from typing import Sequence

import numpy as np

# AudioMAE's constants (dataset/audioset/gen_weight.py): w_c = 1000 / (n_c + 0.01)
WEIGHT_SCALE = 1000.0
COUNT_SMOOTHING = 0.01


def class_balanced_weights(
    labels: Sequence[Sequence[int]],
    num_classes: int,
    scale: float = WEIGHT_SCALE,
    smoothing: float = COUNT_SMOOTHING,
) -> np.ndarray:
    """Sampling weight of every clip, (N,) float64.

    With n_c the number of clips that carry class c (each listed label counts once):

        w_c      = scale / (n_c + smoothing)          per class, ~ 1 / count
        weight_i = sum over the classes c of clip i of w_c

    so a rare class is drawn about as often as a common one. This is AudioMAE's
    ``dataset/audioset/gen_weight.py`` (itself from Yuan Gong's AST ``gen_weight_file``),
    which computes the weights of AS-2M's training list for its weighted random sampler;
    only the ratios matter for sampling. ``labels[i]`` are the class indices of clip i.
    """
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    per_clip = np.fromiter((len(clip) for clip in labels), dtype=np.int64, count=len(labels))
    flat = np.fromiter((c for clip in labels for c in clip), dtype=np.int64, count=int(per_clip.sum()))
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        raise ValueError(f"class indices must lie in [0, {num_classes}); got {flat.min()}..{flat.max()}")
    counts = np.bincount(flat, minlength=num_classes)  # n_c
    class_weight = scale / (counts + smoothing)  # w_c
    clip_of_label = np.repeat(np.arange(len(per_clip)), per_clip)
    return np.bincount(clip_of_label, weights=class_weight[flat], minlength=len(per_clip))
