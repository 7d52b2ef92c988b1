"""fairseq's mixed precision (common.bf16 / fp16 / amp) trains and scores every recipe; the fbank
comes from full-precision audio; losses agree with float32.

fairseq casts every float32 tensor of a batch to bf16 / fp16 (``Trainer._fp_convert_sample``)
and the model with it. Its fp16 needs CUDA and its amp autocasts only on CUDA, so on the CPU the
full commands run with bf16 (and amp, which changes nothing here), and fp16 is checked through
the model's half-precision forward on a batch cast by fairseq's own code.
"""
import copy
import os
import re
from types import SimpleNamespace

import pytest
import torch
from fairseq import checkpoint_utils, tasks
from fairseq.trainer import Trainer
from omegaconf import OmegaConf
from sklearn.metrics import accuracy_score

import supmam_plugin  # noqa: F401
from supmam_plugin.criterions.supmam_loss import SupmamCriterion, SupmamCriterionConfig
from supmam_plugin.core.fbank import batch_fbank
from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel
from supmam_plugin.teachers import ClapTeacher

from conftest import CPU_RUN, REPO, TINY_MODEL, run_cli, train_log_records

PRETRAINING = {
    "audiomae": [],
    "mam_clap": ["model.teacher_checkpoint=random"],
    "supmam": ["task.multi_label=false"],
    "supmam_clap": ["model.teacher_checkpoint=random", "task.multi_label=false"],
}
TINY_CLASSIFIER = [a for a in TINY_MODEL if not a.startswith(("model.decoder", "model.cls_hidden"))]
FINETUNE_RUN = [a for a in CPU_RUN if not a.startswith("lr_scheduler.")] + [
    "optimizer.groups.default.lr_scheduler.warmup_updates=1"]


def fairseq_cast(sample: dict, precision: str) -> dict:
    """The batch as fairseq's trainer hands it to the model under common.bf16 / common.fp16."""
    common = SimpleNamespace(fp16=precision == "fp16", bf16=precision == "bf16")
    return Trainer._fp_convert_sample(SimpleNamespace(cfg=SimpleNamespace(common=common)), sample)


def pretrain(recipe, data, save_dir, extra=()):
    return run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", recipe,
        f"task.data={data}", f"checkpoint.save_dir={save_dir}", "optimization.max_update=2",
        "dataset.batch_size=4", *TINY_MODEL, *CPU_RUN, *PRETRAINING[recipe], *extra,
    ])


def assert_two_finite_updates(out):
    assert out.returncode == 0, out.stdout[-4000:]
    records = train_log_records(out.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2"], out.stdout[-3000:]
    for r in records:
        assert 0 < float(r["loss"]) < 1e3 and float(r["gnorm"]) < 1e6, r
    return records


@pytest.mark.parametrize("recipe", sorted(PRETRAINING))
def test_pretraining_recipe_trains_in_bf16(recipe, tone_dataset, tmp_path):
    out = pretrain(recipe, tone_dataset, tmp_path, ["common.bf16=true"])
    records = assert_two_finite_updates(out)
    if recipe.startswith("sup"):
        assert "cls_loss" in records[0]
    checkpoint = torch.load(os.path.join(tmp_path, "checkpoint_last.pt"), weights_only=False)
    assert checkpoint["cfg"]["common"]["bf16"] is True


def test_teacher_cache_and_amp_flags_train(tone_dataset, tmp_path):
    from supmam_plugin.commands.precompute_teacher import main as precompute_main

    cache = str(tmp_path / "cache")
    assert precompute_main([tone_dataset, "train", "--out-dir", cache, "--teacher-checkpoint", "random",
                            "--batch-size", "6", "--device", "cpu"]) == 0
    cached = pretrain("supmam_clap", tone_dataset, tmp_path / "cached",
                      ["common.bf16=true", f"task.teacher_cache={cache}"])
    assert "visible_loss" in assert_two_finite_updates(cached)[0]
    # common.amp runs on the CPU (fairseq's autocast is CUDA's, so nothing is cast here)
    assert_two_finite_updates(pretrain("supmam_clap", tone_dataset, tmp_path / "amp", ["common.amp=true"]))


def test_bf16_pretrain_finetune_and_validate(tone_dataset, tmp_path):
    """A bf16 pretraining checkpoint fine-tunes in bf16, and fairseq-validate --bf16 prints the
    accuracy of the bf16 model's own predictions (computed here on a batch cast by fairseq)."""
    assert_two_finite_updates(pretrain("supmam", tone_dataset, tmp_path / "pre", ["common.bf16=true"]))
    pretrained = tmp_path / "pre" / "checkpoint_last.pt"
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/finetuning", "--config-name", "esc50",
        f"task.data={tone_dataset}", f"model.pretrained={pretrained}", f"checkpoint.save_dir={tmp_path / 'ft'}",
        "optimization.max_update=2", "dataset.batch_size=4", "task.target_frames=128", "dataset.valid_subset=train",
        "common.bf16=true", *TINY_CLASSIFIER, *FINETUNE_RUN,
    ])
    assert_two_finite_updates(out)
    checkpoint = str(tmp_path / "ft" / "checkpoint_last.pt")
    val = run_cli(["fairseq-validate", tone_dataset, "--user-dir", os.path.join(REPO, "supmam_plugin"),
                   "--path", checkpoint, "--task", "supmam_audio_classification", "--valid-subset", "train",
                   "--batch-size", "5", "--cpu", "--bf16"])
    assert val.returncode == 0, val.stdout[-3000:]
    line = [l for l in val.stdout.splitlines() if "valid on 'train' subset" in l][-1]
    printed = {k: float(v) for k, v in re.findall(r"\| (\w+) ([-\d.]+)", line)}

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint],
                                                                   arg_overrides={"data": tone_dataset})
    model = models[0].eval().bfloat16()
    task.load_dataset("train")
    dataset = task.dataset("train")
    correct = 0
    for start in range(0, len(dataset), 5):  # fairseq-validate's batches: fbank depends on the padding
        batch = fairseq_cast(dataset.collater([dataset[i] for i in range(start, min(start + 5, len(dataset)))]),
                             "bf16")
        with torch.no_grad():
            logits = model(**batch["net_input"])["logits"].float()
        correct += accuracy_score(batch["target"].numpy(), logits.argmax(-1).numpy(), normalize=False)
    assert printed["bsz"] == len(dataset) == 12
    assert printed["accuracy"] == pytest.approx(100 * correct / len(dataset), abs=1e-3)


# ---- the model in half precision, on a batch cast by fairseq's own code ----

def tiny_model(**overrides) -> SupmamModel:
    cfg = SupmamConfig(encoder_layers=2, encoder_embed_dim=192, encoder_heads=3, decoder_embed_dim=128,
                       decoder_heads=4, decoder_layers=2, input_frames=128, cls_hidden_dim=64, **overrides)
    torch.manual_seed(0)
    return SupmamModel(OmegaConf.structured(cfg), num_classes=2)


def tone_batch(data, overrides=None, teacher=False):
    """The first 6 clips of the tone data; ``teacher``: with the random LAION-CLAP teacher's audio."""
    task = tasks.setup_task(OmegaConf.create({"_name": "supmam_pretraining", "data": data, "target_frames": 128,
                                              "random_crop": False, **(overrides or {})}))
    if teacher:
        task.teacher = ClapTeacher("random")  # what build_model sets: the model's teacher
    dataset = task.load_dataset("train")
    return task, dataset.collater([dataset[i] for i in range(6)])


def test_batches_keep_full_precision_audio_through_fairseqs_cast(tone_dataset):
    task, batch = tone_batch(tone_dataset, {"fbank_in_dataloader": True}, teacher=True)
    for precision in ("bf16", "fp16"):
        cast = fairseq_cast(copy.deepcopy(batch), precision)
        for key in ("source", "teacher_source", "fbank"):
            assert torch.equal(cast["net_input"][key], batch["net_input"][key]), key  # untouched, float64


def test_bf16_model_computes_the_float32_fbank(tone_dataset):
    _, batch = tone_batch(tone_dataset)
    source, lengths = batch["net_input"]["source"], batch["net_input"]["source_lengths"]
    reference = batch_fbank(source.float(), lengths, 128)  # float32 audio, float32 fbank
    model = tiny_model().bfloat16()
    cast = fairseq_cast(batch, "bf16")
    fbank = model.input_fbank(cast["net_input"]["source"], cast["net_input"]["source_lengths"])
    assert fbank.dtype == torch.float32
    assert (fbank - reference).abs().max().item() < 1e-3
    # what the cast would have done to float32 audio: the check above can tell the difference
    quantised = batch_fbank(source.float().bfloat16().float(), lengths, 128)
    assert (quantised - reference).abs().max().item() > 1e-2


@pytest.mark.parametrize("variant", ["spectrogram", "teacher"])
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_step_loss_matches_float32(variant, precision, tone_dataset):
    """Same batch, same masks (keyed by clip id): the bf16 / fp16 model's loss is within 1 % / 0.1 %
    (relative) of the float32 model's (measured: 1e-4 to 3e-4 / 5e-6), reduced in float32; its
    gradients are finite."""
    overrides = {"target": "teacher", "teacher_checkpoint": "random", "mask_ratio": 0.4} if variant == "teacher" else {}
    task, batch = tone_batch(tone_dataset, {"labels": "label"}, teacher=variant == "teacher")
    criterion = SupmamCriterion(SupmamCriterionConfig(lambda_cls=0.01), task)
    model = tiny_model(cls_branch=True, **overrides).train()
    half = copy.deepcopy(model).to(torch.bfloat16 if precision == "bf16" else torch.float16)
    loss32, _, log32 = criterion(model, batch)
    loss16, _, log16 = criterion(half, fairseq_cast(batch, precision))
    assert loss16.dtype == torch.float32
    tolerance = 1e-2 if precision == "bf16" else 1e-3
    assert loss16.item() == pytest.approx(loss32.item(), rel=tolerance)
    assert log16["target_loss"] == pytest.approx(log32["target_loss"], rel=tolerance)
    loss16.backward()
    assert all(torch.isfinite(p.grad).all() for p in half.parameters() if p.grad is not None)


def test_bf16_embeddings_match_float32(tone_dataset):
    """load_encoder(..., dtype=torch.bfloat16): fbank in float32, outputs float32, close to fp32."""
    from supmam_plugin.core.audio import read_mono
    from supmam_plugin.inference.encoder import AudioEncoder

    model = tiny_model()
    wave, rate = read_mono(os.path.join(tone_dataset, "audio", "low", "clip0.wav"))
    full = AudioEncoder(copy.deepcopy(model.encoder)).embed(wave, rate, patches=True)
    half = AudioEncoder(copy.deepcopy(model.encoder), dtype=torch.bfloat16).embed(wave, rate, patches=True)
    assert half["clip"].dtype == full["clip"].dtype == "float32"
    for key in ("clip", "patches"):
        error = abs(half[key] - full[key]).max() / abs(full[key]).max()
        assert error < 0.05, (key, error)
