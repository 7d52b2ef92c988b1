"""One name per setting: the clip length is ``task.target_frames`` (``model.input_frames`` follows it)
and the seed is ``common.seed`` (``task.seed``, ``model.seed`` follow it), by fairseq's ``II`` links
in the dataclasses, not by the recipes. Another value for a follower is refused when the task builds
the model; checkpoints written before and after the links read with the clip length they were
trained on (real fairseq: composed recipes, fairseq-hydra-train, fairseq-validate)."""
from __future__ import annotations

import os
import re

import pytest
import torch
from fairseq import checkpoint_utils, tasks
from omegaconf import OmegaConf

from conftest import CPU_RUN, FIXTURES, REPO, TINY_MODEL, TONE_CLIPS, make_labelled_folder, run_cli
from supmam_plugin.core.captions import TOKENIZER_FILE, train_tokenizer
from supmam_plugin.core.checkpoints import read_encoder
from supmam_plugin.inference.encoder import load_encoder
from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel
from supmam_plugin.recipes import FAMILIES, recipe_dir, recipe_names
from supmam_plugin.recipes.compose import compose_recipe

TINY = ["model.encoder_layers=1", "model.encoder_embed_dim=32", "model.encoder_heads=2"]
FAMILY_OVERRIDES = {
    "pretraining": TINY + ["model.decoder_embed_dim=16", "model.decoder_heads=2", "model.decoder_layers=1",
                           "model.cls_hidden_dim=8"],
    "finetuning": TINY + ["model.pretrained=''"],
    "clap": TINY + ["model.text_layers=1", "model.text_embed_dim=16", "model.text_heads=2", "model.embed_dim=8"],
}
RECIPES = [(family, name) for family in FAMILIES for name in recipe_names(family)]
CLIP_REFUSAL = ("model.input_frames=512 disagrees with task.target_frames=128: they are one setting, the clip "
                "length in fbank frames; set task.target_frames only")
LEGACY = os.path.join(FIXTURES, "legacy_458ab0c")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The tone clips (labels low / high) with captions and a caption tokenizer: every task reads it."""
    root = make_labelled_folder(tmp_path_factory.mktemp("one_setting"), ["low", "high"], TONE_CLIPS, split="train")
    captions = [f"a {labels[0]} tone, clip {i}" for i, (_, _, _, labels) in enumerate(TONE_CLIPS)]
    with open(os.path.join(root, "train.text"), "w") as f:
        f.write("\n".join(captions) + "\n")
    train_tokenizer(captions, os.path.join(root, TOKENIZER_FILE), vocab_size=60)
    return root


def build(family, name, data, overrides=()):
    """(composed config, task, model) as fairseq-hydra-train builds them: the recipe composed and
    resolved, the task set up from cfg.task and the model built by task.build_model(cfg.model)."""
    sizes = [o for o in FAMILY_OVERRIDES[family] if not (name == "htsat" and o.startswith("model.encoder_"))]
    extra = ["model.teacher_checkpoint=random"] if family == "pretraining" and "clap" in name else []
    cfg = compose_recipe(family, name, [f"task.data={data}", *sizes, *extra, *overrides], resolve=True)
    task = tasks.setup_task(cfg.task)
    return cfg, task, task.build_model(cfg.model)


def test_no_recipe_repeats_a_setting():
    paths = [os.path.join(recipe_dir(family), f) for family in FAMILIES for f in os.listdir(recipe_dir(family))
             if f.endswith(".yaml")]
    assert len(paths) == len(RECIPES) + len(FAMILIES)  # every recipe and each family's base.yaml
    for path in paths:
        text = open(path).read()
        assert "${task.target_frames}" not in text and "${common.seed}" not in text, path
        recipe = OmegaConf.load(path)
        for key in ("model.input_frames", "model.seed", "task.seed"):
            assert OmegaConf.select(recipe, key, default=None) is None, f"{path} sets {key}"


@pytest.mark.parametrize("family,name", RECIPES)
def test_the_model_built_through_the_task_follows_target_frames_and_common_seed(family, name, data):
    cfg, task, model = build(family, name, data)
    assert "input_frames" not in cfg.model and "seed" not in cfg.model and "seed" not in cfg.task
    frames = cfg.task.target_frames
    assert model.cfg.input_frames == frames and task.cfg.seed == cfg.common.seed == 1
    if hasattr(model, "encoder"):  # the htsat CLAP has no ViT
        assert model.encoder.grid[0] * model.cfg.patch_size == frames
    if family == "pretraining":
        assert model.cfg.seed == 1
    # another clip length and seed: one override each, the model follows
    cfg, task, model = build(family, name, data, ["task.target_frames=256", "common.seed=7"])
    assert model.cfg.input_frames == 256 and task.cfg.seed == 7
    if hasattr(model, "encoder"):
        assert model.encoder.grid[0] == 256 // model.cfg.patch_size
    if family == "pretraining":
        assert model.cfg.seed == 7


@pytest.mark.parametrize("family,name", [("pretraining", "supmam"), ("finetuning", "esc50"), ("clap", "vit")])
def test_a_clip_length_set_twice_is_refused_naming_both_keys(family, name, data):
    with pytest.raises(ValueError) as refused:
        build(family, name, data, ["task.target_frames=128", "+model.input_frames=512"])
    assert str(refused.value) == CLIP_REFUSAL
    cfg, _, model = build(family, name, data, ["task.target_frames=128", "+model.input_frames=128"])  # the same number
    assert model.cfg.input_frames == 128


@pytest.mark.parametrize("family,name", [("pretraining", "audiomae"), ("finetuning", "spc2"), ("clap", "vit")])
def test_a_seed_set_twice_is_refused_naming_both_keys(family, name, data):
    with pytest.raises(ValueError) as refused:
        build(family, name, data, ["common.seed=3", "+task.seed=5"])
    assert str(refused.value) == ("task.seed=5 disagrees with common.seed=3: they are one setting, the seed of the "
                                  "run; set common.seed only")
    if family == "pretraining":
        with pytest.raises(ValueError) as refused:
            build(family, name, data, ["common.seed=3", "+model.seed=5"])
        assert str(refused.value) == ("model.seed=5 disagrees with common.seed=3: they are one setting, the seed of "
                                      "the run; set common.seed only")


def test_fairseq_hydra_train_refuses_a_second_clip_length_before_training(data, tmp_path):
    out = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "audiomae",
                   f"task.data={data}", f"checkpoint.save_dir={tmp_path}", "optimization.max_update=2",
                   "dataset.batch_size=4", "task.target_frames=128", "+model.input_frames=512", *TINY_MODEL, *CPU_RUN])
    assert out.returncode != 0
    assert CLIP_REFUSAL in out.stdout, out.stdout[-3000:]
    assert '"num_updates"' not in out.stdout and not os.path.exists(tmp_path / "checkpoint_last.pt")
    # without a "+", hydra itself refuses a key the recipes do not list (it is not a setting)
    out = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "audiomae",
                   f"task.data={data}", "model.input_frames=512"])
    assert out.returncode != 0 and "Could not override 'model.input_frames'" in out.stdout


def test_configs_built_in_python_follow_their_task_or_take_the_defaults(data):
    from conftest import TINY_STUDENT, pretraining_batch

    alone = SupmamModel(OmegaConf.structured(SupmamConfig(**TINY_STUDENT)))
    assert (alone.cfg.input_frames, alone.cfg.seed, alone.encoder.grid) == (1024, 1, (64, 8))
    task, model, batch = pretraining_batch(data, {"target_frames": 128}, {}, size=2)
    assert (task.cfg.seed, model.cfg.input_frames, model.cfg.seed, model.encoder.grid) == (1, 128, 1, (8, 8))
    assert batch["net_input"]["source"].size(0) == 2
    with pytest.raises(ValueError, match=re.escape(CLIP_REFUSAL)):
        pretraining_batch(data, {"target_frames": 128}, {"input_frames": 512})
    task, model, _ = pretraining_batch(data, {"target_frames": 128, "seed": 4}, {}, size=1)
    assert model.cfg.seed == 4  # a task config alone: its seed is the run's
    with pytest.raises(ValueError, match=r"model\.seed=5 disagrees with task\.seed=4"):
        pretraining_batch(data, {"target_frames": 128, "seed": 4}, {"seed": 5})


# ------------------------------------------------------------------------------------------ checkpoints

@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """A pretraining run at 128 frames and seed 3 (2 updates), then a fine-tuning from it at 64 frames
    (another clip length than the checkpoint's: its position table is remade for 64), as users run them."""
    root = tmp_path_factory.mktemp("runs")
    pretrained = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "audiomae",
        f"task.data={data}", f"checkpoint.save_dir={root / 'pt'}", "optimization.max_update=2", "dataset.batch_size=4",
        "task.target_frames=128", "common.seed=3", *TINY_MODEL, *CPU_RUN, "model.decoder_layers=1"])
    assert pretrained.returncode == 0, pretrained.stdout[-3000:]
    checkpoint = str(root / "pt" / "checkpoint_last.pt")
    valid = os.path.join(data, "valid")
    for ext in ("tsv", "label"):
        if not os.path.exists(f"{valid}.{ext}"):
            os.symlink(os.path.join(data, f"train.{ext}"), f"{valid}.{ext}")
    finetuned = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/finetuning", "--config-name", "esc50",
        f"task.data={data}", f"model.pretrained={checkpoint}", f"checkpoint.save_dir={root / 'ft'}",
        "optimization.max_update=2", "dataset.batch_size=4", "task.target_frames=64",
        *[a for a in TINY_MODEL if not a.startswith(("model.decoder", "model.cls_hidden"))],
        *[a for a in CPU_RUN if not a.startswith("lr_scheduler.")], "optimizer.groups.default.lr_scheduler.warmup_updates=1"])
    assert finetuned.returncode == 0, finetuned.stdout[-3000:]
    assert f"{checkpoint}: position table (audiomae layout) made for 64 frames" in finetuned.stdout
    return checkpoint, str(root / "ft" / "checkpoint_last.pt")


def test_a_new_checkpoint_reads_with_its_clip_length_and_seed(runs):
    pretrained, finetuned = runs
    state = torch.load(pretrained, map_location="cpu", weights_only=False)
    # fairseq saves the config resolved: the links are recorded as the numbers they followed
    assert (state["cfg"]["task"]["target_frames"], state["cfg"]["model"]["input_frames"]) == (128, 128)
    assert (state["cfg"]["common"]["seed"], state["cfg"]["task"]["seed"], state["cfg"]["model"]["seed"]) == (3, 3, 3)
    assert read_encoder(pretrained).architecture["input_frames"] == 128
    assert load_encoder(pretrained).input_frames == 128
    model = SupmamModel.from_checkpoint(pretrained)
    assert (model.cfg.input_frames, model.cfg.seed, model.encoder.grid) == (128, 3, (8, 8))
    assert read_encoder(finetuned).architecture["input_frames"] == 64
    assert load_encoder(finetuned).input_frames == 64


def test_fairseq_validate_scores_a_new_checkpoint_at_its_clip_length(runs, data):
    _, finetuned = runs
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([finetuned], arg_overrides={"data": data})
    assert (task.cfg.target_frames, models[0].cfg.input_frames, models[0].encoder.grid) == (64, 64, (4, 8))
    out = run_cli(["fairseq-validate", data, "--user-dir", os.path.join(REPO, "supmam_plugin"), "--path", finetuned,
                   "--task", "supmam_audio_classification", "--valid-subset", "valid", "--batch-size", "4", "--cpu"])
    assert out.returncode == 0, out.stdout[-3000:]
    assert re.search(r"valid on 'valid' subset .*\| accuracy [\d.]+", out.stdout), out.stdout[-3000:]


def edited(path, out, edit) -> str:
    """A copy of checkpoint ``path`` at ``out`` whose saved cfg ``edit(cfg)`` changed."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    edit(state["cfg"])
    torch.save(state, out)
    return str(out)


def test_checkpoints_that_record_the_settings_otherwise_still_read(runs, data, tmp_path):
    pretrained, finetuned = runs

    def unrecorded(cfg):  # a model config without the followers, or with the link saved unresolved
        del cfg["model"]["seed"]
        cfg["model"]["input_frames"] = "${task.target_frames}"

    path = edited(pretrained, tmp_path / "unrecorded.pt", unrecorded)
    assert read_encoder(path).architecture["input_frames"] == 128
    model = SupmamModel.from_checkpoint(path)
    assert (model.cfg.input_frames, model.cfg.seed) == (128, 3)

    def pre_link_supmam(cfg):  # before the link, model.input_frames=128 given alone was used as it was
        cfg["task"]["target_frames"] = 1024

    path = edited(pretrained, tmp_path / "pre_link.pt", pre_link_supmam)
    assert read_encoder(path).architecture["input_frames"] == 128
    assert SupmamModel.from_checkpoint(path).encoder.grid == (8, 8)
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
    assert models[0].cfg.input_frames == 128  # loaded as saved: no refusal for a checkpoint

    def pre_link_classifier(cfg):  # a classifier always took the task's clip length, whatever its model said
        cfg["model"]["input_frames"] = 1024

    path = edited(finetuned, tmp_path / "pre_link_classifier.pt", pre_link_classifier)
    assert read_encoder(path).architecture["input_frames"] == 64
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
    assert (models[0].cfg.input_frames, models[0].encoder.grid) == (64, (4, 8))


@pytest.mark.parametrize("name", ["supmam_pretraining", "supmam_classifier"])
def test_legacy_checkpoints_read_with_their_clip_length(name, data):
    path = os.path.join(LEGACY, f"{name}.pt")
    assert read_encoder(path).architecture["input_frames"] == 128
    assert load_encoder(path).input_frames == 128
    if name == "supmam_classifier":
        models, _, _ = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
        assert (models[0].cfg.input_frames, models[0].encoder.grid) == (128, (8, 8))
