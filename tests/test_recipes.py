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
