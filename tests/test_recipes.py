"""The recipes, composed with their base exactly as fairseq-hydra-train composes them, list every
option of our dataclasses (so any `model.x=...` override works before fairseq imports the plugin)
but the fields that follow another key (tests/test_one_setting.py), say only how they differ from
their base, and carry the paper's settings."""
import dataclasses
import os

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from supmam_plugin.criterions.clap_contrastive import ClapContrastiveConfig
from supmam_plugin.criterions.classification_loss import SupmamClassificationConfig
from supmam_plugin.criterions.supmam_loss import SupmamCriterionConfig
from supmam_plugin.core.vit import VitEncoderConfig
from supmam_plugin.models.clap_model import ClapConfig
from supmam_plugin.models.classifier import SupmamClassifierConfig
from supmam_plugin.models.supmam_model import SupmamConfig
from supmam_plugin.optim.adamw_no_decay import SupmamAdamWConfig
from supmam_plugin.recipes import recipe_names
from supmam_plugin.recipes.compose import check_recipe, compose_recipe
from supmam_plugin.tasks.audio_classification import SupmamAudioClassificationConfig
from supmam_plugin.tasks.clap_pretraining import ClapPretrainingConfig
from supmam_plugin.tasks.pretraining import SupmamPretrainingConfig

PAPER = {  # recipe: (target, mask ratio, lambda_cls, cls branch, decoder layers)
    "audiomae": ("spectrogram", 0.8, 0.0, False, 16),
    "mam_clap": ("teacher", 0.2, 0.0, False, 1),
    "supmam": ("spectrogram", 0.4, 0.01, True, 1),
    "supmam_clap": ("teacher", 0.4, 1e-4, True, 1),
}
FINETUNING = {  # recipe: (train subset, valid subset, target frames)
    "esc50": ("train", "valid", 512),
    "as20k": ("balanced_train", "eval", 1024),
    "as2m": ("train", "eval", 1024),
    "spc1": ("train", "valid", 128),
    "spc2": ("train", "valid", 128),
}
GROUPS = {
    "pretraining": [("model", SupmamConfig), ("task", SupmamPretrainingConfig), ("criterion", SupmamCriterionConfig)],
    "finetuning": [("model", SupmamClassifierConfig), ("task", SupmamAudioClassificationConfig),
                   ("criterion", SupmamClassificationConfig)],
    "clap": [("model", ClapConfig), ("task", ClapPretrainingConfig), ("criterion", ClapContrastiveConfig)],
}
CLAP = ["htsat", "vit"]
# Fields that follow another key by an II link (supmam_plugin/models/linked_settings.py): not settings, so not listed.
FOLLOWERS = {"model": {"input_frames", "seed"}, "task": {"seed"}}


def field_names(dc):
    return {f.name for f in dataclasses.fields(dc) if not f.name.startswith("_")}


def test_every_recipe_is_tested():
    assert recipe_names("pretraining") == sorted(PAPER)
    assert recipe_names("finetuning") == sorted(FINETUNING)
    assert recipe_names("clap") == CLAP


@pytest.mark.parametrize("family,name", [("pretraining", n) for n in sorted(PAPER)] +
                         [("finetuning", n) for n in sorted(FINETUNING)] + [("clap", n) for n in CLAP])
def test_recipe_is_complete_and_only_says_how_it_differs(family, name):
    check_recipe(family, name)  # no key set both here and in base.yaml (base would win)
    own = OmegaConf.load(os.path.join("examples/supmam", family, f"{name}.yaml"))
    assert list(own.defaults) == ["_self_", "base"]
    cfg = compose_recipe(family, name)
    for group, dc in GROUPS[family]:
        followers = FOLLOWERS.get(group, set())
        assert not followers & set(cfg[group]), f"{name}: {group} lists a field that follows another key"
        missing = field_names(dc) - set(cfg[group]) - followers
        if (family, name, group) == ("clap", "htsat", "model"):
            missing -= field_names(VitEncoderConfig)  # they size the ViT tower, which an HTS-AT CLAP has not
        assert not missing, f"{name}: {group} lacks {sorted(missing)}"
        unknown = set(cfg[group]) - field_names(dc) - {"_name"}
        assert not unknown, f"{name}: {group} has unknown keys {sorted(unknown)}"


@pytest.mark.parametrize("family,name", [("pretraining", "supmam_clap"), ("finetuning", "as2m"), ("clap", "vit")])
def test_every_model_and_task_option_can_be_overridden(family, name):
    cfg = compose_recipe(family, name, resolve=False)
    overrides = [f"{group}.{key}={_as_override(cfg[group], key)}"
                 for group in ("model", "task") for key in cfg[group] if key != "_name"]
    composed = compose_recipe(family, name, overrides)
    assert OmegaConf.to_container(composed.model) == OmegaConf.to_container(cfg.model)
    with pytest.raises(ConfigCompositionException):  # a key the recipes do not list cannot be set
        compose_recipe(family, name, ["model.no_such_option=1"])


def _as_override(node, key) -> str:
    raw = node._get_node(key)._value()
    if raw is None:
        return "null"
    if isinstance(raw, str) and not raw.startswith("${"):
        return f"'{raw}'"
    return str(raw).replace(" ", "")


@pytest.mark.parametrize("name", sorted(PAPER))
def test_pretraining_recipe_matches_paper(name):
    cfg = compose_recipe("pretraining", name, ["task.data=x"], resolve=True)
    model = cfg.model
    target, ratio, lam, branch, layers = PAPER[name]
    assert (model.target, model.mask_ratio, cfg.criterion.lambda_cls, model.cls_branch, model.decoder_layers) == (
        target, ratio, lam, branch, layers)
    assert cfg.optimization.lr == [0.0002] and cfg.optimizer._name == "supmam_adamw"
    assert cfg.optimizer.weight_decay == 0.05 and cfg.optimizer.adam_betas == "(0.9,0.95)"
    assert set(cfg.optimizer) - {"_name"} <= set(field_names(SupmamAdamWConfig))
    assert cfg.dataset.batch_size * cfg.distributed_training.distributed_world_size == 128
    assert (model.encoder_layers, model.encoder_embed_dim, model.encoder_heads) == (12, 768, 12)
    assert cfg.criterion.cls_temperature == 10.0
    assert model.teacher == "laion_clap"  # every recipe names its teacher (the paper's: LAION-CLAP)
    assert OmegaConf.is_missing(model, "teacher_checkpoint") == (target == "teacher")  # the user names the file
    assert cfg.task.target_frames == 1024  # the model's input length too (model.input_frames follows it)


@pytest.mark.parametrize("name", sorted(FINETUNING))
def test_finetuning_recipe_is_consistent(name):
    cfg = compose_recipe("finetuning", name, ["task.data=x", "model.pretrained=x"], resolve=True)
    audioset = name.startswith("as")
    task, dataset, model = cfg.task, cfg.dataset, cfg.model
    assert (model._name, task._name, cfg.criterion._name) == (
        "supmam_classifier", "supmam_audio_classification", "supmam_classification")
    assert task.multi_label is audioset
    assert cfg.checkpoint.best_checkpoint_metric == ("mAP" if audioset else "accuracy")
    assert cfg.checkpoint.maximize_best_checkpoint_metric is True
    train, valid, frames = FINETUNING[name]
    assert (dataset.train_subset, dataset.valid_subset, task.target_frames) == (train, valid, frames)
    # paper: structured masking of 0.2 of the time rows and 0.2 of the frequency columns
    assert (model.time_mask_ratio, model.freq_mask_ratio) == (0.2, 0.2)
    assert (model.encoder_layers, model.encoder_embed_dim, model.encoder_heads) == (12, 768, 12)
    if audioset:  # validation gathers each batch's predictions across GPUs for mAP
        assert cfg.common.all_gather_list_size == 4194304
    assert task.weighted_sampling is (name == "as2m")
    assert task.epoch_length == (200000 if name == "as2m" else 0)
    # layer decay through the composite optimizer, whose lr is the one fairseq logs
    group = cfg.optimizer.groups.default
    assert cfg.optimizer._name == "composite" and cfg.lr_scheduler == "pass_through"
    assert group.optimizer._name == "supmam_adamw"
    assert cfg.optimization.lr == [group.lr_float]
    # fairseq's cosine scheduler takes its period from optimization.max_update (max_epoch alone
    # fails: "Either --max_update or --lr-period-updates must be set")
    assert cfg.optimization.max_update > group.lr_scheduler.warmup_updates > 0
