"""Caption files ({split}.text) and the caption tokenizer (supmam-train-tokenizer)."""
import os

import pytest

from supmam_plugin.commands.train_tokenizer import main as train_tokenizer_main
from supmam_plugin.core.captions import BOS_ID, EOS_ID, CaptionTokenizer, read_captions
from supmam_plugin.core.manifest import ManifestError, read_manifest

CAPTIONS = ["A dog barks twice, then a car passes.", "Rain on a tin roof ||| Heavy rain falls on metal",
            "A woman speaks French over pink noise.", "A low cello note, then a snare drum hit."]


def caption_folder(root, captions=CAPTIONS) -> str:
    """A manifest of len(captions) clips (the files need not exist to read captions) and its .text."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "train.tsv"), "w") as f:
        f.write("/audio\n" + "".join(f"clip{i}.wav\t16000\n" for i in range(len(captions))))
    with open(os.path.join(root, "train.text"), "w") as f:
        f.write("\n".join(captions) + "\n")
    return str(root)


def test_captions_are_read_per_clip_with_several_per_line(tmp_path):
    data = caption_folder(tmp_path / "d")
    captions = read_captions(os.path.join(data, "train.text"), read_manifest(os.path.join(data, "train.tsv")))
    assert captions[0] == (CAPTIONS[0],)
    assert captions[1] == ("Rain on a tin roof", "Heavy rain falls on metal")
    assert len(captions) == 4


@pytest.mark.parametrize("captions, expected", [
    (CAPTIONS[:3], r"train\.text: 3 caption lines but .*train\.tsv lists 4 clips"),
    ([CAPTIONS[0], "", *CAPTIONS[2:]], r"train\.text:2: empty caption \(clip1\.wav\)"),
    ([CAPTIONS[0], "Rain |||  ", *CAPTIONS[2:]], r"train\.text:2: empty caption"),
])
def test_bad_caption_files_are_refused_with_file_and_line(tmp_path, captions, expected):
    data = caption_folder(tmp_path / "d")
    with open(os.path.join(data, "train.text"), "w") as f:
        f.write("\n".join(captions) + "\n")
    with pytest.raises(ManifestError, match=expected):
        read_captions(os.path.join(data, "train.text"), read_manifest(os.path.join(data, "train.tsv")))


def test_a_missing_caption_file_or_tokenizer_names_the_fix(tmp_path):
    with pytest.raises(ManifestError, match=r"valid\.text: caption file not found.*one line per clip"):
        read_captions(str(tmp_path / "valid.text"))
    with pytest.raises(ManifestError, match=r"text\.spm\.model: caption tokenizer not found.*supmam-train-tokenizer"):
        CaptionTokenizer(str(tmp_path / "text.spm.model"))


def test_tokenizer_trains_on_the_training_captions_and_round_trips(tmp_path, capsys):
    many = [f"{c} Number {i} of the set." for i in range(30) for c in CAPTIONS]  # enough text to learn merges
    data = caption_folder(tmp_path / "d", many)
    assert train_tokenizer_main([data, "--vocab-size", "200"]) == 0
    assert "text.spm.model: " in capsys.readouterr().out
    tokenizer = CaptionTokenizer(os.path.join(data, "text.spm.model"))
    assert 50 < tokenizer.vocab_size <= 200
    for text in ("A dog barks twice, then a car passes.", "Heavy rain falls on metal"):
        ids = tokenizer.encode(text)
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID
        assert tokenizer.decode(ids) == text
    cut = tokenizer.encode(CAPTIONS[0], max_tokens=4)
    assert len(cut) == 4 and cut[0] == BOS_ID and cut[-1] == EOS_ID
    assert not os.path.exists(os.path.join(data, "text.spm.vocab"))


def test_train_tokenizer_reports_a_bad_caption_file_without_a_traceback(tmp_path, capsys):
    data = caption_folder(tmp_path / "d", CAPTIONS)
    with open(os.path.join(data, "train.text"), "w") as f:
        f.write("\n".join(CAPTIONS[:2]) + "\n")
    assert train_tokenizer_main([data]) == 1
    assert "2 caption lines but" in capsys.readouterr().err


def test_a_byte_that_is_not_utf8_is_named_by_line_and_offset(tmp_path, capsys):
    """Before: a bare UnicodeDecodeError, no file or line (also from supmam-train-tokenizer)."""
    data = caption_folder(tmp_path / "d")
    text = ("\n".join(CAPTIONS) + "\n").encode()
    bad = text.index(b"woman")  # line 3
    with open(os.path.join(data, "train.text"), "wb") as f:
        f.write(text[:bad] + b"\xe9" + text[bad + 1:])  # latin-1 e-acute
    with pytest.raises(ManifestError, match=rf"train\.text:3: byte {bad} \(0xe9\) is not UTF-8.*iconv"):
        read_captions(os.path.join(data, "train.text"))
    assert train_tokenizer_main([data]) == 1
    assert f"train.text:3: byte {bad} (0xe9) is not UTF-8" in capsys.readouterr().err


def test_lines_break_at_newline_only_as_wc_counts_them(tmp_path):
    """Before: str.splitlines broke a caption at U+2028 or U+0085, so the caption file had one line more
    than `wc -l` and the manifest, and was refused (or, with a line less elsewhere, shifted)."""
    odd = [CAPTIONS[0], "Rain\u2028on a roof", "A woman\u0085speaks", CAPTIONS[3]]
    data = caption_folder(tmp_path / "d", odd)
    with open(os.path.join(data, "train.text"), "rb") as f:
        assert f.read().count(b"\n") == 4
    captions = read_captions(os.path.join(data, "train.text"), read_manifest(os.path.join(data, "train.tsv")))
    assert [c[0] for c in captions] == odd
    with open(os.path.join(data, "train.text"), "w", newline="") as f:  # CRLF line ends read the same
        f.write("\r\n".join(odd) + "\r\n")
    assert [c[0] for c in read_captions(os.path.join(data, "train.text"))] == odd


def test_a_corrupt_tokenizer_names_the_file_and_the_fix(tmp_path):
    """Before: sentencepiece's protobuf parse error, no fix."""
    path = tmp_path / "text.spm.model"
    path.write_bytes(b"\x00not a sentencepiece model" * 10)
    with pytest.raises(ManifestError, match=rf"{path}: not a sentencepiece model .*supmam-train-tokenizer {tmp_path}"):
        CaptionTokenizer(str(path))
