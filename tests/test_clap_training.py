"""Training a CLAP from captions through the real fairseq CLI: task clap_pretraining, model clap,
criterion clap_contrastive; fairseq-validate's retrieval over the whole subset equals the same
scores computed directly from the checkpoint's towers, one clip and one caption at a time; the
trained CLAP is a teacher (model.teacher=clap) whose targets are its audio tower's tokens."""
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import CPU_RUN, FIXTURES, TINY_MODEL, TONE_CLIPS, make_labelled_folder, run_cli, train_log_records
from supmam_plugin.commands.fairseq_runs import log_records, validate_command
from supmam_plugin.commands.train_tokenizer import main as train_tokenizer_main

TINY_CLAP = ["model.encoder_layers=2", "model.encoder_embed_dim=192", "model.encoder_heads=3", "model.text_layers=1",
             "model.text_embed_dim=64", "model.text_heads=2", "model.embed_dim=32", "task.target_frames=128"]
CPU = ["common.cpu=true", "dataset.num_workers=0", "common.log_interval=1", "common.log_format=json",
       "lr_scheduler.warmup_updates=1", "dataset.batch_size=4"]


@pytest.fixture(scope="module")
def caption_folder(tmp_path_factory):
    """The 12 tone clips as train and valid, each with a caption (two clips share one string, one
    clip has two captions) and a tokenizer trained on the training captions."""
    root = make_labelled_folder(tmp_path_factory.mktemp("captions"), ["low", "high"], TONE_CLIPS, split="train")
    captions = [f"a {labels[0]} tone, clip {i}" for i, (_, _, _, labels) in enumerate(TONE_CLIPS)]
    captions[5] = captions[3]
    captions[7] = f"{captions[7]} ||| a steady {TONE_CLIPS[7][3][0]} whistle"
    for split in ("train", "valid"):
        if split != "train":
            for ext in ("tsv", "label"):
                shutil.copy(os.path.join(root, f"train.{ext}"), os.path.join(root, f"{split}.{ext}"))
        with open(os.path.join(root, f"{split}.text"), "w") as f:
            f.write("\n".join(captions) + "\n")
    assert train_tokenizer_main([root, "--vocab-size", "60"]) == 0
    return root


@pytest.fixture(scope="module")
def trained_clap(caption_folder, tmp_path_factory):
    """(checkpoint, fairseq-hydra-train's output) of a tiny CLAP trained 3 updates on the captions."""
    save_dir = tmp_path_factory.mktemp("clap")
    trained = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/clap", "--config-name", "vit",
                       f"task.data={caption_folder}", f"checkpoint.save_dir={save_dir}", "optimization.max_update=3",
                       "task.zero_shot_labels=label", *TINY_CLAP, *CPU])
    assert trained.returncode == 0, trained.stdout[-4000:]
    return os.path.join(save_dir, "checkpoint_last.pt"), trained.stdout


def test_clap_trains_and_validate_scores_retrieval_over_the_whole_subset(caption_folder, trained_clap):
    checkpoint, output = trained_clap
    records = train_log_records(output)
    assert [r["num_updates"] for r in records] == ["1", "2", "3"]
    assert all(float(r["loss"]) > 0 for r in records)
    assert float(records[0]["inverse_temperature"]) == pytest.approx(1 / 0.07, abs=0.05)

    cmd = validate_command(caption_folder, checkpoint, "valid", batch_size=5, cpu=True, task="clap_pretraining")
    validated = run_cli([os.path.basename(cmd[0]), *cmd[1:]])
    assert validated.returncode == 0, validated.stdout[-4000:]
    logged = log_records(validated.stdout, "valid")
    logged = logged[-1] if logged else _last_valid_line(validated.stdout)

    direct = _retrieval_from_the_towers(checkpoint, caption_folder)
    for key, value in direct.items():
        assert float(logged[key]) == pytest.approx(value, abs=1e-3), key


def _last_valid_line(output):
    """fairseq-validate prints its metrics as 'valid on 'valid' subset | key value | ...'."""
    line = [line for line in output.splitlines() if "valid on 'valid' subset" in line][-1]
    fields = [part.strip().split(" ", 1) for part in line.split("|")[1:]]
    return {key: value for key, value in (f for f in fields if len(f) == 2)}


def _retrieval_from_the_towers(checkpoint, data):
    """Retrieval and zero-shot accuracy computed without fairseq's batches or meters: each clip, each
    caption and each class prompt alone."""
    from fairseq import checkpoint_utils

    import supmam_plugin  # noqa: F401  (registers the task and model)
    from supmam_plugin.core.retrieval import audio_text_retrieval

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    task.load_dataset("valid")
    dataset = task.datasets["valid"]
    audio, text = [], {}
    with torch.no_grad():
        for i in range(len(dataset)):
            batch = dataset.collater([dataset[i]])
            audio.append(model.embed_audio(batch["net_input"]["source"], batch["net_input"]["source_lengths"])[0])
            for caption in dataset.captions[i]:
                tokens = torch.tensor([task.tokenizer.encode(caption, task.cfg.max_text_tokens)])
                text[caption] = model.embed_text(tokens)[0].numpy()
        prompts = torch.stack([model.embed_text(torch.tensor([task.tokenizer.encode(f"This is a sound of {name}.")]))[0]
                               for name in task.zero_shot_classes])
    audio = torch.stack(audio)
    labels = [clip_labels[0] for clip_labels in dataset.zero_shot_labels]
    accuracy = 100.0 * float(((audio @ prompts.t()).argmax(dim=1) == torch.tensor(labels)).float().mean())
    return {**audio_text_retrieval(audio.numpy(), text, dataset.captions), "zero_shot_accuracy": accuracy}


def test_the_clap_teachers_targets_are_its_audio_towers_tokens(trained_clap):
    """model.teacher=clap: the targets on the CLAP's own grid are its last block's tokens (computed
    here through the model fairseq loads, by hand), normalised per patch; another kind of
    checkpoint is refused."""
    from fairseq import checkpoint_utils

    from supmam_plugin.core.checkpoints import CheckpointError
    from supmam_plugin.core.fbank import FbankSettings, batch_fbank
    from supmam_plugin.teachers.trained_clap import TrainedClapTeacher

    checkpoint, _ = trained_clap
    model = checkpoint_utils.load_model_ensemble([checkpoint])[0][0].eval()
    encoder = model.encoder
    teacher = TrainedClapTeacher(checkpoint, grid=encoder.grid)
    waveform = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (2, teacher.num_samples))).float()
    targets = teacher(waveform)  # (B, L, D)

    fbank = batch_fbank(waveform, torch.full((2,), teacher.num_samples), encoder.grid[0] * 16, FbankSettings())
    with torch.no_grad():
        x = torch.cat([encoder.cls_token.expand(2, -1, -1), encoder.embed_patches(fbank)], dim=1)
        for block in encoder.blocks:
            x = block(x)
    by_hand = torch.nn.functional.layer_norm(x[:, 1:], x.shape[-1:])  # last block, [CLS] dropped
    torch.testing.assert_close(targets, by_hand, atol=1e-4, rtol=1e-4)
    audiomae = os.path.join(FIXTURES, "audiomae_official", "pretrained.pth")  # the official AudioMAE model's
    with pytest.raises(CheckpointError, match="a checkpoint of kind 'audiomae', but model.teacher=clap reads clap"):
        TrainedClapTeacher(audiomae, grid=encoder.grid)


def test_mam_clap_trains_with_the_trained_clap_as_teacher(trained_clap, tone_dataset, tmp_path):
    checkpoint, _ = trained_clap
    out = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "mam_clap",
                   f"task.data={tone_dataset}", "model.teacher=clap", f"model.teacher_checkpoint={checkpoint}",
                   f"checkpoint.save_dir={tmp_path}", "optimization.max_update=2", "dataset.batch_size=4",
                   *TINY_MODEL, *CPU_RUN])
    assert out.returncode == 0, out.stdout[-3000:]
    assert "teacher clap (" in out.stdout
    records = train_log_records(out.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2"]
    assert all(np.isfinite(float(r["loss"])) and float(r["visible_loss"]) > 0 for r in records)


def test_zero_shot_on_several_labels_per_clip_needs_multi_label(caption_folder, tmp_path):
    data = tmp_path / "d"
    shutil.copytree(caption_folder, data)
    lines = open(data / "valid.label").read().splitlines()
    lines[2] = "low high"
    (data / "valid.label").write_text("\n".join(lines) + "\n")
    out = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/clap", "--config-name", "vit",
                   f"task.data={data}", f"checkpoint.save_dir={tmp_path / 'ck'}", "optimization.max_update=1",
                   "task.zero_shot_labels=label", *TINY_CLAP, *CPU])
    assert out.returncode != 0
    assert "valid.label:3: several labels on one line but task.multi_label=false" in out.stdout
