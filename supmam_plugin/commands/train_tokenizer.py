"""``supmam-train-tokenizer``: train the caption tokenizer of CLAP training on a folder's captions.

    supmam-train-tokenizer DATA [--splits train] [--vocab-size 1000] [--out DATA/text.spm.model]
                           [--label-captions label]

Reads ``DATA/{split}.text`` (one line per clip of ``{split}.tsv``; several captions of a clip joined
by `` ||| ``) and writes a sentencepiece BPE model, which ``task.caption_tokenizer`` of the
``clap_pretraining`` task reads (default: ``DATA/text.spm.model``). Train it on the training split
only: the held-out captions stay unseen. With ``--label-captions EXT``, a split without a caption
file (AudioSet: labels only) is read as ``task.label_captions=EXT`` captions it: from its labels
(``DATA/{split}.EXT``, ``DATA/dict.EXT.txt``; core/keyword_captions.py).
"""
from __future__ import annotations

import argparse
import os
import sys

from ..core.captions import TOKENIZER_FILE, CaptionTokenizer, read_captions, train_tokenizer
from ..core.keyword_captions import captions_from_labels
from ..core.manifest import ManifestError, read_class_list, read_labels, read_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="manifest folder with {split}.tsv and {split}.text")
    parser.add_argument("--splits", nargs="+", default=["train"], help="splits whose captions train it")
    parser.add_argument("--vocab-size", type=int, default=1000,
                        help="pieces at most (a small caption set gets fewer: the words it has)")
    parser.add_argument("--out", default=None, help=f"tokenizer file (default: DATA/{TOKENIZER_FILE})")
    parser.add_argument("--label-captions", default=None, metavar="EXT",
                        help="a split without DATA/{split}.text: caption its clips from their labels (DATA/{split}.EXT), "
                             "as task.label_captions=EXT does in training")
    args = parser.parse_args(argv)
    out = args.out or os.path.join(args.data, TOKENIZER_FILE)
    try:
        texts = []
        for split in args.splits:
            manifest = read_manifest(os.path.join(args.data, f"{split}.tsv"))
            caption_path = os.path.join(args.data, f"{split}.text")
            if args.label_captions and not os.path.isfile(caption_path):
                classes = read_class_list(os.path.join(args.data, f"dict.{args.label_captions}.txt"))
                labels = read_labels(os.path.join(args.data, f"{split}.{args.label_captions}"), classes, manifest,
                                     allow_unlabeled=True)
                captions = captions_from_labels([[classes[c] for c in clip] for clip in labels])
            else:
                captions = read_captions(caption_path, manifest)
            texts += [text for clip in captions for text in clip]
        train_tokenizer(texts, out, args.vocab_size)
        tokenizer = CaptionTokenizer(out)
    except ManifestError as error:
        print(f"supmam-train-tokenizer: {error}", file=sys.stderr)
        return 1
    example = texts[0]
    print(f"{out}: {tokenizer.vocab_size} pieces from {len(texts)} captions of {', '.join(args.splits)}; "
          f"{example!r} -> {tokenizer.processor.encode(example, out_type=str)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
