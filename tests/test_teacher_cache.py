"""Precomputed teacher maps give the same targets as the online teacher, and train."""
import json
import os

import pytest
import torch
from fairseq import tasks
from omegaconf import OmegaConf

import supmam_plugin  # noqa: F401
from supmam_plugin.commands.precompute_teacher import main as precompute_main
from supmam_plugin.data.manifest import ManifestError
from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel

from conftest import CPU_RUN, TINY_MODEL, run_cli, train_log_records


@pytest.fixture(scope="module")
def cache(tone_dataset, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cache"))
    assert precompute_main([tone_dataset, "train", "--out-dir", out, "--clap-checkpoint", "random",
                            "--batch-size", "5", "--device", "cpu"]) == 0
    return out


def batch_of(task_overrides, data, size=4):
    task = tasks.setup_task(OmegaConf.create({"_name": "supmam_pretraining", "data": data, **task_overrides}))
    dataset = task.load_dataset("train")
    return task, dataset.collater([dataset[i] for i in range(size)])


def test_cached_targets_equal_online_targets(tone_dataset, cache):
    meta = json.load(open(os.path.join(cache, "train.teacher.json")))
    assert meta["complete"] and meta["num_clips"] == 12 and meta["map_shape"] == [768, 2, 32]
    task, online = batch_of({"teacher_sample_rate": 48000, "random_crop": False}, tone_dataset)
    _, cached = batch_of({"teacher_cache": cache}, tone_dataset)
    assert "teacher_source" not in cached["net_input"]
    assert cached["net_input"]["teacher_token_map"].dtype == torch.float16
    cfg = OmegaConf.structured(SupmamConfig(target="clap", clap_checkpoint="random", encoder_layers=1,
                                            encoder_embed_dim=192, encoder_heads=3, decoder_embed_dim=128,
                                            decoder_heads=4))
    model = SupmamModel(cfg, sample_rate=16000).eval()
    from_audio = model.teacher_targets(teacher_source=online["net_input"]["teacher_source"])
    from_cache = model.teacher_targets(teacher_token_map=cached["net_input"]["teacher_token_map"])
    assert from_cache.shape == from_audio.shape == (4, 512, 768)
    # float16 storage: relative error about 1e-3
    torch.testing.assert_close(from_cache, from_audio, rtol=2e-3, atol=2e-3 * from_audio.abs().max().item())


def test_pretraining_reads_the_cache(tone_dataset, cache, tmp_path):
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "mam_clap",
        f"task.data={tone_dataset}", f"task.teacher_cache={cache}", "model.clap_checkpoint=random",
        f"checkpoint.save_dir={tmp_path}", "optimization.max_update=2", "dataset.batch_size=4",
        *TINY_MODEL, *CPU_RUN,
    ])
    assert out.returncode == 0, out.stdout[-3000:]
    assert "teacher targets from" in out.stdout
    assert [r["num_updates"] for r in train_log_records(out.stdout)] == ["1", "2"]


def test_cache_for_another_manifest_is_refused(tone_dataset, cache, tmp_path):
    lines = open(os.path.join(tone_dataset, "train.tsv")).read().splitlines()
    other = tmp_path / "other"
    other.mkdir()
    (other / "train.tsv").write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ManifestError, match=r"holds 12 clips but .*lists 10.*make the cache again"):
        batch_of({"teacher_cache": cache}, str(other))
    with pytest.raises(ManifestError, match="no teacher cache for split"):
        batch_of({"teacher_cache": str(tmp_path)}, tone_dataset)
