"""``supmam-plot-reconstruction``: what a pretraining checkpoint makes of one clip.

CHECKPOINT: a ``supmam`` pretraining checkpoint (fairseq ``.pt``) or AudioMAE's full ``pretrained.pth``
(encoder and decoder; run with AudioMAE's settings: spectrogram target, mask ratio 0.8, norm_pix).

    supmam-plot-reconstruction CHECKPOINT AUDIO_FILE --out FILE.png [--clip-id 0] \\
        [--teacher-checkpoint PATH] [--device cpu]

The clip is read as in training (``AudioClipDataset`` without random crop): mono, resampled to
the model's rate (16 kHz), its first ``input_frames`` x 10 ms (plus one window) kept, Kaldi
fbank, frames past its end zeroed, padded to ``input_frames``. The model runs in eval mode; its
mask depends only on (model.seed, --clip-id), so a rerun (or another checkpoint of the same
run) shows the same mask.

One PNG, panels:
  (a) the input log-mel spectrogram (normalised as the model sees it);
  (b) the mask: masked patches shaded over the spectrogram;
  target=spectrogram:
    (c) the reconstruction: visible patches from the input, masked ones predicted. The targets
        are norm_pix (each patch to zero mean, unit variance), so each predicted patch is
        de-normalised with the mean / std of the input patch at its place, as MAE's
        visualisations do (without norm_pix the predictions are shown as they are);
    (d) the prediction alone, every patch (visible ones included) de-normalised the same way;
  target=teacher:
    (c) cosine similarity of predicted and teacher feature vectors of each patch, on the patch
        grid (time x freq), masked patches outlined; mean cosine over masked and visible
        patches in the title. The teacher hears the same file as it does in training (LAION-CLAP:
        its first 10 s at 48 kHz).

The model is built from the checkpoint's own ``cfg.model`` and weights (no task, so the
training data folder need not exist).
"""
from __future__ import annotations

import argparse
import sys

from ..pictures.reconstruction import plot_reconstruction


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supmam-plot-reconstruction", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a supmam pretraining checkpoint (.pt) or AudioMAE's pretrained.pth")
    parser.add_argument("audio", metavar="AUDIO_FILE", help="an audio file (any rate, mono or multi-channel)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--clip-id", type=int, default=0, help="clip id keying the (deterministic) mask")
    parser.add_argument("--teacher-checkpoint", "--clap-checkpoint", default=None,
                        help="target=teacher: the teacher's checkpoint, if not where the checkpoint says")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    args = parser.parse_args(argv)

    from ..core.audio import AudioFileError

    try:
        path = plot_reconstruction(args.checkpoint, args.audio, args.out, args.clip_id, args.teacher_checkpoint,
                                   args.device)
    except (AudioFileError, FileNotFoundError, ValueError) as e:
        print(f"supmam-plot-reconstruction: error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
