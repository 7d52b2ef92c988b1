"""``supmam-export``: a checkpoint as a portable encoder: ``model.safetensors`` + ``config.json``,
read without fairseq by :mod:`supmam_plugin.inference.export`.

    supmam-export CHECKPOINT OUT_DIR [--class-names dict.label.txt] [--format portable|transformers]

CHECKPOINT: a ``supmam`` pretraining checkpoint (the encoder), a fine-tuned ``supmam_classifier``
(the encoder and its head, with the class names of the run's ``dict.{labels}.txt`` when it is still
there) or AudioMAE's ``pretrained.pth`` / ``finetuned.pth``. ``config.json`` holds the encoder's
sizes, the patch and input settings, the fbank settings and normalisation, the class names, where it
came from (path, SHA-256, kind) and the SHA-256 of ``model.safetensors``.

``--format transformers`` writes the encoder as a transformers folder instead, loaded with
``AutoModel.from_pretrained(OUT_DIR, trust_remote_code=True)`` and ``AutoFeatureExtractor`` without
fairseq or this plugin (:mod:`supmam_plugin.inference.transformers_export`).
"""
from __future__ import annotations

import argparse
import logging
import sys

from ..inference.export import write_export


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supmam-export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="supmam / supmam_classifier .pt, or AudioMAE .pth")
    parser.add_argument("out_dir", help="folder to write model.safetensors and config.json to")
    parser.add_argument("--class-names", default=None, help="class list (dict.label.txt) of a classifier's head")
    parser.add_argument("--format", default="portable", choices=["portable", "transformers"],
                        help="portable: read by supmam_plugin.inference.export (with a classifier's head); "
                             "transformers: a folder AutoModel loads with trust_remote_code=True (the encoder)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..core.checkpoints import CheckpointError

    try:
        if args.format == "transformers":
            from ..inference.transformers_export import write_transformers_export

            written = write_transformers_export(args.checkpoint, args.out_dir)
        else:
            written = write_export(args.checkpoint, args.out_dir, args.class_names)
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"supmam-export: error: {e}", file=sys.stderr)
        return 1
    for path in written.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
