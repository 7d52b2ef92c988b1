"""``supmam-export``: a checkpoint as a portable encoder: ``model.safetensors`` + ``config.json``,
read without fairseq by :mod:`supmam_plugin.portable`.

    supmam-export CHECKPOINT OUT_DIR [--class-names dict.label.txt]

CHECKPOINT: a ``supmam`` pretraining checkpoint (the encoder), a fine-tuned ``supmam_classifier``
(the encoder and its head, with the class names of the run's ``dict.{labels}.txt`` when it is still
there) or AudioMAE's ``pretrained.pth`` / ``finetuned.pth``. ``config.json`` holds the encoder's
sizes, the patch and input settings, the fbank settings and normalisation, the class names, where it
came from (path, SHA-256, kind) and the SHA-256 of ``model.safetensors``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import torch

logger = logging.getLogger("supmam_plugin.export")


def _class_names(path: str | None, task_cfg: dict, num_classes: int, checkpoint: str) -> list[str]:
    """The head's class names: from ``path`` (one per line, the first word), else the fairseq run's
    ``dict.{labels}.txt`` (``task_cfg``: its task config; empty for AudioMAE files), else "0", "1",
    ... (with a warning)."""
    from ..data.manifest import read_class_list

    if path is None and task_cfg.get("data"):
        guess = os.path.join(str(task_cfg["data"]), f"dict.{task_cfg.get('labels') or 'label'}.txt")
        path = guess if os.path.isfile(guess) else None
    if path is None:
        logger.warning(f"{checkpoint}: no class names (give --class-names FILE); the export numbers its classes")
        return [str(i) for i in range(num_classes)]
    names = read_class_list(path)
    if len(names) != num_classes:
        raise ValueError(f"{path}: {len(names)} class names for a head of {num_classes} classes")
    return names


def export(checkpoint: str, out_dir: str, class_names: str | None = None) -> dict[str, str]:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.json``; returns their paths."""
    from safetensors.torch import save_file

    from ..data.fbank import FbankSettings
    from ..models.checkpoints import audiomae_head, fairseq_configs, read_checkpoint, read_encoder
    from ..models.vit_encoder import VitEncoderConfig
    from ..data.file_hash import file_sha256
    from ..portable import FORMAT, fbank_description

    state = read_checkpoint(checkpoint)
    found = read_encoder(checkpoint, state)
    arch = VitEncoderConfig(**found.architecture)
    tensors = {f"encoder.{k}": v.float().contiguous() for k, v in found.weights.items()}
    head, multi_label, task_cfg = None, False, {}
    if found.kind == "supmam_classifier":
        head = {k: v for k, v in state["model"].items() if k.startswith(("fc_norm.", "head."))}
        task_cfg = fairseq_configs(state, checkpoint)[2]
        multi_label = bool(task_cfg.get("multi_label", False))
    elif found.kind == "audiomae":
        head = audiomae_head(state, checkpoint)
        multi_label = True  # AudioMAE's fine-tuning is AudioSet's (BCE)
    head_config = None
    if head:
        tensors.update({f"classifier.{k}": v.float().contiguous() for k, v in head.items()})
        num_classes = int(head["head.weight"].shape[0])
        head_config = {"num_classes": num_classes, "multi_label": multi_label,
                       "class_names": _class_names(class_names, task_cfg, num_classes, checkpoint)}
    os.makedirs(out_dir, exist_ok=True)
    weights_path, config_path = os.path.join(out_dir, "model.safetensors"), os.path.join(out_dir, "config.json")
    save_file(tensors, weights_path, metadata={"format": FORMAT})
    config = {
        "format": FORMAT,
        "encoder": {"embed_dim": arch.encoder_embed_dim, "layers": arch.encoder_layers, "heads": arch.encoder_heads,
                    "mlp_ratio": arch.mlp_ratio, "patch_size": arch.patch_size, "input_frames": arch.input_frames,
                    "num_mel_bins": arch.num_mel_bins, "cls_token": bool(arch.cls_token),
                    "position_layout": str(arch.position_layout), "positions": "encoder.pos_embed (1, L, D), time-major"},
        "fbank": fbank_description(FbankSettings(sample_rate=found.sample_rate)),
        "head": head_config,
        "source": {"path": os.path.abspath(checkpoint), "sha256": file_sha256(checkpoint), "kind": found.kind},
        "weights_sha256": file_sha256(weights_path),
    }
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    return {"weights": weights_path, "config": config_path}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supmam-export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="supmam / supmam_classifier .pt, or AudioMAE .pth")
    parser.add_argument("out_dir", help="folder to write model.safetensors and config.json to")
    parser.add_argument("--class-names", default=None, help="class list (dict.label.txt) of a classifier's head")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import supmam_plugin  # noqa: F401

    from ..models.checkpoints import CheckpointError

    try:
        written = export(args.checkpoint, args.out_dir, args.class_names)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"supmam-export: error: {e}", file=sys.stderr)
        return 1
    for path in written.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
