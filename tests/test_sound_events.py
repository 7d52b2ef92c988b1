"""scripts/make_sound_events.py on a tiny size (real recordings from the Debian packages that
`make test` installs), and the multi-label path on what it makes: the MFCC mAP baseline against
scikit-learn and librosa computed here, and supmam-demo reporting mAP."""
import json
import os
import shutil
import subprocess
import sys

import librosa
import numpy as np
import pytest
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from conftest import REPO
from supmam_plugin.commands.demo import main as demo_main
from supmam_plugin.experiments.fairseq_runs import parse_validate_output
from supmam_plugin.core.manifest import read_class_list, read_labels, read_manifest
from supmam_plugin.evaluation.labelled_splits import read_labelled_splits
from supmam_plugin.evaluation.linear_probe import mfcc_baseline

SCRIPT = os.path.join(REPO, "scripts", "make_sound_events.py")
SIZES = {"train": 30, "pool": 6, "valid": 16, "test": 16, "test_seen": 4}
LANGUAGES = ("English", "Spanish", "French", "Italian", "Russian")


def make(out, **sizes):
    sizes = {**SIZES, **sizes}
    args = [sys.executable, SCRIPT, "--out-dir", str(out)]
    for split, n in sizes.items():
        args += [f"--{split.replace('_', '-')}", str(n)]
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return str(out)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return make(tmp_path_factory.mktemp("sound_events") / "set")


def records(folder, split):
    with open(os.path.join(folder, f"{split}.events.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_labels_are_the_events_placed_and_the_audio_holds_them(events):
    classes = read_class_list(os.path.join(events, "dict.label.txt"))
    assert len(classes) == 15 and {"piano", "kick_drum", "speech"} <= set(classes)
    ratios = []
    for split in ("train", "valid", "test", "test_seen"):
        manifest = read_manifest(os.path.join(events, f"{split}.tsv"))
        labels = read_labels(os.path.join(events, f"{split}.label"), classes, manifest)
        rows = records(events, split)
        assert len(rows) == len(manifest) == SIZES[split]
        for i, (row, clip_labels) in enumerate(zip(rows, labels)):
            placed = [e["class"] for e in row["events"]]
            assert 1 <= len(placed) <= 3 and len(set(placed)) == len(placed)
            assert sorted(classes[c] for c in clip_labels) == sorted(placed)
            audio, rate = sf.read(manifest.audio_path(i))
            assert rate == 16000 and len(audio) == manifest.entries[i].num_samples == 32000
            if len(placed) == 1 and row["events"][0]["onset"] >= 0.1:  # noise alone, then the event
                onset = int(row["events"][0]["onset"] * rate)
                before, after = audio[onset - 1600:onset], audio[onset:onset + 8000]
                ratios.append(np.abs(after).max() / np.abs(before).max())
    assert len(ratios) >= 5 and np.median(ratios) > 4.0, ratios


def test_captions_describe_the_events_in_onset_order(events):
    for split in ("train", "test"):
        with open(os.path.join(events, f"{split}.text"), encoding="utf-8") as f:
            captions = f.read().splitlines()
        for caption, row in zip(captions, records(events, split), strict=True):
            assert caption == row["caption"]
            onsets = [e["onset"] for e in row["events"]]
            assert onsets == sorted(onsets)
            phrases = caption.rstrip(".").split(", then ")
            phrases[-1] = phrases[-1].rsplit(", over ", 1)[0]
            assert len(phrases) == len(row["events"])
            for phrase, event in zip(phrases, row["events"]):
                if event["class"] == "speech":
                    assert phrase.split(" speaking ")[1] in LANGUAGES
                elif "preset" in event:  # an instrument note names its soundfont preset
                    assert phrase.lower().endswith(" note") and phrase.split()[-2] in event["preset"].lower()
                else:
                    assert any(w in phrase for w in ("kick", "snare", "hi-hat", "tom", "cymbal"))


def test_splits_share_no_source_and_pretrain_is_pool_then_train(events):
    def sources(*splits):
        return {e["source"] for s in splits for r in records(events, s) for e in r["events"]}

    seen, held_out = sources("train", "pool", "test_seen"), sources("valid", "test")
    assert seen and held_out and not seen & held_out
    assert any(s.startswith("hydrogen/") for s in seen) and "TimGM6mb.sf2" in held_out
    prompts = {s: {e["file"] for r in records(events, s) for e in r["events"] if e["class"] == "speech"}
               for s in ("valid", "test")}
    assert not prompts["valid"] & prompts["test"]
    pretrain = read_manifest(os.path.join(events, "pretrain.tsv"))
    pool, train = (read_manifest(os.path.join(events, f"{s}.tsv")) for s in ("pool", "train"))
    assert [pretrain.audio_path(i) for i in range(len(pretrain))] == \
        [m.audio_path(i) for m in (pool, train) for i in range(len(m))]
    with open(os.path.join(events, "pretrain.label"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[:SIZES["pool"]] == [""] * SIZES["pool"] and all(lines[SIZES["pool"]:])


def test_labelled_pool_labels_are_the_events_placed_in_pool_and_train(events):
    """The labelled-pool setting (pretrain_labelled): the unlabelled setting's clips, in its order, every
    label line naming exactly the classes of the events placed in that clip."""
    classes = read_class_list(os.path.join(events, "dict.label.txt"))
    labelled = read_manifest(os.path.join(events, "pretrain_labelled.tsv"))
    unlabelled = read_manifest(os.path.join(events, "pretrain.tsv"))
    assert [labelled.audio_path(i) for i in range(len(labelled))] == \
        [unlabelled.audio_path(i) for i in range(len(unlabelled))]
    labels = read_labels(os.path.join(events, "pretrain_labelled.label"), classes, labelled)
    placed = [[e["class"] for e in row["events"]] for split in ("pool", "train") for row in records(events, split)]
    assert len(labels) == len(placed) == SIZES["pool"] + SIZES["train"]
    for clip_labels, clip_events in zip(labels, placed):
        assert sorted(classes[c] for c in clip_labels) == sorted(clip_events)
    for name in ("pretrain", "pretrain_labelled"):
        with open(os.path.join(events, f"{name}.text"), encoding="utf-8") as f:
            assert f.read().splitlines() == [row["caption"] for s in ("pool", "train") for row in records(events, s)]


def test_same_seed_same_clips_whatever_the_sizes(events, tmp_path):
    again = make(tmp_path / "again", train=3, pool=1, valid=2, test=2, test_seen=1)
    assert records(again, "train") == records(events, "train")[:3]
    first = read_manifest(os.path.join(again, "test.tsv")).audio_path(1)
    np.testing.assert_array_equal(sf.read(first)[0],
                                  sf.read(read_manifest(os.path.join(events, "test.tsv")).audio_path(1))[0])


def test_mfcc_map_baseline_equals_sklearn_on_librosa_features(events):
    splits = read_labelled_splits(events, ("train", "valid", "test"))
    grid = (0.1, 1.0, 10.0)
    row = mfcc_baseline(splits, multi_label=True, c_grid=grid)
    assert row["metric"] == "mAP"
    features, targets = {}, {}
    for name, split in splits.items():
        rows = []
        for path in split.paths:
            mfcc = librosa.feature.mfcc(y=librosa.load(path, sr=16000)[0], sr=16000, n_mfcc=20, n_fft=400,
                                        hop_length=160)
            stacked = np.concatenate([mfcc, librosa.feature.delta(mfcc)])
            rows.append(np.concatenate([stacked.mean(1), stacked.std(1)]))
        features[name] = np.array(rows)
        targets[name] = np.zeros((len(split), len(split.classes)), dtype=int)
        for i, clip_labels in enumerate(split.labels):
            targets[name][i, list(clip_labels)] = 1

    def mean_ap(model, split):
        y, scores = targets[split], model.decision_function(features[split])
        present = y.sum(0) > 0
        return 100 * np.mean([average_precision_score(y[:, c], scores[:, c]) for c in np.flatnonzero(present)])

    valid = {}
    for C in grid:
        model = make_pipeline(StandardScaler(), OneVsRestClassifier(
            LogisticRegression(C=C, max_iter=5000, random_state=0))).fit(features["train"], targets["train"])
        valid[C] = (mean_ap(model, "valid"), model)
    best = max(grid, key=lambda C: (valid[C][0], -C))
    assert row["C"] == best
    assert row["test"] == pytest.approx(mean_ap(valid[best][1], "test"), abs=1e-3)


def test_multi_label_demo_reports_map(events, tmp_path, capsys, monkeypatch):
    """Also: a pretraining folder of its own with a labelled pool and no valid split (the all-labels
    classifier then keeps its last checkpoint)."""
    monkeypatch.delenv("SUPMAM_CLAP_CHECKPOINT", raising=False)
    pool = tmp_path / "pool"
    pool.mkdir()
    os.symlink(os.path.join(events, "audio"), pool / "audio")
    for name in os.listdir(events):
        if name.startswith(("pretrain", "dict.")):
            shutil.copy(os.path.join(events, name), pool / name)
    out = tmp_path / "out"
    code = demo_main(["--data", events, "--pretrain-data", str(pool), "--out", str(out), "--methods", "supmam",
                      "--pretrain-updates", "2", "--finetune-updates", "2", "--validate-interval", "1",
                      "--batch-size", "8", "--pretrain-batch-size", "8", "--also-score", "test_seen",
                      "--classifier-updates", "2"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("DEMO RESULT: held-out test mAP SupMAM ")
    result = json.load(open(out / "results.json"))
    assert result["metric"] == "mAP" and result["multi_label"] and result["frames"] == 192
    # the folder has a labelled pool: by default the paper's setting, with the all-labels classifier beside
    assert result["setting"] == "labelled-pool" and result["pretrain_split"] == "pretrain_labelled"
    assert 0 <= result["all_labels"]["1"]["test"] <= 100 and "; labelled pool setting" in last
    assert "dataset.disable_validation=true" in open(out / "logs" / "classifier_all_labels_s1.log").readline()
    assert "dataset.train_subset=pretrain_labelled" in open(out / "logs" / "pretrain_supmam_s1.log").readline()
    test = read_labelled_splits(events, ("test",))["test"].targets(multi_label=True)
    present = test.sum(0) > 0
    assert result["chance"] == pytest.approx(100 * test.mean(0)[present].mean())  # a random ranking's AP
    for name in ("supmam", "scratch"):
        row = result["finetuned"][name]["1"]
        assert 0 <= row["test"] <= 100 and 0 <= row["test_seen"] <= 100
        per_class = row["test_AP_per_class"]  # fairseq-validate's per-class AP: its mean is the mAP
        assert len(per_class) == present.sum()
        assert np.mean(list(per_class.values())) == pytest.approx(row["test"], abs=0.02)
    assert result["mfcc_baseline"]["metric"] == "mAP" and result["linear_probe"]["supmam"]["1"]["metric"] == "mAP"
    assert (out / "held_out_mAP.png").stat().st_size > 10_000 and (out / "per_class_ap.png").stat().st_size > 10_000
    # the fine-tuning was multi-label, and chose its best checkpoint by mAP
    command = open(out / "logs" / "finetune_scratch_s1.log").readline()
    assert "task.multi_label=true" in command and "checkpoint.best_checkpoint_metric=mAP" in command


def test_demo_trains_its_clap_teacher_on_the_pool_captions_only(events, tmp_path, capsys, monkeypatch):
    """supmam-demo --teacher clap with no checkpoint: a CLAP is trained for the seed on the POOL's
    captions alone (no labelled clip, label, valid or test clip), its targets feed SupMAM-CLAP, and
    it is scored as a model of its own: zero-shot (what fairseq-validate printed) and a linear probe.
    With --workers 1 every run goes in turn (the same results as two lanes)."""
    monkeypatch.delenv("SUPMAM_CLAP_CHECKPOINT", raising=False)
    out = tmp_path / "out"
    code = demo_main(["--data", events, "--pretrain-data", events, "--out", str(out), "--methods", "supmam_clap",
                      "--teacher", "clap", "--teacher-updates", "2", "--pretrain-updates", "2", "--finetune-updates",
                      "2", "--validate-interval", "1", "--batch-size", "8", "--pretrain-batch-size", "8",
                      "--setting", "unlabelled-pool", "--workers", "1"])  # one lane: every run in turn
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "SupMAM-CLAP (CLAP teacher)" in last and "the teacher (a CLAP, 2 updates on the pool's captions): zero-shot" in last
    assert "; unlabelled pool setting" in last and "every labelled pretraining clip" not in last
    result = json.load(open(out / "results.json"))
    assert result["teacher"] == "trained here" and result["teacher_updates"] == 2
    teacher_log = open(out / "logs" / "clap_teacher_s1.log").read()
    command = teacher_log.splitlines()[0]
    assert "dataset.train_subset=pool" in command and "dataset.disable_validation=true" in command
    assert "| valid |" not in teacher_log  # it never validated, so no labelled split chose it
    tokenizer_command = open(out / "logs" / "tokenizer.log").readline()
    assert "--splits pool" in tokenizer_command
    row = result["clap_teacher"]["1"]
    validate_log = open(out / "logs" / "clap_teacher_s1_test.log").read()
    assert row["zero_shot"] == parse_validate_output(validate_log, "test")["zero_shot_mAP"]
    assert 0 <= row["zero_shot"] <= 100 and row["probe"]["metric"] == "mAP" and row["probe_test"] == row["probe"]["test"]
    # its targets are what SupMAM-CLAP read: the pretraining names the teacher and its seed's cache
    pretrain_command = open(out / "logs" / "pretrain_supmam_clap_s1.log").readline()
    assert "model.teacher=clap" in pretrain_command
    assert f"model.teacher_checkpoint={out / 'clap_teacher_s1' / 'checkpoint_last.pt'}" in pretrain_command
    assert f"task.teacher_cache={out / 'teacher_cache_s1'}" in pretrain_command


@pytest.mark.parametrize("start", ["audiomae", "scratch"])
def test_demo_in_the_labelled_pool_setting_runs_laion_claps_recipe(events, tmp_path, capsys, monkeypatch, start):
    """--teacher-recipe laion-clap: the classifier from scratch on every labelled pretraining clip (scored
    on test: the all-labels bar), run beside the chain; the teacher's classifier (--teacher-start: fine-tuned
    on every label from an AudioMAE pretraining on the pretraining clips, or that bar itself); a CLAP whose
    audio tower starts from it, trained on the labelled pool's captions and captions made from its labels,
    whose targets feed SupMAM-CLAP; the line says the setting and where the teacher started."""
    monkeypatch.delenv("SUPMAM_CLAP_CHECKPOINT", raising=False)
    out = tmp_path / "out"
    code = demo_main(["--data", events, "--pretrain-data", events, "--out", str(out), "--methods", "supmam_clap",
                      "--teacher-recipe", "laion-clap", "--teacher-updates", "2", "--pretrain-updates", "2",
                      "--finetune-updates", "2", "--classifier-updates", "2", "--validate-interval", "1",
                      "--batch-size", "8", "--pretrain-batch-size", "8", "--teacher-start", start, "--mae-updates", "3"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "from scratch on every labelled pretraining clip" in last and "; labelled pool setting" in last
    words = {"audiomae": "fine-tuned from an AudioMAE pretraining (3 updates)", "scratch": "from scratch"}[start]
    assert f"LAION-CLAP's recipe: a CLAP from the classifier on every label {words}, 2 updates" in last
    result = json.load(open(out / "results.json"))
    bar = out / "classifier_all_labels_s1" / "checkpoint_best.pt"
    command = open(out / "logs" / "classifier_all_labels_s1.log").readline()
    assert "dataset.train_subset=pretrain_labelled" in command and "model.pretrained= " in command
    validated = parse_validate_output(open(out / "logs" / "classifier_all_labels_s1_test.log").read(), "test")
    assert result["all_labels"]["1"]["test"] == validated["mAP"]
    if start == "audiomae":
        mae = open(out / "logs" / "teacher_start_audiomae_s1.log").readline()
        assert "recipes/pretraining --config-name audiomae " in mae and "dataset.train_subset=pretrain_labelled" in mae and "optimization.max_update=3" in mae
        classifier = out / "teacher_classifier_s1" / "checkpoint_best.pt"
        command = open(out / "logs" / "teacher_classifier_s1.log").readline()
        assert f"model.pretrained={out / 'teacher_start_audiomae_s1' / 'checkpoint_last.pt'}" in command
        assert "dataset.train_subset=pretrain_labelled" in command and "model.layer_decay=1.0" not in command
    else:
        classifier = bar
        assert not (out / "teacher_classifier_s1").exists()
    clap = open(out / "logs" / "clap_laion_recipe_s1.log").readline()
    assert f"model.audio_init={classifier}" in clap and "task.label_captions=label" in clap
    assert "dataset.train_subset=pretrain_labelled" in clap
    pretrain_command = open(out / "logs" / "pretrain_supmam_clap_s1.log").readline()
    assert "model.teacher=clap" in pretrain_command and "dataset.train_subset=pretrain_labelled" in pretrain_command
    assert f"model.teacher_checkpoint={out / 'clap_laion_recipe_s1' / 'checkpoint_last.pt'}" in pretrain_command
    row = result["clap_teacher"]["1"]
    assert 0 <= row["zero_shot"] <= 100 and row["probe"]["metric"] == "mAP"


def test_a_clap_teacher_trained_afresh_never_resumes_an_earlier_checkpoint(events, tmp_path):
    """train_clap_teacher without reuse empties its run's folder: a checkpoint_last.pt left there by an
    earlier teacher (here: bytes fairseq cannot load) is not resumed as if it were this one."""
    from supmam_plugin.experiments.clap_teacher import train_clap_teacher
    from supmam_plugin.experiments.settings import ON_CPU, TINY, Workspace

    stale = tmp_path / "clap_teacher_s1" / "checkpoint_last.pt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not a checkpoint")
    (tmp_path / "logs").mkdir()
    checkpoint, seconds, reused = train_clap_teacher(Workspace(str(tmp_path)), events, 1, 2, 192, TINY, ON_CPU, batch_size=8)
    assert not reused and seconds > 0
    log = open(tmp_path / "logs" / "clap_teacher_s1.log").read()
    assert "No existing checkpoint found" in log and "Loaded checkpoint" not in log
    assert os.path.getsize(checkpoint) > 1000


def test_laion_claps_recipe_on_a_labelled_pool_without_captions(events, tmp_path):
    """A user's AudioSet: every pretraining clip labelled, no caption file. LAION-CLAP's recipe still
    runs: the tokenizer and the CLAP caption each clip from its labels only (keyword captions naming
    exactly its classes), as LAION-CLAP captioned AudioSet."""
    import shutil

    from supmam_plugin.experiments.clap_teacher import train_clap_teacher
    from supmam_plugin.experiments.settings import ON_CPU, TINY, Workspace
    from supmam_plugin.core.captions import CaptionTokenizer

    labels_only = str(tmp_path / "set")
    shutil.copytree(events, labels_only, ignore=shutil.ignore_patterns("*.text", "audio"))
    os.symlink(os.path.join(events, "audio"), os.path.join(labels_only, "audio"))
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    checkpoint, _, _ = train_clap_teacher(Workspace(str(out)), labels_only, 1, 2, 192, TINY, ON_CPU, batch_size=8,
                                          split="pretrain_labelled", name="clap_labels_only",
                                          extra=["task.label_captions=label"])
    assert os.path.isfile(checkpoint)
    tokenizer_command = open(out / "logs" / "tokenizer_text_pretrain_labelled.log").readline()
    assert "--label-captions label" in tokenizer_command
    log = open(out / "logs" / "clap_labels_only.log").read()
    assert "no pretrain_labelled.text: every clip is captioned from its labels only" in log
    tokenizer = CaptionTokenizer(str(out / "text_pretrain_labelled.spm.model"))
    assert len(tokenizer.processor.encode("The sound of kick drum and speech.")) <= 8  # whole words: it read them
