"""``supmam-convert-audiomae``: check an AudioMAE checkpoint (and optionally strip it to its encoder).

    supmam-convert-audiomae pretrained.pth --check
    supmam-convert-audiomae pretrained.pth encoder.pth

No conversion is needed to fine-tune from AudioMAE: ``model.pretrained=/path/pretrained.pth`` (or
``finetuned.pth``) loads AudioMAE's released checkpoints directly, taking the encoder architecture from
the file. This command reads INPUT exactly as ``model.pretrained`` does, loads it into an encoder built
from the architecture it finds, prints that architecture (as ``model.*`` overrides) and ``ok``, and exits
0; on a file that would not load it prints the reason and exits 1.

With OUTPUT (and no ``--check``) it also writes the encoder alone in AudioMAE's layout
(``{"model": state_dict}``: no decoder, no head; ``cls_token`` with its position folded in and a zero
[CLS] row in ``pos_embed``, whose other rows are the input's table as it is (AudioMAE's layout for an
AudioMAE file); a fine-tuned file's missing ``norm`` with unit weight and zero bias): a smaller file that
``model.pretrained`` reads the same way and AudioMAE-style loaders accept.

INPUT may also be a supmam / supmam_classifier checkpoint (fairseq ``.pt``, legacy ones included):
its encoder is checked (and written in AudioMAE's layout) the same way.
"""
from __future__ import annotations

import argparse
import logging
import sys

import torch


def check(path: str):
    """(encoder loaded from ``path``, architecture); raises CheckpointError when it does not load."""
    from ..core.checkpoints import build_encoder, read_encoder

    found = read_encoder(path)
    return build_encoder(found, path), found.architecture


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="supmam-convert-audiomae", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", help="AudioMAE pretrained.pth / finetuned.pth (or a supmam checkpoint)")
    parser.add_argument("output", nargs="?", help="where to write the encoder alone in AudioMAE's layout")
    parser.add_argument("--check", action="store_true", help="only validate INPUT and print its architecture")
    args = parser.parse_args(argv)
    if args.check and args.output:
        parser.error("--check writes nothing: give OUTPUT or --check, not both")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from ..core.checkpoints import CheckpointError, encoder_to_audiomae_state

    try:
        encoder, architecture = check(args.input)
        if args.output:
            torch.save(encoder_to_audiomae_state(encoder), args.output)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.input}: encoder architecture:")
    for name, value in architecture.items():  # the clip length is the task's (model.input_frames follows it)
        print(f"  task.target_frames={value}" if name == "input_frames" else f"  model.{name}={value}")
    if args.output:
        print(f"wrote {args.output}")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
