"""The recipe files list every option of our dataclasses (so any `model.x=...` override works
before fairseq imports the plugin) and carry the paper's settings."""
import dataclasses
import glob
import os

import pytest
import yaml

from supmam_plugin.criterions.supmam_loss import SupmamCriterionConfig
from supmam_plugin.models.supmam_model import SupmamConfig
from supmam_plugin.tasks.pretraining import SupmamPretrainingConfig

from conftest import REPO

PRETRAINING = sorted(glob.glob(os.path.join(REPO, "examples/supmam/pretraining/*.yaml")))
PAPER = {  # recipe: (target, mask ratio, lambda_cls, cls branch, decoder layers)
    "audiomae": ("spectrogram", 0.8, 0.0, False, 16),
    "mam_clap": ("clap", 0.2, 0.0, False, 1),
    "supmam": ("spectrogram", 0.4, 0.01, True, 1),
    "supmam_clap": ("clap", 0.4, 1e-4, True, 1),
}


def field_names(dc):
    return {f.name for f in dataclasses.fields(dc) if not f.name.startswith("_")}


@pytest.mark.parametrize("path", PRETRAINING, ids=os.path.basename)
def test_pretraining_recipe_is_complete_and_matches_paper(path):
    cfg = yaml.safe_load(open(path))
    for group, dc in [("model", SupmamConfig), ("task", SupmamPretrainingConfig), ("criterion", SupmamCriterionConfig)]:
        missing = field_names(dc) - set(cfg[group])
        assert not missing, f"{path}: {group} lacks {sorted(missing)}"
    name = os.path.splitext(os.path.basename(path))[0]
    target, ratio, lam, branch, layers = PAPER[name]
    model = cfg["model"]
    assert (model["target"], model["mask_ratio"], cfg["criterion"]["lambda_cls"], model["cls_branch"],
            model["decoder_layers"]) == (target, ratio, lam, branch, layers)
    assert cfg["optimization"]["lr"] == [0.0002] and cfg["optimizer"]["_name"] == "adam"
    assert cfg["dataset"]["batch_size"] * cfg["distributed_training"]["distributed_world_size"] == 128
    assert (model["encoder_layers"], model["encoder_embed_dim"], model["encoder_heads"]) == (12, 768, 12)
    assert cfg["criterion"]["cls_temperature"] == 10.0
    assert (cfg["task"]["teacher_sample_rate"] == 48000) == (target == "clap")


# --------------------------------------------------------------------------- fine-tuning recipes

FINETUNING = {  # recipe: (train subset, valid subset, target frames)
    "esc50": ("train", "valid", 512),
    "as20k": ("balanced_train", "eval", 1024),
    "as2m": ("train", "eval", 1024),
    "spc1": ("train", "valid", 128),
    "spc2": ("train", "valid", 128),
}


@pytest.mark.parametrize("name", sorted(FINETUNING))
def test_finetuning_recipe_is_complete_and_consistent(name):
    from supmam_plugin.criterions.classification_loss import SupmamClassificationConfig
    from supmam_plugin.models.classifier import SupmamClassifierConfig
    from supmam_plugin.tasks.audio_classification import SupmamAudioClassificationConfig

    path = os.path.join(REPO, "examples/supmam/finetuning", f"{name}.yaml")
    cfg = yaml.safe_load(open(path))
    for group, dc in [("model", SupmamClassifierConfig), ("task", SupmamAudioClassificationConfig),
                      ("criterion", SupmamClassificationConfig)]:
        missing = field_names(dc) - set(cfg[group])
        assert not missing, f"{path}: {group} lacks {sorted(missing)}"
        unknown = set(cfg[group]) - field_names(dc) - {"_name"}
        assert not unknown, f"{path}: {group} has unknown keys {sorted(unknown)}"
    audioset = name.startswith("as")
    task, dataset, model = cfg["task"], cfg["dataset"], cfg["model"]
    assert (cfg["model"]["_name"], task["_name"], cfg["criterion"]["_name"]) == (
        "supmam_classifier", "supmam_audio_classification", "supmam_classification")
    assert task["multi_label"] is audioset
    assert cfg["checkpoint"]["best_checkpoint_metric"] == ("mAP" if audioset else "accuracy")
    assert cfg["checkpoint"]["maximize_best_checkpoint_metric"] is True
    train, valid, frames = FINETUNING[name]
    assert (dataset["train_subset"], dataset["valid_subset"], task["target_frames"]) == (train, valid, frames)
    assert model["input_frames"] == "${task.target_frames}"
    # paper: structured masking of 0.2 of the time rows and 0.2 of the frequency columns
    assert (model["time_mask_ratio"], model["freq_mask_ratio"]) == (0.2, 0.2)
    assert (model["encoder_layers"], model["encoder_embed_dim"], model["encoder_heads"]) == (12, 768, 12)
    if audioset:  # validation gathers each batch's predictions across GPUs for mAP
        assert cfg["common"]["all_gather_list_size"] == 4194304
    assert task["weighted_sampling"] is (name == "as2m")
    assert task["epoch_length"] == (200000 if name == "as2m" else 0)
    # layer decay through the composite optimizer, whose lr is the one fairseq logs
    group = cfg["optimizer"]["groups"]["default"]
    assert cfg["optimizer"]["_name"] == "composite" and cfg["lr_scheduler"] == "pass_through"
    assert cfg["optimization"]["lr"] == [group["lr_float"]]


@pytest.mark.parametrize("name", sorted(FINETUNING))
def test_finetuning_recipe_sets_max_update_for_the_cosine_schedule(name):
    """fairseq's cosine scheduler takes its period from optimization.max_update (max_epoch alone
    fails: "Either --max_update or --lr-period-updates must be set")."""
    cfg = yaml.safe_load(open(os.path.join(REPO, "examples/supmam/finetuning", f"{name}.yaml")))
    warmup = cfg["optimizer"]["groups"]["default"]["lr_scheduler"]["warmup_updates"]
    assert cfg["optimization"].get("max_update", 0) > warmup > 0
