"""Fine-tuning from a supmam checkpoint with fairseq-hydra-train, scoring with fairseq-validate;
the printed accuracy / mAP / per-class AP equal sklearn's on the same predictions."""
import ast
import os
import re

import numpy as np
import pytest
import torch
from fairseq import checkpoint_utils
from sklearn.metrics import accuracy_score, average_precision_score

from conftest import CPU_RUN, REPO, TINY_MODEL, make_labelled_folder, make_split_folder, run_cli, train_log_records

FINETUNE_RUN = [a for a in CPU_RUN if not a.startswith("lr_scheduler.")] + [
    "optimizer.groups.default.lr_scheduler.warmup_updates=1", "distributed_training.distributed_world_size=1"]
TINY_CLASSIFIER = [a for a in TINY_MODEL if not a.startswith(("model.decoder", "model.cls_hidden"))]


@pytest.fixture(scope="module")
def pretrained(tone_dataset, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("pretrained")
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "supmam",
        f"task.data={tone_dataset}", "task.multi_label=false", f"checkpoint.save_dir={save_dir}",
        "optimization.max_update=2", "dataset.batch_size=4", *TINY_MODEL, *CPU_RUN,
    ])
    assert out.returncode == 0, out.stdout[-3000:]
    return os.path.join(save_dir, "checkpoint_last.pt")


def multi_label_data(root):
    """16 clips of 4 classes, 1-3 labels each: a validation split of 10 clips over 4 batches."""
    rng = np.random.default_rng(0)
    classes = ["a", "b", "c", "d"]
    clips = []
    for i in range(16):
        labels = sorted({classes[i % 4], *rng.choice(classes, size=rng.integers(0, 3), replace=False)})
        clips.append((f"clip{i}.wav", 0.5 + 0.1 * (i % 5), 16000, labels))
    make_labelled_folder(root, classes, clips[:10], split="eval")
    return make_labelled_folder(root, classes, clips, split="train")


def write_subset(data, split, subset, keep):
    """``{subset}.tsv`` / ``{subset}.label``: the clips of ``split`` whose class names pass ``keep``."""
    entries = open(os.path.join(data, f"{split}.tsv")).read().splitlines()
    labels = open(os.path.join(data, f"{split}.label")).read().splitlines()
    kept = [(entry, line) for entry, line in zip(entries[1:], labels) if keep(line.split())]
    with open(os.path.join(data, f"{subset}.tsv"), "w") as f:
        f.write("\n".join([entries[0]] + [entry for entry, _ in kept]) + "\n")
    with open(os.path.join(data, f"{subset}.label"), "w") as f:
        f.write("\n".join(line for _, line in kept) + "\n")


def sklearn_per_class_ap(checkpoint, data, subset):
    """{class name: AP %} of the classes with a positive clip in ``subset``, from sklearn on the
    model's own outputs."""
    logits, target = predictions(checkpoint, data, subset)
    scores, target = torch.sigmoid(logits).numpy(), target.numpy()
    classes = [line.split()[0] for line in open(os.path.join(data, "dict.label.txt"))]
    has_positive = target.sum(0) > 0
    per_class = average_precision_score(target[:, has_positive], scores[:, has_positive], average=None)
    return dict(zip([c for c, keep in zip(classes, has_positive) if keep], 100 * per_class))


def finetune(data, save_dir, pretrained, extra=()):
    return run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/finetuning", "--config-name", "esc50",
        f"task.data={data}", f"model.pretrained={pretrained}", f"checkpoint.save_dir={save_dir}",
        "optimization.max_update=2", "dataset.batch_size=4", "task.target_frames=128", *TINY_CLASSIFIER,
        *FINETUNE_RUN, *extra,
    ])


def validate(data, checkpoint, subset, batch_size=3):
    out = run_cli(["fairseq-validate", data, "--user-dir", os.path.join(REPO, "supmam_plugin"), "--path", checkpoint,
                   "--task", "supmam_audio_classification", "--valid-subset", subset,
                   "--batch-size", str(batch_size), "--cpu"])
    assert out.returncode == 0, out.stdout[-3000:]
    line = [l for l in out.stdout.splitlines() if f"valid on '{subset}' subset" in l][-1]
    printed = {k: float(v) for k, v in re.findall(r"\| (\w+) ([-\d.]+)", line)}
    per_class = re.search(r"\| AP_per_class (\{.*?\})", line)
    if per_class:
        printed["AP_per_class"] = ast.literal_eval(per_class.group(1))
    return printed


def predictions(checkpoint, data, subset):
    """Scores of every clip of ``subset`` computed here, independently of fairseq-validate."""
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    task.load_dataset(subset)
    dataset = task.dataset(subset)
    batch = dataset.collater([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        logits = model(**batch["net_input"])["logits"]
    return logits, batch["target"]


def test_finetune_single_label_then_validate_accuracy_equals_sklearn(tone_dataset, pretrained, tmp_path):
    import shutil

    for name in ("train.tsv", "train.label"):  # score the training clips as a 12-clip subset
        shutil.copy(os.path.join(tone_dataset, name), tmp_path / name.replace("train", "valid"))
    shutil.copy(os.path.join(tone_dataset, "train.tsv"), tmp_path / "train.tsv")
    shutil.copy(os.path.join(tone_dataset, "train.label"), tmp_path / "train.label")
    shutil.copy(os.path.join(tone_dataset, "dict.label.txt"), tmp_path / "dict.label.txt")
    out = finetune(str(tmp_path), tmp_path / "ft", pretrained)
    assert out.returncode == 0, out.stdout[-3000:]
    assert f"encoder initialised from {pretrained}" in out.stdout
    assert "valid_accuracy" in train_log_records(out.stdout, "valid")[-1]
    best = str(tmp_path / "ft" / "checkpoint_best.pt")
    printed = validate(str(tmp_path), best, "valid", batch_size=5)  # 12 clips: 5 + 5 + 2
    logits, target = predictions(best, str(tmp_path), "valid")
    expected = 100 * accuracy_score(target.numpy(), logits.argmax(-1).numpy())
    assert printed["accuracy"] == pytest.approx(expected, abs=1e-3)
    assert printed["bsz"] == 12


def test_multi_label_map_over_the_whole_subset_equals_sklearn(pretrained, tmp_path):
    data = multi_label_data(tmp_path / "data")
    out = finetune(data, tmp_path / "ft", pretrained, ["task.multi_label=true", "dataset.valid_subset=eval",
                                                       "checkpoint.best_checkpoint_metric=mAP"])
    assert out.returncode == 0, out.stdout[-3000:]
    valid_records = train_log_records(out.stdout, "eval")  # fairseq tags validation with the subset
    assert valid_records and "eval_mAP" in valid_records[-1], out.stdout[-3000:]
    best = str(tmp_path / "ft" / "checkpoint_best.pt")
    printed = validate(data, best, "eval", batch_size=3)  # 10 clips in 4 batches
    logits, target = predictions(best, data, "eval")
    scores, target = torch.sigmoid(logits).numpy(), target.numpy()
    has_positive = target.sum(0) > 0
    expected = 100 * np.mean(average_precision_score(target[:, has_positive], scores[:, has_positive], average=None))
    assert printed["mAP"] == pytest.approx(expected, abs=1e-3)  # printed with 3 decimals
    assert printed["mAP_classes_skipped"] == float((~has_positive).sum())
    # averaging per batch would give another number: the test can tell the two apart
    per_batch = []
    for start in range(0, 10, 3):
        t, s = target[start:start + 3], scores[start:start + 3]
        keep = t.sum(0) > 0
        per_batch.append(np.mean(average_precision_score(t[:, keep], s[:, keep], average=None)))
    assert abs(100 * np.mean(per_batch) - expected) > 1.0

    # AP_per_class: sklearn's AP of each class (2 decimals), named and ordered as in dict.label.txt;
    # the same in the training run's json log (the model validated there is checkpoint_best.pt)
    expected_per_class = sklearn_per_class_ap(best, data, "eval")
    assert list(printed["AP_per_class"]) == list(expected_per_class) == ["a", "b", "c", "d"]
    assert printed["AP_per_class"] == pytest.approx(expected_per_class, abs=0.006)
    assert np.mean(list(printed["AP_per_class"].values())) == pytest.approx(printed["mAP"], abs=0.006)
    assert valid_records[-1]["eval_AP_per_class"] == printed["AP_per_class"]
    # a subset where class d has no positive: d is left out of AP_per_class (and the mAP), and counted
    write_subset(data, "eval", "eval_no_d", lambda names: "d" not in names)
    printed = validate(data, best, "eval_no_d", batch_size=3)
    expected_per_class = sklearn_per_class_ap(best, data, "eval_no_d")
    assert list(printed["AP_per_class"]) == ["a", "b", "c"] and printed["mAP_classes_skipped"] == 1
    assert printed["AP_per_class"] == pytest.approx(expected_per_class, abs=0.006)
    assert printed["mAP"] == pytest.approx(np.mean(list(expected_per_class.values())), abs=1e-3)


@pytest.mark.parametrize("multi_label, metric, fix", [
    ("true", "accuracy", "set checkpoint.best_checkpoint_metric=mAP (and checkpoint.maximize_best_checkpoint_metric=true)"),
    ("false", "mAP", "set checkpoint.best_checkpoint_metric=accuracy (and checkpoint.maximize_best_checkpoint_metric=true)"),
], ids=["multi_label-accuracy", "single_label-mAP"])
def test_a_best_checkpoint_metric_the_criterion_does_not_log_stops_the_run_before_any_update(
        multi_label, metric, fix, pretrained, tmp_path):
    """The esc50 recipe (best_checkpoint_metric=accuracy) on AudioSet-style data, and mAP on
    single-label data: fairseq would train a whole epoch, then stop in validate with KeyError."""
    data = make_split_folder(tmp_path / "data", ("a", "b", "c"), per_class={"train": 4, "valid": 2}, seconds=0.5,
                             multi_label=multi_label == "true")
    save_dir = tmp_path / "ft"
    out = finetune(data, save_dir, pretrained, [f"task.multi_label={multi_label}",
                                               f"checkpoint.best_checkpoint_metric={metric}"])
    assert out.returncode != 0
    assert fix in out.stdout, out.stdout[-3000:]
    assert "KeyError" not in out.stdout
    assert not train_log_records(out.stdout, "train_inner")
    assert not os.path.exists(save_dir / "checkpoint_last.pt")
