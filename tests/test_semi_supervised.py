"""Semi-supervised SupMAM (``task.allow_unlabeled=true``): empty label lines mark unlabelled clips,
which train the target only; the classification loss and accuracy use the labelled clips only.
Label files, the dataset's targets, the criterion against hand-computed numbers, the pool +
labelled manifest builder, and a 2-update fairseq-hydra-train run."""
from __future__ import annotations

import importlib.util
import math
import os

import pytest
import torch
import torch.nn.functional as F
from fairseq import tasks
from fairseq.logging import metrics
from omegaconf import OmegaConf

from conftest import CPU_RUN, REPO, TINY_MODEL, make_labelled_folder, run_cli, train_log_records
from supmam_plugin.criterions.supmam_loss import (
    SupmamCriterion,
    SupmamCriterionConfig,
    classification_loss,
    labelled_clips,
)
from supmam_plugin.core.manifest import ManifestError, read_class_list, read_labels, read_manifest
from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel
from supmam_plugin.tasks.audio_classification import SupmamAudioClassificationConfig

CLASSES = ["dog", "rain", "siren"]
# Clips 2 and 4 (1-based label lines) unlabelled; the LAST clip unlabelled too (a trailing blank line).
LABELS = [["dog"], [], ["siren"], [], ["rain"], []]
CE_1 = math.log(1 + math.exp(-1))  # CE of logits [1, 0] (after / 10) with y = 0: 0.3132616875182229


@pytest.fixture
def semi_dir(tmp_path):
    clips = [(f"clip{i}.wav", 1.0, 16000, labels) for i, labels in enumerate(LABELS)]
    return make_labelled_folder(tmp_path / "semi", CLASSES, clips, split="train")


def task_cfg(name, data, **overrides):
    return OmegaConf.create({"_name": name, "data": data, "seed": 1, "labels": "label", **overrides})


# --------------------------------------------------------------------------------------------
# Label files
# --------------------------------------------------------------------------------------------


def test_read_labels_with_and_without_allow_unlabeled(semi_dir):
    manifest = read_manifest(os.path.join(semi_dir, "train.tsv"))
    label_path = os.path.join(semi_dir, "train.label")
    assert open(label_path).read() == "dog\n\nsiren\n\nrain\n\n"  # 6 lines, the last one empty
    with pytest.raises(ManifestError, match=r"train\.label:2: no label for clip1\.wav.*task\.allow_unlabeled=true"):
        read_labels(label_path, CLASSES, manifest)
    labels = read_labels(label_path, CLASSES, manifest, allow_unlabeled=True)
    assert labels == [[0], [], [2], [], [1], []]
    # Blank lines past the last clip are still ignored; a missing line is still a count error.
    with open(label_path, "a") as f:
        f.write("\n\n")
    assert read_labels(label_path, CLASSES, manifest, allow_unlabeled=True) == labels
    with open(label_path, "w") as f:
        f.write("dog\n\nsiren\n\nrain\n")  # 5 lines for 6 clips
    with pytest.raises(ManifestError, match=r"5 label lines but .*train\.tsv lists 6 clips"):
        read_labels(label_path, CLASSES, manifest, allow_unlabeled=True)
    # An unknown class on a labelled line is still an error with the flag.
    with open(label_path, "w") as f:
        f.write("dog\n\ncat\n\nrain\n\n")
    with pytest.raises(ManifestError, match=r"train\.label:3: label\(s\) \['cat'\] not in the class list"):
        read_labels(label_path, CLASSES, manifest, allow_unlabeled=True)


def test_a_trailing_empty_line_for_the_last_clip_is_its_missing_label(semi_dir):
    # Without the flag the empty 6th line is reported as clip 6's missing label, not as a count error.
    manifest = read_manifest(os.path.join(semi_dir, "train.tsv"))
    with open(os.path.join(semi_dir, "train.label"), "w") as f:
        f.write("dog\nrain\nsiren\ndog\nrain\n\n")
    with pytest.raises(ManifestError, match=r"train\.label:6: no label for clip5\.wav"):
        read_labels(os.path.join(semi_dir, "train.label"), CLASSES, manifest)


# --------------------------------------------------------------------------------------------
# Tasks and the dataset's targets
# --------------------------------------------------------------------------------------------


def _batch(task, split="train"):
    dataset = task.dataset(split)
    return dataset.collater([dataset[i] for i in range(len(dataset))])


def test_pretraining_task_single_label_targets(semi_dir):
    task = tasks.setup_task(task_cfg("supmam_pretraining", semi_dir, allow_unlabeled=True))
    task.load_dataset("train")
    assert _batch(task)["target"].tolist() == [0, -100, 2, -100, 1, -100]
    # Without the flag: today's error, which names the flag.
    strict = tasks.setup_task(task_cfg("supmam_pretraining", semi_dir))
    with pytest.raises(ManifestError, match=r"train\.label:2: no label .*task\.allow_unlabeled=true"):
        strict.load_dataset("train")


def test_pretraining_task_multi_label_targets(semi_dir):
    with open(os.path.join(semi_dir, "train.label"), "w") as f:
        f.write("dog rain\n\nsiren\n\nrain\n\n")
    task = tasks.setup_task(task_cfg("supmam_pretraining", semi_dir, allow_unlabeled=True, multi_label=True))
    task.load_dataset("train")
    assert _batch(task)["target"].tolist() == [
        [1.0, 1.0, 0.0], [-1.0, -1.0, -1.0], [0.0, 0.0, 1.0], [-1.0, -1.0, -1.0], [0.0, 1.0, 0.0], [-1.0, -1.0, -1.0],
    ]


def test_fine_tuning_never_allows_unlabelled_lines(semi_dir):
    assert "allow_unlabeled" not in SupmamAudioClassificationConfig.__dataclass_fields__
    task = tasks.setup_task(task_cfg("supmam_audio_classification", semi_dir))
    assert task.allow_unlabeled is False
    with pytest.raises(ManifestError, match=r"train\.label:2: no label for clip1\.wav"):
        task.load_dataset("train")


def test_weighted_sampling_refuses_unlabelled_clips(semi_dir):
    task = tasks.setup_task(task_cfg("supmam_pretraining", semi_dir, allow_unlabeled=True, weighted_sampling=True))
    with pytest.raises(ManifestError, match=r"3 unlabelled clips would never be drawn.*weighted_sampling=false"):
        task.load_dataset("train")


# --------------------------------------------------------------------------------------------
# Criterion
# --------------------------------------------------------------------------------------------


def test_classification_loss_ignores_unlabelled_clips_by_hand():
    # tau = 10. Clips 0 and 2 labelled, 1 and 3 unlabelled (-100).
    #   clip 0: [10, 0] -> [1, 0], y=0: CE = log(1 + e^-1)     = 0.3132616875182229
    #   clip 2: [0, -10] -> [0, -1], y=1: CE = log(1 + e^-1) + 1 = 1.3132616875182228
    logits = torch.tensor([[10.0, 0.0], [0.0, 50.0], [0.0, -10.0], [10.0, 0.0]], requires_grad=True)
    target = torch.tensor([0, -100, 1, -100])
    ce = classification_loss(logits, target, temperature=10.0)
    torch.testing.assert_close(ce, torch.tensor([CE_1, 0.0, CE_1 + 1, 0.0]), rtol=0, atol=1e-6)
    assert labelled_clips(target).tolist() == [True, False, True, False]
    ce.sum().backward()
    assert torch.all(logits.grad[[1, 3]] == 0) and torch.all(logits.grad[[0, 2]] != 0)

    # None labelled: zeros, not NaN.
    none = classification_loss(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([-100, -100]), 10.0)
    assert none.tolist() == [0.0, 0.0]

    # Multi-label: rows of -1 are masked; BCE of the other rows as in the fully labelled case:
    #   clip 0: [10, -20] -> [1, -2], y=[1, 0]: (log(1 + e^-1) + log(1 + e^-2)) / 2 = 0.22009484928059775
    #   clip 2: [0, 30] -> [0, 3],   y=[1, 1]: (log 2 + log(1 + e^-3)) / 2         = 0.37086726606684367
    logits = torch.tensor([[10.0, -20.0], [5.0, -5.0], [0.0, 30.0]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0], [-1.0, -1.0], [1.0, 1.0]])
    bce = classification_loss(logits, target, temperature=10.0)
    torch.testing.assert_close(bce, torch.tensor([0.22009484928059775, 0.0, 0.37086726606684367]), rtol=0, atol=1e-6)
    bce.sum().backward()
    assert torch.all(logits.grad[1] == 0) and torch.all(logits.grad[0] != 0)
    assert labelled_clips(target).tolist() == [True, False, True]


def reduced(logging_outputs) -> dict:
    with metrics.aggregate(new_root=True) as agg:
        SupmamCriterion.reduce_metrics(logging_outputs)
        return agg.get_smoothed_values()


def test_reduce_metrics_per_labelled_clip_by_hand():
    # Batch 1: 4 clips, 2 labelled (the CE numbers above), 1 correct. Batch 2: 4 clips, none labelled.
    first = {"loss": 8.0, "sample_size": 4, "nsentences": 4, "target_loss": 8.0, "masked_loss": 8.0,
             "visible_loss": 0.0, "cls_loss": 2 * CE_1 + 1, "cls_labelled": 2, "cls_correct": 1}
    second = {"loss": 4.0, "sample_size": 4, "nsentences": 4, "target_loss": 4.0, "masked_loss": 4.0,
              "visible_loss": 0.0, "cls_loss": 0.0, "cls_labelled": 0, "cls_correct": 0}
    both = reduced([first, second])
    assert both["loss"] == pytest.approx(12.0 / 8)
    assert both["cls_loss"] == pytest.approx(round((2 * CE_1 + 1) / 2, 4))  # per labelled clip, not / 8
    assert both["cls_accuracy"] == 50.0  # 1 of 2 labelled, not 1 of 8
    assert both["cls_labelled"] == 2
    alone = reduced([second])
    assert alone["cls_loss"] == 0.0 and alone["cls_accuracy"] == 0.0 and alone["cls_labelled"] == 0
    assert not any(math.isnan(v) for v in alone.values())


def _tiny_supmam(num_classes):
    """The SupMAM recipe's model at conftest's TINY_MODEL size (2 x 192 encoder)."""
    torch.manual_seed(0)
    tiny = {arg.split("=")[0].split(".")[1]: int(arg.split("=")[1]) for arg in TINY_MODEL}
    cfg = OmegaConf.structured(SupmamConfig(**tiny, target="spectrogram", mask_ratio=0.4, cls_branch=True))
    return SupmamModel(cfg, num_classes=num_classes, sample_rate=16000)


def test_criterion_on_a_half_labelled_batch_and_an_unlabelled_one():
    model = _tiny_supmam(num_classes=3)
    model.train()
    fbank = torch.randn(4, 1024, 128, generator=torch.Generator().manual_seed(3))
    sample = {"net_input": {"fbank": fbank, "clip_ids": torch.arange(4)}, "target": torch.tensor([2, -100, 0, -100])}
    criterion = SupmamCriterion(SupmamCriterionConfig(lambda_cls=0.5), task=None)
    outputs = []
    handle = model.register_forward_hook(lambda m, i, o: outputs.append(o))
    try:
        loss, sample_size, log = criterion(model, sample)
        out = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in outputs[0].items()}
        # Reference: plain CE on the labelled rows only.
        ce = F.cross_entropy(out["cls_logits"][[0, 2]].double() / 10.0, torch.tensor([2, 0]), reduction="sum")
        assert sample_size == 4 and log["cls_labelled"] == 2
        assert log["cls_loss"] == pytest.approx(ce.item(), rel=1e-5)
        assert loss.item() == pytest.approx(log["target_loss"] + 0.5 * ce.item(), rel=1e-5)
        predicted = out["cls_logits"].argmax(-1)
        assert log["cls_correct"] == int(predicted[0] == 2) + int(predicted[2] == 0)

        # A batch with no labelled clip: cls_loss 0 (not NaN), the loss is the target loss, and the
        # classification head receives no gradient.
        sample["target"] = torch.tensor([-100, -100, -100, -100])
        model.zero_grad()
        loss, _, log = criterion(model, sample)
        loss.backward()
        assert log["cls_loss"] == 0.0 and log["cls_labelled"] == 0 and log["cls_correct"] == 0
        assert not math.isnan(loss.item()) and loss.item() == pytest.approx(log["target_loss"], rel=1e-6)
        grads = [p.grad for p in model.cls_branch.parameters()]
        assert all(g is None or torch.all(g == 0) for g in grads)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    finally:
        handle.remove()


# --------------------------------------------------------------------------------------------
# The pool + labelled manifest builder (scripts/make_demo_data.py --pool-dir)
# --------------------------------------------------------------------------------------------


def _make_demo_data_module():
    spec = importlib.util.spec_from_file_location("make_demo_data", os.path.join(REPO, "scripts", "make_demo_data.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pretrain_manifest_joins_unlabelled_pool_and_labelled_clips(tmp_path):
    data = tmp_path / "data"
    labelled = make_labelled_folder(data / "demo", CLASSES, [
        ("train/dog/a.wav", 1.0, 16000, ["dog"]), ("train/rain/b.wav", 1.0, 16000, ["rain"]),
    ])
    pool_dir = data / "demo_pool"
    # a pool manifest as make_pool writes it: root 'audio', no labels
    pool = make_labelled_folder(pool_dir, CLASSES, [(f"pool/00/{k:05d}.wav", 1.0, 16000, []) for k in range(3)])
    os.remove(os.path.join(pool, "train.label"))
    os.remove(os.path.join(pool, "dict.label.txt"))
    made = _make_demo_data_module().write_pretrain_manifest(str(pool_dir), labelled)
    assert made["root"] == ".." and made["pool"] == 3 and made["labelled"] == 2
    lines = open(made["tsv"]).read().splitlines()
    assert lines == ["..", "demo_pool/audio/pool/00/00000.wav\t16000", "demo_pool/audio/pool/00/00001.wav\t16000",
                     "demo_pool/audio/pool/00/00002.wav\t16000", "demo/audio/train/dog/a.wav\t16000",
                     "demo/audio/train/rain/b.wav\t16000"]
    assert open(os.path.join(pool_dir, "pretrain.label")).read() == "\n\n\ndog\nrain\n"
    assert read_class_list(os.path.join(pool_dir, "dict.label.txt")) == CLASSES
    assert os.path.isfile(os.path.join(pool_dir, "train.tsv"))  # the pool-only manifest stays
    # The task reads it from anywhere (the relative root resolves against the tsv's folder).
    task = tasks.setup_task(task_cfg("supmam_pretraining", str(pool_dir), allow_unlabeled=True))
    task.load_dataset("pretrain")
    dataset = task.dataset("pretrain")
    assert os.path.isfile(dataset.manifest.audio_path(4))
    assert dataset.collater([dataset[i] for i in range(5)])["target"].tolist() == [-100, -100, -100, 0, 1]


# --------------------------------------------------------------------------------------------
# fairseq-hydra-train
# --------------------------------------------------------------------------------------------


def test_supmam_recipe_trains_on_a_half_labelled_folder(semi_dir, tmp_path):
    args = [
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "supmam",
        f"task.data={semi_dir}", f"checkpoint.save_dir={tmp_path / 'ckpt'}", "optimization.max_update=2",
        "dataset.batch_size=6", "task.multi_label=false", "task.allow_unlabeled=true",
        *TINY_MODEL, *CPU_RUN,
    ]
    run = run_cli(args)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "train: 3 labelled and 3 unlabelled clips" in run.stdout
    records = train_log_records(run.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2"]
    for record in records:  # one batch of all 6 clips per update: 3 labelled
        assert float(record["cls_labelled"]) == 3
        assert math.isfinite(float(record["cls_loss"])) and float(record["cls_loss"]) > 0
        accuracy = float(record["cls_accuracy"])  # correct / 3 labelled, never / 6
        assert any(abs(accuracy - v) < 0.01 for v in (0.0, 100 / 3, 200 / 3, 100.0)), accuracy
