"""``supmam-export-clap``: a CLAP trained here with the HTS-AT audio tower, in LAION-CLAP's release
layout, for ``model.teacher=laion_clap model.teacher_checkpoint=OUT.pt``.

    supmam-export-clap CHECKPOINT OUT.pt

CHECKPOINT: a fairseq checkpoint of model ``clap`` with ``model.audio_tower=htsat``
(``fairseq-hydra-train --config-dir .../recipes/clap --config-name htsat``). OUT.pt holds
``{"state_dict": {"audio_branch.*", "audio_projection.*", "logit_scale_a"}}``: tensors only (it opens
with torch's weights-only loading), the keys of a released ``630k-*.pt``'s audio side. A CLAP
with the ViT tower needs no export: ``model.teacher=clap`` reads its checkpoint.
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supmam-export-clap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="fairseq checkpoint of model clap with model.audio_tower=htsat")
    parser.add_argument("out", help="the .pt file to write (LAION-CLAP's release layout)")
    args = parser.parse_args(argv)
    import torch

    from ..core.checkpoints import CheckpointError
    from ..teachers.laion_clap import release_state_of_trained_clap

    try:
        release, htsat_model = release_state_of_trained_clap(args.checkpoint)
    except (CheckpointError, FileNotFoundError) as e:
        print(f"supmam-export-clap: error: {e}", file=sys.stderr)
        return 1
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save(release, args.out)
    print(f"wrote {args.out} ({len(release['state_dict'])} tensors); use it as model.teacher=laion_clap "
          f"model.teacher_checkpoint={args.out} model.clap_model={htsat_model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
