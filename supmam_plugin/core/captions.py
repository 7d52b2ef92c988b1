"""Captions of a manifest's clips (``{split}.text``) and the sentencepiece tokenizer that reads them.

Format: one line per clip of ``{split}.tsv``, in the manifest's order; a clip with several captions
has them on its line joined by `` ||| `` (AudioCaps and Clotho give five per clip). Every error
names the file and line and says how to fix it.

The tokenizer is a sentencepiece BPE model (byte-pair merges, as CLIP's and CLAP's own tokenizers)
trained on the training captions (``supmam-train-tokenizer``): seconds on a caption file, nothing
to download (LAION-CLAP's RoBERTa tokenizer is fetched from a model hub). sentencepiece's unigram
model leaves a small caption set in pieces of one to three letters (165 pieces from the 1,000
captions of ``make sound-events``; BPE: 881, whole words).
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

from .manifest import Manifest, ManifestError, read_lines

CAPTION_SEPARATOR = " ||| "
TOKENIZER_FILE = "text.spm.model"  # DATA/text.spm.model: task.caption_tokenizer's default
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


def read_captions(path: str, manifest: Manifest | None = None) -> list[tuple[str, ...]]:
    """The captions of each clip of ``path`` ({split}.text), checked against ``manifest``'s length."""
    if not os.path.isfile(path):
        where = f" for {manifest.path}" if manifest is not None else ""
        raise ManifestError(f"{path}: caption file not found{where}; write one line per clip, in the manifest's "
                            f"order (several captions of one clip joined by '{CAPTION_SEPARATOR}')")
    lines = read_lines(path)
    if manifest is not None:
        while len(lines) > len(manifest) and not lines[-1].strip():  # a trailing newline or two
            lines.pop()
        if len(lines) != len(manifest):
            raise ManifestError(f"{path}: {len(lines)} caption lines but {manifest.path} lists {len(manifest)} clips; "
                                "the caption file needs exactly one line per manifest entry, in the same order")
    captions = []
    for line_number, line in enumerate(lines, start=1):
        texts = tuple(text.strip() for text in line.split(CAPTION_SEPARATOR.strip()))
        if not all(texts):
            clip = f" ({manifest.entries[line_number - 1].relative_path})" if manifest is not None else ""
            raise ManifestError(f"{path}:{line_number}: empty caption{clip}; every clip needs at least one caption "
                                f"and no empty one between '{CAPTION_SEPARATOR.strip()}' separators")
        captions.append(texts)
    return captions


def train_tokenizer(captions: Iterable[str], model_path: str, vocab_size: int = 1000) -> str:
    """Train a sentencepiece BPE model on ``captions`` into ``model_path`` (``.model``); returns
    the path. ``vocab_size`` is an upper bound: a small caption set gets the pieces it has."""
    import sentencepiece as spm

    if not model_path.endswith(".model"):
        raise ValueError(f"{model_path}: the tokenizer file must end in .model (sentencepiece adds it)")
    os.makedirs(os.path.dirname(os.path.abspath(model_path)), exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(captions)), model_prefix=model_path[:-len(".model")], vocab_size=vocab_size,
        model_type="bpe", hard_vocab_limit=False, character_coverage=1.0, pad_id=PAD_ID, unk_id=UNK_ID,
        bos_id=BOS_ID, eos_id=EOS_ID, minloglevel=2)
    os.remove(model_path[:-len(".model")] + ".vocab")  # the pieces are inside the model; the list is not needed
    return model_path


class CaptionTokenizer:
    """A trained sentencepiece model: captions -> token ids (BOS ... EOS, cut to ``max_tokens``)."""

    def __init__(self, path: str):
        import sentencepiece as spm

        if not os.path.isfile(path):
            data = os.path.dirname(path) or "DATA"
            raise ManifestError(f"{path}: caption tokenizer not found; train one on the training captions with "
                                f"'supmam-train-tokenizer {data}' (or set task.caption_tokenizer to the file)")
        self.path = path
        try:
            self.processor = spm.SentencePieceProcessor(model_file=path)
        except (RuntimeError, OSError) as e:  # sentencepiece's protobuf parse error
            data = os.path.dirname(path) or "DATA"
            raise ManifestError(f"{path}: not a sentencepiece model ({str(e).strip().splitlines()[-1][:200]}); train it "
                                f"again with 'supmam-train-tokenizer {data}' (or set task.caption_tokenizer to the "
                                "tokenizer the CLAP was trained with)") from None

    @property
    def vocab_size(self) -> int:
        return self.processor.get_piece_size()

    @property
    def sha256(self) -> str:
        """The SHA-256 of the model file (a trained CLAP records the tokenizer its text tower learned)."""
        from .file_hash import file_sha256

        return file_sha256(self.path)

    def encode(self, text: str, max_tokens: int = 0) -> list[int]:
        """Token ids of ``text`` between BOS and EOS; with ``max_tokens``, at most that many (EOS kept)."""
        ids = [BOS_ID, *self.processor.encode(text), EOS_ID]
        return ids if not max_tokens or len(ids) <= max_tokens else [*ids[:max_tokens - 1], EOS_ID]

    def decode(self, ids: Sequence[int]) -> str:
        return self.processor.decode([i for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID)])
