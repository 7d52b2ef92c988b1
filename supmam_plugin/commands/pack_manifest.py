"""``supmam-pack-manifest``: pack a split's audio files into uncompressed zip shards, fairseq's
``archive.zip:OFFSET:LENGTH`` convention, for shared network storage.

    supmam-pack-manifest DATA SPLIT --out DIR [--shard-size 10000] [--workers 8]

Files are stored as they are (flac stays flac), in manifest order: shard K holds lines
K * shard-size ... of ``DATA/SPLIT.tsv``. Writes ``DIR/SPLIT-NNNNN.zip``, ``DIR/SPLIT.tsv`` (root ``.``:
the folder moves or copies as a whole), copies of ``DATA/SPLIT.<ext>`` (labels, captions),
``DATA/dict.*.txt`` and the caption tokenizer unchanged, and ``DIR/SPLIT.packed.json`` naming the manifest it was packed from,
so a teacher cache made for the loose manifest serves the packed one. Every command and task reads
packed and loose manifests alike. Each file's header is checked first: a file that is not audio
stops the run, naming its manifest line (run ``supmam-validate-manifest`` first to list every problem).

A killed run continues where it stopped (finished shards are kept; each is written under a
temporary name and renamed when complete), but only for the same loose manifest and shard size:
``--out`` holding another packing of the split is refused unless ``--overwrite`` (every shard of the
split written again), so a shard never keeps old audio under new labels. Members are named by their
manifest line (``000000012.flac``), so no path in the manifest (absolute, ``../``) can climb out.
"""
from __future__ import annotations

import argparse
import sys

from ..core.manifest import ManifestError
from ..core.packing import pack


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="folder with the loose {split}.tsv")
    parser.add_argument("split", help="split name, e.g. train")
    parser.add_argument("--out", required=True, help="folder for the shards and the packed manifest")
    parser.add_argument("--shard-size", type=int, default=10000,
                        help="clips per shard (AudioSet's 10 s flac: 10000 clips is about 3 GB)")
    parser.add_argument("--workers", type=int, default=1, help="shards written at a time (processes)")
    parser.add_argument("--overwrite", action="store_true",
                        help="--out holds another packing of the split: delete it and pack every shard again")
    args = parser.parse_args(argv)
    try:
        pack(args.data, args.split, args.out, args.shard_size, args.workers, args.overwrite)
    except (ManifestError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
