"""Class-balanced weighted sampling (AudioMAE's AS-2M sampler): the weights, the draws of the
dataset, and the epochs fairseq builds from them."""
import numpy as np
import pytest
import torch
from fairseq import tasks
from omegaconf import OmegaConf

import supmam_plugin  # noqa: F401  registers the tasks
from supmam_plugin.data.class_balanced_weights import class_balanced_weights

from conftest import make_labelled_folder


def test_weights_follow_audiomae_formula():
    # counts n = [3, 1, 1, 0]; w_c = 1000 / (n_c + 0.01); a clip sums the weights of its classes
    labels = [[0], [0], [0, 1], [2]]
    weights = class_balanced_weights(labels, num_classes=4)
    assert weights.dtype == np.float64 and weights.shape == (4,)
    np.testing.assert_allclose(
        weights, [332.22591362126246, 332.22591362126246, 1322.3249235222526, 990.0990099009901], rtol=1e-12
    )


def test_weights_reject_out_of_range_classes():
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 2\)"):
        class_balanced_weights([[0], [2]], num_classes=2)


def task_cfg(data, **overrides):
    cfg = {"_name": "supmam_audio_classification", "data": data, "seed": 1, "multi_label": True,
           "weighted_sampling": True}
    cfg.update(overrides)
    return OmegaConf.create(cfg)


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    """train: 20 clips of 'common' and one of 'rare' (0.1 s each); valid: 3 clips."""
    root = tmp_path_factory.mktemp("imbalanced")
    clips = [(f"common{i}.wav", 0.1, 16000, ["common"]) for i in range(20)] + [("rare.wav", 0.1, 16000, ["rare"])]
    make_labelled_folder(root, ["common", "rare"], clips, split="train")
    valid = [(f"v{i}.wav", 0.1, 16000, [["common", "rare"][i % 2]]) for i in range(3)]
    return make_labelled_folder(root, ["common", "rare"], valid, split="valid")


def load(data, split="train", **overrides):
    task = tasks.setup_task(task_cfg(data, **overrides))
    task.load_dataset(split)
    return task, task.dataset(split)


def test_rare_class_is_drawn_as_often_as_common_one(imbalanced):
    _, dataset = load(imbalanced, epoch_length=20000)
    drawn = dataset.ordered_indices()
    rare = len(dataset) - 1  # the last manifest line
    # rare clip: 1000/1.01; the 20 common clips together: 20 * 1000/20.01
    expected = (1000 / 1.01) / (1000 / 1.01 + 20 * 1000 / 20.01)
    assert expected == pytest.approx(0.4976, abs=1e-4)
    assert np.mean(drawn == rare) == pytest.approx(expected, abs=0.02)  # uniform would give 1/21
    assert np.bincount(drawn, minlength=21)[:20].min() > 0  # every common clip still comes up


def test_epoch_length_and_manifest_size(imbalanced):
    _, dataset = load(imbalanced, epoch_length=57)
    assert len(dataset) == 21  # the manifest's size, whatever the epoch length
    drawn = dataset.ordered_indices()  # 57 draws of 21 clips: only possible with replacement
    assert len(drawn) == 57 and drawn.min() >= 0 and drawn.max() < 21
    _, whole = load(imbalanced)  # epoch_length 0: as many draws as clips
    assert len(whole.ordered_indices()) == 21


def test_epochs_differ_and_reruns_repeat(imbalanced):
    _, dataset = load(imbalanced, epoch_length=100)
    dataset.set_epoch(1)
    first = dataset.ordered_indices()
    np.testing.assert_array_equal(first, dataset.ordered_indices())  # same epoch, same draw
    dataset.set_epoch(2)
    second = dataset.ordered_indices()
    assert not np.array_equal(first, second)
    _, rerun = load(imbalanced, epoch_length=100)  # a new run with the same seed
    rerun.set_epoch(2)
    np.testing.assert_array_equal(second, rerun.ordered_indices())
    _, other_seed = load(imbalanced, epoch_length=100, seed=2)
    other_seed.set_epoch(2)
    assert not np.array_equal(second, other_seed.ordered_indices())


def test_validation_split_is_not_resampled(imbalanced):
    _, valid = load(imbalanced, split="valid", epoch_length=100)
    np.testing.assert_array_equal(valid.ordered_indices(), np.arange(3))


def epoch_ids(task, dataset, epoch, **kwargs):
    itr = task.get_batch_iterator(dataset, max_sentences=7, seed=1, epoch=epoch, num_workers=0, **kwargs)
    batches = [b for b in itr.next_epoch_itr(shuffle=True) if b]
    return torch.cat([b["id"] for b in batches]).tolist(), batches


def test_fairseq_epoch_yields_epoch_length_clips(imbalanced):
    task, dataset = load(imbalanced, epoch_length=56)
    ids, batches = epoch_ids(task, dataset, epoch=1)
    assert len(ids) == 56 and all(len(b["id"]) == 7 for b in batches)
    assert sorted(ids) == sorted(dataset.ordered_indices().tolist())  # fairseq sets the epoch first
    assert all(b["target"].shape == (7, 2) for b in batches)  # real clips and multi-hot targets
    assert ids.count(20) > 56 / 21 * 5  # the rare clip comes up far beyond its uniform share
    ids_2, _ = epoch_ids(task, dataset, epoch=2)
    assert len(ids_2) == 56 and sorted(ids_2) != sorted(ids)
    # two GPUs: both draw the same epoch and split its batches between them
    shards = [epoch_ids(task, dataset, epoch=1, num_shards=2, shard_id=k)[0] for k in range(2)]
    assert sorted(shards[0] + shards[1]) == sorted(ids) and len(shards[0]) == len(shards[1]) == 28


def test_config_errors(imbalanced):
    with pytest.raises(ValueError, match="epoch_length is only used with task.weighted_sampling"):
        tasks.setup_task(task_cfg(imbalanced, weighted_sampling=False, epoch_length=10))
    with pytest.raises(ValueError, match="weighted_sampling=true weights clips by their classes"):
        tasks.setup_task(OmegaConf.create({"_name": "supmam_pretraining", "data": imbalanced, "labels": None,
                                           "weighted_sampling": True}))
