"""Bad input gets an error that names the file and line, at load time where possible."""
import os
import re

import numpy as np
import pytest
import soundfile as sf
from fairseq import tasks
from omegaconf import OmegaConf

import supmam_plugin  # noqa: F401
from supmam_plugin.core.audio import AudioFileError
from supmam_plugin.core.manifest import ManifestError
from supmam_plugin.commands.validate_manifest import main as validate_main

from conftest import make_labelled_folder, write_audio

CLASSES = ["dog", "rain"]
CLIPS = [("one.wav", 1.0, 16000, ["dog"]), ("two.wav", 1.0, 16000, ["rain"]), ("three.wav", 1.0, 16000, ["dog"])]


def setup(data, split="train", **overrides):
    cfg = OmegaConf.create({"_name": "supmam_audio_classification", "data": data, "seed": 1, **overrides})
    task = tasks.setup_task(cfg)
    task.load_dataset(split)
    return task


def replace_line(path, line_number, text):
    lines = open(path).read().splitlines()
    lines[line_number - 1] = text
    open(path, "w").write("\n".join(lines) + "\n")


@pytest.fixture
def data(tmp_path):
    return make_labelled_folder(tmp_path / "data", CLASSES, CLIPS)


def test_missing_file_named_with_line_at_load_time(data):
    os.remove(os.path.join(data, "audio", "two.wav"))
    with pytest.raises(ManifestError, match=r"train\.tsv:3: .*two\.wav not found"):
        setup(data)


def test_corrupt_file_named_when_read(data):
    open(os.path.join(data, "audio", "three.wav"), "wb").write(b"RIFF not really a wave file")
    task = setup(data)
    with pytest.raises(AudioFileError, match=r"train\.tsv:4: .*three\.wav: cannot read audio"):
        task.dataset("train")[2]


def test_nan_samples_named(data):
    bad = np.zeros(16000, np.float32)
    bad[100] = np.nan
    write_audio(os.path.join(data, "audio", "one.wav"), bad, 16000, subtype="FLOAT")
    task = setup(data)
    with pytest.raises(AudioFileError, match=r"train\.tsv:2: .*one\.wav: contains NaN"):
        task.dataset("train")[0]


def test_empty_manifest(data):
    open(os.path.join(data, "train.tsv"), "w").write("")
    with pytest.raises(ManifestError, match=r"train\.tsv:1: empty manifest"):
        setup(data)
    open(os.path.join(data, "train.tsv"), "w").write(os.path.join(data, "audio") + "\n")
    with pytest.raises(ManifestError, match="lists no audio files"):
        setup(data)


def test_label_file_with_wrong_line_count(data):
    open(os.path.join(data, "train.label"), "w").write("dog\nrain\n")
    with pytest.raises(ManifestError, match=r"2 label lines but .*train\.tsv lists 3 clips"):
        setup(data)


def test_label_not_in_dictionary(data):
    replace_line(os.path.join(data, "train.label"), 2, "cat")
    with pytest.raises(ManifestError, match=r"train\.label:2: label\(s\) \['cat'\] not in the class list"):
        setup(data)


def test_several_labels_on_a_single_label_task(data):
    replace_line(os.path.join(data, "train.label"), 3, "dog rain")
    with pytest.raises(ManifestError, match=r"train\.label:3: several labels .*multi_label=true"):
        setup(data)


def test_clip_shorter_than_one_frame(data):
    write_audio(os.path.join(data, "audio", "tiny.wav"), np.zeros(300, np.float32), 16000)
    with open(os.path.join(data, "train.tsv"), "a") as f:
        f.write("tiny.wav\t300\n")
    with open(os.path.join(data, "train.label"), "a") as f:
        f.write("dog\n")
    with pytest.raises(ManifestError, match=r"train\.tsv:5: tiny\.wav has 300 samples, fewer than 400"):
        setup(data)


def test_malformed_manifest_line(data):
    replace_line(os.path.join(data, "train.tsv"), 3, "two.wav 16000")
    with pytest.raises(ManifestError, match=r"train\.tsv:3: expected 'relative/path<TAB>num_samples'"):
        setup(data)


def test_validate_manifest_reports_every_problem_with_lines(data, capsys):
    assert validate_main([data, "train"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
    open(os.path.join(data, "audio", "one.wav"), "wb").write(b"garbage")
    sf.write(os.path.join(data, "audio", "two.wav"), np.zeros(8000, np.float32), 16000)  # length changed
    bad = np.zeros(16000, np.float32)
    bad[5] = np.inf
    sf.write(os.path.join(data, "audio", "three.wav"), bad, 16000, subtype="FLOAT")
    replace_line(os.path.join(data, "train.label"), 1, "dog unicorn")
    assert validate_main([data, "train"]) == 1
    out = capsys.readouterr().out
    assert "train.label:1: label 'unicorn' not in the class list" in out
    assert "train.tsv:2:" in out and "one.wav: cannot read audio" in out
    assert "train.tsv:3:" in out and "has 8000 samples, the manifest says 16000" in out
    assert "train.tsv:4:" in out and "NaN or infinite" in out
    assert "4 problem(s) found" in out
    # two worker processes: the same report, in the same (manifest) order, the same exit status
    assert validate_main([data, "train", "--workers", "2", "--progress-every", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == out
    assert "checked 3/3 files" in captured.err and "files/s" in captured.err and "min left" in captured.err


def test_validate_manifest_knows_unlabelled_clips(data, capsys):
    """An empty label line is a problem for fine-tuning, and an unlabelled clip with --allow-unlabeled
    (task.allow_unlabeled of semi-supervised pretraining); an unknown label is a problem either way."""
    replace_line(os.path.join(data, "train.label"), 2, "")
    assert validate_main([data, "train"]) == 1
    assert "train.label:2: no label" in capsys.readouterr().out
    assert validate_main([data, "train", "--allow-unlabeled"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
    replace_line(os.path.join(data, "train.label"), 1, "unicorn")
    assert validate_main([data, "train", "--allow-unlabeled"]) == 1
    out = capsys.readouterr().out
    assert "train.label:1: label 'unicorn'" in out and "train.label:2" not in out


def test_validate_manifest_prints_the_class_frequencies(tmp_path, capsys):
    """Counted by hand: a multi-label clip counts once for each of its classes, shares are of the
    split's 5 clips, the unlabelled last clip is a clip (not a missing line), and the classes of
    the dictionary that no clip carries are named in a warning."""
    classes = ["dog", "rain", "siren", "wind", "bird"]
    clips = [("c1.wav", 0.5, 16000, ["dog", "rain"]), ("c2.wav", 0.5, 16000, ["rain"]),
             ("c3.wav", 0.5, 16000, ["rain", "dog", "siren"]), ("c4.wav", 0.5, 16000, ["siren", "rain", "dog"]),
             ("c5.wav", 0.5, 16000, [])]
    data = make_labelled_folder(tmp_path, classes, clips)
    assert validate_main([data, "train", "--allow-unlabeled"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "train: 5 clips, 1 unlabelled; labels per labelled clip: mean 2.25, max 3" in out
    rows = [re.fullmatch(r"(\S+) +(\d+) +([\d.]+)%", line) for line in out]
    table = [(row[1], int(row[2]), float(row[3])) for row in rows if row]
    # most frequent first; wind and bird (no clip) in the dictionary's order
    assert table == [("rain", 4, 80.0), ("dog", 3, 60.0), ("siren", 2, 40.0), ("wind", 0, 0.0), ("bird", 0, 0.0)]
    warning = [line for line in out if line.startswith("warning:")]
    assert warning == [f"warning: 2 of the 5 classes of {os.path.join(data, 'dict.label.txt')} on no clip "
                       "of train: wind bird"]
    assert out[-1] == "train: 0 problem(s) found"
