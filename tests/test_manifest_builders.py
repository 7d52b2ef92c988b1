"""The manifest builders on small fake AudioSet / ESC-50 / Speech Commands folders of real audio."""
from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile

from manifests import audioset, esc50, speech_commands
from manifests.audio_files import AudioFileError, index_audio_files, num_samples
from manifests.speech_commands import silence_split
from supmam_plugin.core.manifest import ManifestError, read_class_list, read_labels, read_manifest


def write_audio(path, num_frames, rate=16000, channels=1, seed=0):
    """A short noise clip of exactly ``num_frames`` frames, written by soundfile."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    noise = np.random.default_rng(seed).uniform(-0.3, 0.3, size=(num_frames, channels)).astype(np.float32)
    soundfile.write(path, noise if channels > 1 else noise[:, 0], rate)
    return path


def load(out_dir, split):
    """Manifest, label names per clip and class list of ``out_dir/{split}``; checks every file."""
    manifest = read_manifest(os.path.join(out_dir, f"{split}.tsv"))
    classes = read_class_list(os.path.join(out_dir, "dict.label.txt"))
    labels = read_labels(os.path.join(out_dir, f"{split}.label"), classes, manifest)
    for i, entry in enumerate(manifest.entries):
        path = manifest.audio_path(i)
        assert os.path.isfile(path), path
        assert soundfile.info(path).frames == entry.num_samples
    return manifest, [[classes[c] for c in clip] for clip in labels], classes


# --------------------------------------------------------------------------- shared helpers


def test_index_audio_files_is_recursive_and_filters_extensions(tmp_path):
    write_audio(str(tmp_path / "a.wav"), 100)
    write_audio(str(tmp_path / "sub" / "deeper" / "b.FLAC"), 100)
    (tmp_path / "notes.txt").write_text("not audio")
    assert index_audio_files(str(tmp_path)) == {"a": "a.wav", "b": os.path.join("sub", "deeper", "b.FLAC")}


def test_index_audio_files_logs_progress(tmp_path, caplog):
    for i in range(5):
        write_audio(str(tmp_path / f"clip{i}.wav"), 10)
    with caplog.at_level("INFO", logger="manifests.audio_files"):
        assert len(index_audio_files(str(tmp_path), every=2)) == 5
    assert [r.getMessage().split(": ")[-1] for r in caplog.records] == ["2", "4", "5 done"]


def test_num_samples_counts_frames_and_names_bad_files(tmp_path):
    assert num_samples(write_audio(str(tmp_path / "x.wav"), 1234, rate=8000, channels=2)) == 1234
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"this is not a wav file")
    with pytest.raises(AudioFileError, match="broken.wav"):
        num_samples(str(broken))
    with pytest.raises(AudioFileError, match="absent.wav"):
        num_samples(str(tmp_path / "absent.wav"))


# --------------------------------------------------------------------------- AudioSet

CLASSES_CSV = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/0k4j,"Car, automobile"
2,/m/04rlf,Music
3,/m/0dgbq,"Civil defense siren, air raid"
"""


def segments_csv(rows):
    header = (
        "# Segments csv created Sun Mar  5 10:54:31 2017\n"
        "# num_ytids=3, num_segs=3, num_unique_labels=4, num_positive_labels=5\n"
        "# YTID, start_seconds, end_seconds, positive_labels\n"
    )
    return header + "".join(f'{y}, {s:.3f}, {s + 10:.3f}, "{",".join(m)}"\n' for y, s, m in rows)


BALANCED = [
    ("--PJHxphWEs", 30.0, ["/m/09x0r", "/m/04rlf"]),
    ("-0RWZT-miFs", 0.0, ["/m/0k4j"]),
    ("YaBcDeFgHiJ", 10.0, ["/m/0dgbq"]),
]
UNBALANCED = [
    ("0A1B2c3d4e5", 20.0, ["/m/04rlf"]),
    ("k_9xyzabcde", 0.0, ["/m/09x0r", "/m/0k4j", "/m/0dgbq"]),
    ("gone1234567", 40.0, ["/m/04rlf"]),  # never downloaded
    ("brokenclip1", 5.0, ["/m/09x0r"]),  # file exists but is not audio
]
EVAL = [
    ("zzEvalClip1", 30.0, ["/m/0k4j", "/m/04rlf"]),
    ("evalMissing", 0.0, ["/m/09x0r"]),  # never downloaded
    ("-evalClip_2", 10.0, ["/m/0dgbq"]),
]


@pytest.fixture
def audioset_dirs(tmp_path):
    csv_dir, audio = tmp_path / "csv", tmp_path / "audio"
    csv_dir.mkdir()
    (csv_dir / "class_labels_indices.csv").write_text(CLASSES_CSV)
    (csv_dir / "balanced_train_segments.csv").write_text(segments_csv(BALANCED))
    (csv_dir / "unbalanced_train_segments.csv").write_text(segments_csv(UNBALANCED))
    (csv_dir / "eval_segments.csv").write_text(segments_csv(EVAL))
    frames, paths = {}, {}
    # the naming forms found in the wild: {YTID}.ext, Y{YTID}.ext, {YTID}_{start}_{end}.ext
    for i, (relative_path, ytid) in enumerate([
        ("balanced/--PJHxphWEs.wav", "--PJHxphWEs"),
        ("balanced/Y-0RWZT-miFs.flac", "-0RWZT-miFs"),
        ("balanced/YaBcDeFgHiJ.wav", "YaBcDeFgHiJ"),
        ("unbal/part00/0A1B2c3d4e5_20.000_30.000.wav", "0A1B2c3d4e5"),
        ("unbal/part01/Yk_9xyzabcde_0.000.ogg", "k_9xyzabcde"),
        ("eval/zzEvalClip1.wav", "zzEvalClip1"),
        ("eval/-evalClip_2.wav", "-evalClip_2"),
    ]):
        frames[ytid] = 1600 + 37 * i
        paths[ytid] = relative_path
        write_audio(str(audio / relative_path), frames[ytid], rate=16000 if i % 2 else 32000, seed=i)
    (audio / "unbal" / "brokenclip1.wav").write_bytes(b"RIFF but not really a wave file")
    return str(csv_dir), str(audio), frames, paths


def test_audioset_splits_labels_and_missing_clips(audioset_dirs, tmp_path, capsys):
    csv_dir, audio, frames, paths = audioset_dirs
    out = str(tmp_path / "out")
    reports = audioset.build_audioset(csv_dir, audio, out, workers=2)

    assert read_class_list(os.path.join(out, "dict.label.txt")) == ["/m/09x0r", "/m/0k4j", "/m/04rlf", "/m/0dgbq"]
    with open(os.path.join(out, "class_names.tsv")) as f:
        assert f.read().splitlines()[1] == "/m/0k4j\tCar, automobile"

    expected = {
        "balanced_train": BALANCED,
        "unbalanced_train": UNBALANCED[:2],
        "train": BALANCED + UNBALANCED[:2],
        "eval": [EVAL[0], EVAL[2]],
    }
    for split, rows in expected.items():
        manifest, labels, _ = load(out, split)
        assert manifest.root == os.path.abspath(audio)
        assert len(manifest) == len(rows)
        assert labels == [m for _, _, m in rows]
        assert [e.num_samples for e in manifest.entries] == [frames[y] for y, _, _ in rows]
        assert [e.relative_path for e in manifest.entries] == [os.path.normpath(paths[y]) for y, _, _ in rows]

    assert reports["balanced_train"].missing == [] and reports["balanced_train"].written == 3
    assert reports["unbalanced_train"].missing == ["gone1234567"]
    assert len(reports["unbalanced_train"].unreadable) == 1 and "brokenclip1.wav" in reports["unbalanced_train"].unreadable[0]
    assert reports["train"].missing == ["gone1234567"] and reports["train"].listed == 7
    assert reports["eval"].missing == ["evalMissing"]
    with open(os.path.join(out, "eval.missing.txt")) as f:
        assert f.read().split() == ["evalMissing"]
    with open(os.path.join(out, "train.unreadable.txt")) as f:
        assert "brokenclip1.wav" in f.read()
    with open(os.path.join(out, "balanced_train.missing.txt")) as f:
        assert f.read() == ""
    printed = capsys.readouterr().out
    assert "unbalanced_train: 4 segments listed, 2 written, 1 missing, 1 unreadable" in printed
    assert "eval: 3 segments listed, 2 written, 1 missing, 0 unreadable" in printed


def test_audioset_skips_splits_without_csv(audioset_dirs, tmp_path, capsys):
    csv_dir, audio, _, _ = audioset_dirs
    os.remove(os.path.join(csv_dir, "unbalanced_train_segments.csv"))
    out = str(tmp_path / "out")
    reports = audioset.build_audioset(csv_dir, audio, out, workers=1)
    assert sorted(reports) == ["balanced_train", "eval"]
    assert not os.path.exists(os.path.join(out, "train.tsv"))
    assert not os.path.exists(os.path.join(out, "unbalanced_train.tsv"))
    printed = capsys.readouterr().out
    assert "unbalanced_train_segments.csv not found; split skipped" in printed
    assert "train: needs both" in printed


def test_audioset_unknown_mid_names_csv_and_line(audioset_dirs, tmp_path, capsys):
    csv_dir, audio, _, _ = audioset_dirs
    bad = EVAL + [("unknownMid1", 0.0, ["/m/09x0r", "/m/notaclass"])]
    with open(os.path.join(csv_dir, "eval_segments.csv"), "w") as f:
        f.write(segments_csv(bad))
    with pytest.raises(ManifestError, match=r"eval_segments\.csv:7: label\(s\) /m/notaclass"):
        audioset.build_audioset(csv_dir, audio, str(tmp_path / "out"))
    argv = ["--csv-dir", csv_dir, "--audio-dir", audio, "--out-dir", str(tmp_path / "out")]
    assert audioset.main(argv) == 1
    assert "/m/notaclass" in capsys.readouterr().err


def test_audioset_cli(audioset_dirs, tmp_path):
    csv_dir, audio, _, _ = audioset_dirs
    out = str(tmp_path / "cli")
    assert audioset.main(["--csv-dir", csv_dir, "--audio-dir", audio, "--out-dir", out, "--workers", "1"]) == 0
    assert len(read_manifest(os.path.join(out, "train.tsv"))) == 5


# --------------------------------------------------------------------------- ESC-50

ESC_CATEGORIES = {0: "dog", 1: "rooster", 2: "chirping_birds"}  # target -> category


@pytest.fixture
def esc50_dir(tmp_path):
    root = tmp_path / "ESC-50-master"
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    frames = {}
    for fold in range(1, 6):
        # csv order deliberately not sorted by target: dict order must follow target
        for target in (2, 0, 1):
            for take in ("A", "B")[: 1 + (fold + target) % 2]:
                name = f"{fold}-{1000 * fold + target}-{take}-{target}.wav"
                frames[name] = 800 + 10 * fold + target
                write_audio(str(root / "audio" / name), frames[name], rate=44100, seed=fold)
                lines.append(f"{name},{fold},{target},{ESC_CATEGORIES[target]},False,{1000 * fold + target},{take}")
    (root / "meta").mkdir()
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    return str(root), frames


def test_esc50_folds(esc50_dir, tmp_path):
    root, frames = esc50_dir
    out = str(tmp_path / "esc")
    sizes = esc50.build_esc50(root, out)
    assert sorted(sizes) == [1, 2, 3, 4, 5]
    for fold in range(1, 6):
        fold_dir = os.path.join(out, f"fold{fold}")
        valid, valid_labels, classes = load(fold_dir, "valid")
        train, train_labels, _ = load(fold_dir, "train")
        assert classes == ["dog", "rooster", "chirping_birds"]
        valid_names = {e.relative_path for e in valid.entries}
        train_names = {e.relative_path for e in train.entries}
        assert valid_names == {n for n in frames if n.startswith(f"{fold}-")}
        assert train_names == set(frames) - valid_names
        assert valid.root == os.path.join(os.path.abspath(root), "audio")
        for manifest, labels in ((valid, valid_labels), (train, train_labels)):
            for entry, label in zip(manifest.entries, labels):
                assert label == [ESC_CATEGORIES[int(entry.relative_path[-5])]]
                assert entry.num_samples == frames[entry.relative_path]
        assert sizes[fold] == {"train": len(train), "valid": len(valid)}


def test_esc50_missing_file_names_csv_line(esc50_dir, tmp_path, capsys):
    root, frames = esc50_dir
    gone = sorted(frames)[3]
    os.remove(os.path.join(root, "audio", gone))
    with open(os.path.join(root, "meta", "esc50.csv")) as f:
        line = 1 + [l.split(",")[0] for l in f.read().splitlines()].index(gone)
    with pytest.raises(ManifestError, match=rf"esc50\.csv:{line}: {gone} is listed but"):
        esc50.build_esc50(root, str(tmp_path / "esc"))
    assert esc50.main(["--esc50-dir", root, "--out-dir", str(tmp_path / "esc")]) == 1
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- Speech Commands

SC_FILES = {"yes": 4, "no": 3, "bed": 3, "cat": 2, "go": 2}  # word -> number of clips
VALIDATION = ["yes/yes_1_nohash_0.wav", "bed/bed_0_nohash_0.wav"]
TESTING = ["yes/yes_2_nohash_0.wav", "no/no_0_nohash_0.wav", "cat/cat_1_nohash_0.wav"]


@pytest.fixture
def sc_dir(tmp_path):
    root = tmp_path / "data" / "speech_commands_v0.02"
    frames = {}
    for w, (word, count) in enumerate(SC_FILES.items()):
        for i in range(count):
            relative_path = f"{word}/{word}_{i}_nohash_0.wav"
            frames[relative_path] = 12000 + 100 * w + i  # some shorter than 1 s, as in the real set
            write_audio(str(root / relative_path), frames[relative_path], seed=w * 10 + i)
    write_audio(str(root / "_background_noise_" / "white_noise.wav"), 16000 * 10 + 8000, seed=99)
    write_audio(str(root / "_background_noise_" / "pink_noise.wav"), int(22050 * 2.5), rate=22050, channels=2)
    (root / "_background_noise_" / "README.md").write_text("noise")
    (root / "validation_list.txt").write_text("\n".join(VALIDATION) + "\n")
    (root / "testing_list.txt").write_text("\n".join(TESTING) + "\n")
    (root / "LICENSE").write_text("CC-BY-4.0")
    return str(root), frames


def test_silence_split_is_80_10_10_in_time():
    assert [silence_split(j, 10) for j in range(10)] == ["train"] * 8 + ["valid", "test"]
    assert [silence_split(j, 20) for j in range(20)].count("test") == 2
    assert [silence_split(j, 2) for j in range(2)] == ["train", "train"]


def test_speech_commands_spc2(sc_dir, tmp_path):
    root, frames = sc_dir
    out = str(tmp_path / "manifests")
    counts = speech_commands.build_speech_commands(root, out, workers=2)
    spc2 = os.path.join(out, "spc2")
    members = {}
    for split in ("train", "valid", "test"):
        manifest, labels, classes = load(spc2, split)
        assert classes == sorted(SC_FILES)
        assert manifest.root == os.path.abspath(root)
        members[split] = [e.relative_path for e in manifest.entries]
        assert labels == [[p.split("/")[0]] for p in members[split]]
        assert [e.num_samples for e in manifest.entries] == [frames[p] for p in members[split]]
    assert sorted(members["valid"]) == sorted(VALIDATION)
    assert sorted(members["test"]) == sorted(TESTING)
    assert sorted(members["train"]) == sorted(set(frames) - set(VALIDATION) - set(TESTING))
    assert counts["spc2"] == {"train": 9, "valid": 2, "test": 3}


def test_speech_commands_spc1(sc_dir, tmp_path):
    root, frames = sc_dir
    out = str(tmp_path / "manifests")
    counts = speech_commands.build_speech_commands(root, out, workers=1)
    spc1 = os.path.join(out, "spc1")
    expected_silence = {"train": 8 + 2, "valid": 1, "test": 1}  # white: 10 segments; pink: 2 (train)
    for split in ("train", "valid", "test"):
        manifest, labels, classes = load(spc1, split)
        assert classes == ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_"]
        assert not any(".." in e.relative_path.split(os.sep) for e in manifest.entries)
        words = [(e, l) for e, l in zip(manifest.entries, labels) if l != ["_silence_"]]
        silence = [manifest.audio_path(i) for i, l in enumerate(labels) if l == ["_silence_"]]
        for entry, label in words:
            word = entry.relative_path.split(os.sep)[-2]
            assert label == [word if word in ("yes", "no", "go") else "_unknown_"]
            assert entry.num_samples == frames[f"{word}/{os.path.basename(entry.relative_path)}"]
        assert len(silence) == expected_silence[split]
        for path in silence:
            info = soundfile.info(path)
            assert (info.samplerate, info.frames, info.channels) == (16000, 16000, 1)
            assert os.path.dirname(path) == os.path.realpath(os.path.join(spc1, "silence_audio"))
            assert np.abs(soundfile.read(path)[0]).max() > 0
        assert counts["spc1"][split] == len(manifest)
    _, test_labels, _ = load(spc1, "test")
    assert sorted(l[0] for l in test_labels) == sorted(["yes", "no", "_unknown_", "_silence_"])
    # the valid/test silence clips are the last stretch of white_noise
    test_manifest = read_manifest(os.path.join(spc1, "test.tsv"))
    assert any(e.relative_path.endswith("white_noise_0009.wav") for e in test_manifest.entries)


def test_speech_commands_out_dir_elsewhere(sc_dir, tmp_path):
    root, _ = sc_dir
    out = str(tmp_path / "elsewhere" / "deep" / "out")
    assert speech_commands.main(["--speech-commands-dir", root, "--out-dir", out]) == 0
    for split in ("train", "valid", "test"):
        load(os.path.join(out, "spc1"), split)
        load(os.path.join(out, "spc2"), split)


def test_speech_commands_listed_file_missing(sc_dir, tmp_path):
    root, _ = sc_dir
    with open(os.path.join(root, "testing_list.txt"), "a") as f:
        f.write("no/no_9_nohash_0.wav\n")
    with pytest.raises(ManifestError, match=r"testing_list\.txt:4: no/no_9_nohash_0\.wav is listed"):
        speech_commands.build_speech_commands(root, str(tmp_path / "out"))
