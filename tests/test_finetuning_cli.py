"""Fine-tuning from a supmam checkpoint with fairseq-hydra-train, scoring with fairseq-validate;
the printed accuracy / mAP equal sklearn's on the same predictions."""
import os
import re

import numpy as np
import pytest
import torch
from fairseq import checkpoint_utils
from sklearn.metrics import accuracy_score, average_precision_score

from conftest import CPU_RUN, REPO, TINY_MODEL, make_labelled_folder, run_cli, train_log_records

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
    return {k: float(v) for k, v in re.findall(r"\| (\w+) ([-\d.]+)", line)}


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
