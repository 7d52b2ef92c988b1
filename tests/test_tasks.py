"""The two tasks through fairseq's own setup_task / load_dataset, producing real batches."""

import numpy as np
import pytest
import torch
from fairseq import tasks
from omegaconf import OmegaConf

import supmam_plugin  # noqa: F401  registers the tasks
from supmam_plugin.core.fbank import batch_fbank, kaldi_fbank, normalize_fbank, pad_or_crop_frames
from supmam_plugin.core.audio import read_mono, resample
from supmam_plugin.teachers import ClapTeacher

from conftest import make_labelled_folder

CLASSES = ["dog", "rain", "siren"]


def task_cfg(name, data, **overrides):
    cfg = {"_name": name, "data": data, "seed": 1}
    cfg.update(overrides)
    return OmegaConf.create(cfg)


def first_batch(task, split, size):
    dataset = task.dataset(split)
    return dataset.collater([dataset[i] for i in range(size)])


@pytest.fixture
def single_label_dir(tmp_path):
    clips = [
        ("a/dog1.wav", 1.0, 16000, ["dog"]),
        ("a/rain1.wav", 12.0, 22050, ["rain"]),   # longer than 10.24 s: cropped
        ("b/siren1.flac", 0.5, 48000, ["siren"]),
        ("b/dog2.wav", 2.0, 16000, ["dog"]),
    ]
    return make_labelled_folder(tmp_path, CLASSES, clips, split="train")


def test_classification_task_loads_and_batches(single_label_dir):
    task = tasks.setup_task(task_cfg("supmam_audio_classification", single_label_dir))
    assert task.classes == CLASSES and task.num_classes == 3
    task.load_dataset("train")
    batch = first_batch(task, "train", 4)
    source, lengths = batch["net_input"]["source"], batch["net_input"]["source_lengths"]
    assert source.shape == (4, 164080)  # the 12 s clip is cropped to 1024 frames' worth
    assert lengths.tolist() == [16000, 164080, 8000, 32000]
    assert batch["target"].tolist() == [0, 1, 2, 0]
    assert torch.all(source[0, 16000:] == 0)
    fbank = batch_fbank(source, lengths)
    assert fbank.shape == (4, 1024, 128)


def test_validation_crop_is_deterministic_and_training_crop_random(single_label_dir):
    task = tasks.setup_task(task_cfg("supmam_audio_classification", single_label_dir))
    task.load_dataset("train")
    dataset = task.dataset("train")
    dataset.set_epoch(1)
    crop_epoch1 = dataset[1]["source"]
    assert torch.equal(crop_epoch1, dataset[1]["source"])  # same seed, epoch and index
    dataset.set_epoch(2)
    assert not torch.equal(crop_epoch1, dataset[1]["source"])
    # the same split name loaded without random crop starts at the beginning of the file
    task_fixed = tasks.setup_task(task_cfg("supmam_audio_classification", single_label_dir, random_crop=False))
    task_fixed.load_dataset("train")
    wave, rate = read_mono(task_fixed.dataset("train").manifest.audio_path(1))
    expected = resample(wave[: int(np.ceil(164080 / 16000 * rate))], rate, 16000)[:164080]
    torch.testing.assert_close(task_fixed.dataset("train")[1]["source"], torch.from_numpy(expected))


def test_fbank_in_dataloader_equals_fbank_on_device(single_label_dir):
    task = tasks.setup_task(task_cfg("supmam_audio_classification", single_label_dir, fbank_in_dataloader=True))
    task.load_dataset("train")
    batch = first_batch(task, "train", 2)
    item = task.dataset("train")[0]["source"]
    alone = normalize_fbank(pad_or_crop_frames(kaldi_fbank(item), 1024))
    assert batch["net_input"]["fbank"].dtype == torch.float64  # kept out of fairseq's bf16/fp16 cast
    torch.testing.assert_close(batch["net_input"]["fbank"][0].float(), alone, atol=1e-4, rtol=0)


def test_multi_label_targets_are_multi_hot(tmp_path):
    clips = [("x.wav", 1.0, 16000, ["dog", "siren"]), ("y.wav", 1.0, 16000, ["rain"])]
    data = make_labelled_folder(tmp_path, CLASSES, clips, split="eval")
    task = tasks.setup_task(task_cfg("supmam_audio_classification", data, multi_label=True))
    task.load_dataset("eval")
    batch = first_batch(task, "eval", 2)
    assert batch["target"].tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_pretraining_task_without_labels_and_with_teacher_audio(single_label_dir):
    task = tasks.setup_task(task_cfg("supmam_pretraining", single_label_dir))
    assert task.classes is None
    task.teacher = ClapTeacher("random")  # what build_model sets: the model's teacher (10 s at 48 kHz)
    task.load_dataset("train")
    batch = first_batch(task, "train", 3)
    assert "target" not in batch
    teacher = batch["net_input"]["teacher_source"]
    assert teacher.shape == (3, 480000)
    # the 1 s 16 kHz clip gives 1 s at 48 kHz, then zeros; the 0.5 s 48 kHz clip is unchanged
    assert teacher[0, 47000].abs() > 0 and torch.all(teacher[0, 48001:] == 0)
    wave, _ = read_mono(task.dataset("train").manifest.audio_path(2))
    torch.testing.assert_close(teacher[2, : len(wave)], torch.from_numpy(wave).double())  # exact, float64
    # the teacher's span starts where the student's crop starts (12 s clip, random crop)
    dataset = task.dataset("train")
    student, teacher_long = dataset[1]["source"].numpy(), dataset[1]["teacher_source"].numpy()
    down = resample(teacher_long, 48000, 16000)
    assert np.corrcoef(student[2000:150000], down[2000:150000])[0, 1] > 0.99
    assert batch["net_input"]["teacher_source_lengths"].tolist() == [48000, 480000, len(wave)]


def test_pretraining_task_with_labels(single_label_dir):
    task = tasks.setup_task(task_cfg("supmam_pretraining", single_label_dir, labels="label"))
    task.load_dataset("train")
    assert first_batch(task, "train", 2)["target"].tolist() == [0, 1]


def test_batches_through_fairseq_iterator(single_label_dir):
    task = tasks.setup_task(task_cfg("supmam_audio_classification", single_label_dir))
    task.load_dataset("train")
    # fairseq's default required_batch_size_multiple (8) would drop the tail batch of 1 clip
    itr = task.get_batch_iterator(task.dataset("train"), max_sentences=3, required_batch_size_multiple=8,
                                  seed=1, num_workers=0)
    batches = list(itr.next_epoch_itr(shuffle=True))
    assert sorted(len(b["id"]) for b in batches) == [1, 3]
    assert sorted(torch.cat([b["id"] for b in batches]).tolist()) == [0, 1, 2, 3]


# ----------------------------------------------------------------------------- task.probe_data, checked at start
# (issue 40: a bad probe folder trained until the first validation, 5,000 updates in, then stopped with
# nothing saved; with validation off it was ignored without a word)


def probe_task(data, probe_data, **overrides):
    return tasks.setup_task(task_cfg("supmam_pretraining", data, labels=None, probe_data=probe_data, **overrides))


def test_probe_data_is_read_when_the_task_is_set_up(single_label_dir, tmp_path):
    from conftest import make_split_folder

    probe = make_split_folder(tmp_path / "probe", per_class={"train": 3, "valid": 2})
    task = probe_task(single_label_dir, probe)
    assert {name: len(split.manifest) for name, split in task.probe_splits.items()} == {"train": 6, "valid": 4}
    with pytest.raises(ValueError, match=f"task.probe_data={tmp_path / 'absent'}.*not found"):
        probe_task(single_label_dir, str(tmp_path / "absent"))


def test_a_probe_folder_with_a_label_off_its_class_list_is_refused_at_start(single_label_dir, tmp_path):
    from conftest import make_split_folder

    probe = make_split_folder(tmp_path / "probe", per_class={"train": 3, "valid": 2})
    lines = (tmp_path / "probe" / "valid.label").read_text().splitlines()
    lines[1] = "class_z"
    (tmp_path / "probe" / "valid.label").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"valid\.label:2.*class_z"):
        probe_task(single_label_dir, probe)


def test_a_multi_label_probe_folder_needs_probe_multi_label(single_label_dir, tmp_path):
    from conftest import make_split_folder

    probe = make_split_folder(tmp_path / "probe", per_class={"train": 3, "valid": 2}, multi_label=True)
    with pytest.raises(ValueError, match="task.probe_multi_label=true"):
        probe_task(single_label_dir, probe)
    assert probe_task(single_label_dir, probe, probe_multi_label=True).probe_splits["train"].targets(True).shape == (6, 2)


def test_a_probe_with_validation_off_is_warned_about(single_label_dir, tmp_path, caplog):
    import logging

    from conftest import make_split_folder

    probe = make_split_folder(tmp_path / "probe", per_class={"train": 3, "valid": 2})
    task = probe_task(single_label_dir, probe)
    task.load_dataset("train", combine=True)  # fairseq's training split; with validation off nothing else
    with caplog.at_level(logging.WARNING):
        task.begin_epoch(1, None)
    assert "validation is off" in caplog.text and "dataset.disable_validation=false" in caplog.text
    caplog.clear()
    task.load_dataset("train", combine=False)  # a validation split (here the same clips)
    with caplog.at_level(logging.WARNING):
        task.begin_epoch(1, None)
    assert "validation is off" not in caplog.text
