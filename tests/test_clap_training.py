"""Training a CLAP from captions through the real fairseq CLI: task clap_pretraining, model clap,
criterion clap_contrastive; fairseq-validate's retrieval over the whole subset equals the same
scores computed directly from the checkpoint's towers, one clip and one caption at a time; the
trained CLAP is a teacher (model.teacher=clap) whose targets are its audio tower's tokens."""
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import CPU_RUN, FIXTURES, REPO, TINY_MODEL, VENV_BIN, TONE_CLIPS, make_labelled_folder, run_cli, train_log_records
from supmam_plugin.experiments.fairseq_runs import log_records, validate_command
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


def test_a_clap_is_refused_with_another_caption_tokenizer(caption_folder, trained_clap, tmp_path):
    """Issue 40: a tokenizer of the same size trained on other captions gave other token ids and a
    silently different score. The CLAP records its tokenizer; fairseq-validate refuses another one."""
    checkpoint, _ = trained_clap
    other = str(tmp_path / "data")
    shutil.copytree(caption_folder, other)
    with open(os.path.join(other, "train.text"), "w") as f:
        f.write("\n".join(f"{word} sound number {i}" for i, word in enumerate(["wind", "bells"] * 6)) + "\n")
    assert train_tokenizer_main([other, "--vocab-size", "60"]) == 0
    with open(os.path.join(caption_folder, "text.spm.model"), "rb") as a, open(os.path.join(other, "text.spm.model"), "rb") as b:
        assert a.read() != b.read()
    cmd = validate_command(other, checkpoint, "valid", batch_size=5, cpu=True, task="clap_pretraining")
    refused = run_cli([os.path.basename(cmd[0]), *cmd[1:]])
    assert refused.returncode != 0
    assert f"learned the caption tokenizer {os.path.join(caption_folder, 'text.spm.model')}" in refused.stdout
    assert f"the task reads {os.path.join(other, 'text.spm.model')}" in refused.stdout
    assert "set task.caption_tokenizer" in refused.stdout


@pytest.mark.parametrize("tokens", [0, 1, 2])
def test_max_text_tokens_without_room_for_a_caption_is_refused_at_start(caption_folder, tokens):
    from fairseq import tasks
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"_name": "clap_pretraining", "data": caption_folder, "max_text_tokens": tokens})
    with pytest.raises(ValueError, match=f"task.max_text_tokens={tokens} leaves no room.*at least 3"):
        tasks.setup_task(cfg)


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


@pytest.fixture(scope="module")
def trained_htsat_clap(caption_folder, tmp_path_factory):
    """A CLAP with LAION-CLAP's HTS-AT tower (recipe htsat: 48 kHz, 10 s) trained one update."""
    save_dir = tmp_path_factory.mktemp("clap_htsat")
    trained = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/clap", "--config-name", "htsat",
                       f"task.data={caption_folder}", f"checkpoint.save_dir={save_dir}", "optimization.max_update=1",
                       "dataset.disable_validation=true", "model.text_layers=1", "model.text_embed_dim=64",
                       "model.text_heads=2", *CPU, "dataset.batch_size=2", "lr_scheduler.warmup_updates=0"])
    assert trained.returncode == 0, trained.stdout[-4000:]
    return os.path.join(save_dir, "checkpoint_last.pt")


def test_an_htsat_clap_exports_in_laion_clap_layout_and_the_laion_clap_teacher_reads_it(trained_htsat_clap, tmp_path):
    """supmam-export-clap writes the audio side under a release's names; model.teacher=laion_clap reads
    the file unchanged (strictly) and its targets are the trained tower's token map, taken here with
    a hook on the model fairseq loads (tokens) and through its own projection (projected)."""
    from fairseq import checkpoint_utils

    from supmam_plugin.commands.export_clap import main as export_clap_main
    from supmam_plugin.teachers.laion_clap import ClapTeacher

    export = str(tmp_path / "clap_release.pt")
    assert export_clap_main([trained_htsat_clap, export]) == 0
    release = torch.load(export, weights_only=True)
    assert set(release) == {"state_dict"}
    keys = set(release["state_dict"])
    assert "audio_branch.patch_embed.proj.weight" in keys and "audio_projection.2.weight" in keys
    assert "logit_scale_a" in keys and not any(k.startswith(("encoder.", "caption_encoder.")) for k in keys)

    model = checkpoint_utils.load_model_ensemble([trained_htsat_clap])[0][0].eval()
    waveform = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (2, 48000 * 3))).float()
    captured = {}
    hook = model.audio_branch.tscam_conv.register_forward_pre_hook(lambda m, inputs: captured.update(map=inputs[0]))
    with torch.no_grad():
        padded = torch.nn.functional.pad(waveform, (0, 480000 - waveform.shape[1]))
        model.audio_branch({"waveform": padded, "longer": torch.zeros(2, dtype=torch.bool)})
    hook.remove()

    tokens_teacher = ClapTeacher(export, model_name="HTSAT-tiny", feature="tokens")
    torch.testing.assert_close(tokens_teacher.token_map(waveform), captured["map"])
    projected_teacher = ClapTeacher(export, model_name="HTSAT-tiny", feature="projected")
    sampled = tokens_teacher(waveform)  # (B, 512 patches, 768)
    with torch.no_grad():
        torch.testing.assert_close(projected_teacher(waveform), model.audio_projection(sampled))


def test_clap_checkpoints_name_the_path_to_their_teacher(trained_clap, trained_htsat_clap, tmp_path, capsys):
    """A ViT-tower CLAP needs no export; an HTS-AT CLAP is not read as a ViT encoder: both say what to do."""
    from supmam_plugin.commands.export_clap import main as export_clap_main
    from supmam_plugin.core.checkpoints import CheckpointError, read_encoder

    vit_checkpoint, _ = trained_clap
    assert export_clap_main([vit_checkpoint, str(tmp_path / "x.pt")]) == 1
    assert f"model.teacher=clap model.teacher_checkpoint={vit_checkpoint}" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="model.teacher=clap .*supmam-export-clap .* model.teacher=laion_clap"):
        read_encoder(trained_htsat_clap)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_fairseq_workers_take_the_step_of_one_with_both_batches(tmp_path):
    """fairseq-hydra-train, 2 CPU processes (gloo, one launched per rank as on several nodes; fairseq's own
    legacy_ddp: its pytorch_ddp wraps for a GPU) x 2 clips vs 1
    process x the same 4 clips: the same logged loss and the same weights after one update. Adam's
    eps is set far above the gradients so that its first step is proportional to the gradient
    (lr * g / eps), not its sign: a gradient that differs shows in the weights."""
    import subprocess

    clips = TONE_CLIPS[:3] + TONE_CLIPS[4:5]  # 1.0 to 1.5 s: no crop of 1.92 s, no random draw
    data = make_labelled_folder(tmp_path / "data", ["low", "high"], clips, split="train")
    with open(os.path.join(data, "train.text"), "w") as f:
        f.write("".join(f"a {labels[0]} tone number {i}\n" for i, (_, _, _, labels) in enumerate(clips)))
    assert train_tokenizer_main([data, "--vocab-size", "30"]) == 0
    common = ["fairseq-hydra-train", "--config-dir", "examples/supmam/clap", "--config-name", "vit",
              f"task.data={data}", "optimization.max_update=1", "dataset.disable_validation=true", *TINY_CLAP,
              "task.target_frames=192", *CPU, "lr_scheduler.warmup_updates=0", "optimization.lr=[0.01]",
              "optimizer.adam_eps=1.0", "distributed_training.distributed_backend=gloo"]
    one = run_cli([*common, f"checkpoint.save_dir={tmp_path / 'one'}", "dataset.batch_size=4"])
    assert one.returncode == 0, one.stdout[-4000:]

    port = str(_free_port())
    workers = []
    for rank in range(2):
        env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
        args = [*common, f"checkpoint.save_dir={tmp_path / 'two'}", "dataset.batch_size=2",
                "distributed_training.distributed_world_size=2", f"distributed_training.distributed_rank={rank}",
                f"distributed_training.distributed_init_method=tcp://127.0.0.1:{port}",
                "distributed_training.distributed_no_spawn=true", "distributed_training.ddp_backend=legacy_ddp",
                f"hydra.run.dir={tmp_path / f'hydra{rank}'}"]
        workers.append(subprocess.Popen([os.path.join(VENV_BIN, args[0]), *args[1:]], env=env, cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs[0][-3000:] + outputs[1][-3000:]

    one_loss = float(train_log_records(one.stdout)[0]["loss"])
    two_loss = float(train_log_records(outputs[0])[0]["loss"])
    assert two_loss == pytest.approx(one_loss, abs=2e-4)
    unmoved = run_cli([*common, f"checkpoint.save_dir={tmp_path / 'start'}", "dataset.batch_size=4",
                       "optimization.lr=[0.0]"])  # the initial weights (the same seed), saved
    assert unmoved.returncode == 0, unmoved.stdout[-4000:]
    start, after_one, after_two = (_weights(tmp_path / name) for name in ("start", "one", "two"))
    moved = 0
    for key, value in after_one.items():
        step_one, step_two = value - start[key], after_two[key] - start[key]
        torch.testing.assert_close(step_two, step_one, atol=1e-6, rtol=1e-3, msg=key)
        moved += int(step_one.abs().max() > 1e-6)
    assert moved > len(after_one) // 2  # the update moved most tensors: the comparison compares steps


def _weights(save_dir) -> dict:
    from supmam_plugin.core.checkpoints import read_checkpoint

    return read_checkpoint(os.path.join(save_dir, "checkpoint_last.pt"))["model"]


def test_zero_shot_prompts_are_embedded_once_per_validation(trained_clap, caption_folder):
    """The prompts' embeddings are kept through a validation (criterion.eval() before every batch)
    and embedded again after training changed the weights (criterion.train())."""
    from fairseq import checkpoint_utils

    from supmam_plugin.criterions.clap_contrastive import ClapContrastiveConfig, ClapContrastiveCriterion

    checkpoint, _ = trained_clap
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": caption_folder})
    model = models[0].eval()
    criterion = ClapContrastiveCriterion(ClapContrastiveConfig(), task)
    audio = torch.nn.functional.normalize(torch.randn(3, model.cfg.embed_dim), dim=-1)
    target = torch.eye(2)[[0, 1, 0]]

    def scored():
        criterion.eval()
        return criterion.zero_shot(model, audio, target)["zero_shot_correct"], criterion.prompt_embeddings

    _, first = scored()
    _, again = scored()
    assert again is first  # not embedded again within a validation
    criterion.train()
    with torch.no_grad():
        model.text_projection[2].weight.mul_(-1.0)
    _, after = scored()
    torch.testing.assert_close(after, model.embed_text(task.zero_shot_tokens))
    assert not torch.allclose(after, first)


def test_the_clap_teacher_reads_an_htsat_clap_as_the_laion_clap_teacher_reads_its_export(trained_htsat_clap, tmp_path):
    """model.teacher=clap on an HTS-AT CLAP: the same targets as model.teacher=laion_clap on its
    export (two paths to the same weights), its own identity for target caches."""
    from types import SimpleNamespace

    from supmam_plugin.commands.export_clap import main as export_clap_main
    from supmam_plugin.teachers import build_teacher
    from supmam_plugin.teachers.laion_clap import ClapTeacher

    export = str(tmp_path / "release.pt")
    assert export_clap_main([trained_htsat_clap, export]) == 0
    cfg = SimpleNamespace(teacher="clap", teacher_checkpoint=trained_htsat_clap, clap_feature="projected",
                          teacher_interpolation="bilinear", teacher_layer=-1, clap_model="HTSAT-tiny")
    teacher = build_teacher(cfg, grid=(64, 8))
    waveform = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, (2, 48000 * 2))).float()
    from_export = ClapTeacher(export, model_name="HTSAT-tiny", feature="projected")
    torch.testing.assert_close(teacher(waveform), from_export(waveform))
    assert teacher.identity()["teacher"] == "clap" and teacher.identity()["variant"] == "HTSAT-tiny"


def test_laion_clap_recipe_in_miniature_audio_tower_from_a_classifier_and_keyword_captions(
        caption_folder, tiny_classifier, tmp_path):
    """model.audio_init=CLASSIFIER task.label_captions=label through fairseq-hydra-train: the CLAP's audio
    tower starts as exactly the classifier's encoder (read by the one checkpoint reader), the labelled
    clips are also captioned from their labels, and the trained CLAP loads again without the file it
    started from (its tower is in its own checkpoint)."""
    from fairseq import checkpoint_utils, tasks
    from omegaconf import OmegaConf

    from supmam_plugin.core.checkpoints import positions_for_frames, read_encoder

    classifier, _ = tiny_classifier
    start_from = str(tmp_path / "classifier.pt")
    shutil.copy(classifier, start_from)
    trained = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/clap", "--config-name", "vit",
                       f"task.data={caption_folder}", f"checkpoint.save_dir={tmp_path / 'clap'}",
                       "optimization.max_update=2", f"model.audio_init={start_from}", "task.label_captions=label",
                       "task.label_caption_share=0.5", *TINY_CLAP, *CPU])
    assert trained.returncode == 0, trained.stdout[-4000:]
    assert f"audio tower initialised from the encoder of {start_from} (supmam_classifier)" in trained.stdout
    assert "captions from the labels of" in trained.stdout and "for 12 of 12 clips, 50% of their draws" in trained.stdout

    # the tower as built, before any update: the classifier's encoder, key by key
    task = tasks.setup_task(OmegaConf.create({"_name": "clap_pretraining", "data": caption_folder, "target_frames": 128}))
    from supmam_plugin.models.clap_model import ClapConfig, ClapModel

    cfg = OmegaConf.structured(ClapConfig(encoder_layers=2, encoder_embed_dim=192, encoder_heads=3, text_layers=1,
                                          text_embed_dim=64, text_heads=2, embed_dim=32, audio_init=start_from))
    model = ClapModel.build_model(cfg, task)
    found = read_encoder(start_from)
    expected = positions_for_frames(found, 128, start_from)
    built = model.encoder.state_dict()
    assert set(built) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(built[key], value, rtol=0, atol=0, msg=key)

    os.remove(start_from)  # a trained CLAP does not read model.audio_init again
    saved = tmp_path / "clap" / "checkpoint_last.pt"
    loaded = checkpoint_utils.load_model_ensemble([str(saved)])[0][0]
    stored = torch.load(saved, map_location="cpu", weights_only=False)["model"]
    for key, value in loaded.encoder.state_dict().items():
        torch.testing.assert_close(value, stored[f"encoder.{key}"], rtol=0, atol=0, msg=key)


def test_an_audio_tower_of_another_shape_is_refused_naming_both_and_the_option(caption_folder, tiny_classifier):
    from fairseq import tasks
    from omegaconf import OmegaConf

    from supmam_plugin.core.checkpoints import CheckpointError
    from supmam_plugin.models.clap_model import ClapConfig, ClapModel

    classifier, _ = tiny_classifier
    task = tasks.setup_task(OmegaConf.create({"_name": "clap_pretraining", "data": caption_folder, "target_frames": 128}))
    cfg = OmegaConf.structured(ClapConfig(encoder_layers=2, encoder_embed_dim=96, encoder_heads=3, text_layers=1,
                                          text_embed_dim=64, text_heads=2, embed_dim=32, audio_init=classifier))
    with pytest.raises(CheckpointError) as refused:
        ClapModel.build_model(cfg, task)
    message = str(refused.value)
    assert f"model.audio_init={classifier}" in message
    assert "its encoder is encoder_embed_dim=192" in message and "audio tower is encoder_embed_dim=96" in message
    assert "set model.encoder_embed_dim=192" in message
