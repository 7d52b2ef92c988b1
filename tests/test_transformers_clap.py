"""A transformers CLAP folder as the laion_clap teacher (issue 39). The reference is laion-clap's own
HTS-AT module (real code, random weights of the HTSAT-tiny and HTSAT-base shapes), written out as a
laion-clap release and as a transformers folder; the key mapping between them is ours, written here:
the test is that two independent implementations, laion-clap's HTS-AT and transformers'
ClapAudioModel, then give the same token maps from the same audio."""
import json
import os
import re

import numpy as np
import pytest
import torch

from conftest import CPU_RUN, TINY_MODEL, run_cli, teacher_state_dict_for_release, train_log_records
from supmam_plugin.core.checkpoints import CheckpointError
from supmam_plugin.teachers.laion_clap import ClapTeacher
from supmam_plugin.teachers.transformers_clap import LaionClapMel, TransformersClapTeacher

HTSAT_SHAPES = {"HTSAT-tiny": (96, [2, 2, 6, 2]), "HTSAT-base": (128, [2, 2, 12, 2])}  # laion-clap's create_htsat_model
BLOCK_PARTS = {"norm1": "layernorm_before", "norm2": "layernorm_after", "attn.proj": "attention.output.dense",
               "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
               "attn.relative_position_index": "attention.self.relative_position_index",
               "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
LAION_ONLY = ("spectrogram_extractor.", "logmel_extractor.", "tscam_conv.", "head.")  # no transformers counterpart


def release_to_transformers(state: dict) -> dict:
    """A laion-clap release's audio side in transformers' ClapAudioModelWithProjection names."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("audio_projection."):
            layer, kind = key.split(".")[1:]
            out[f"audio_projection.linear{1 if layer == '0' else 2}.{kind}"] = value
            continue
        part = key.removeprefix("audio_branch.")
        if part == key or part.startswith(LAION_ONLY) or part.endswith("attn_mask"):
            continue
        block = re.fullmatch(r"(layers\.\d+\.blocks\.\d+)\.(.+)", part)
        if block:
            where, inner = block.groups()
            if inner.startswith("attn.qkv."):  # one fused projection there, three here
                for name, piece in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                    out[f"audio_model.audio_encoder.{where}.attention.self.{name}.{inner.rsplit('.', 1)[1]}"] = piece.clone()
                continue
            laion = next(p for p in BLOCK_PARTS if inner == p or inner.startswith(p + "."))
            part = f"{where}.{BLOCK_PARTS[laion]}{inner[len(laion):]}"
        elif part.startswith("bn0."):
            part = "batch_norm." + part[len("bn0."):]
        out["audio_model.audio_encoder." + part] = value
    return out


def write_transformers_folder(release_state: dict, model_name: str, folder, fusion: bool = False) -> str:
    """``release_state`` as a transformers ClapModel folder (config.json + model.safetensors; audio side only)."""
    from safetensors.torch import save_file
    from transformers import ClapConfig

    width, depths = HTSAT_SHAPES[model_name]
    config = ClapConfig(audio_config={"patch_embeds_hidden_size": width, "depths": depths, "hidden_size": width * 8,
                                      "enable_fusion": fusion},
                        text_config={"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 37,
                                     "num_attention_heads": 4})
    config.save_pretrained(str(folder))
    save_file({k: v.contiguous() for k, v in release_to_transformers(release_state).items()},
              os.path.join(str(folder), "model.safetensors"))
    return str(folder)


def random_htsat(model_name: str, fusion: bool = False) -> ClapTeacher:
    """laion-clap's HTS-AT (with its fusion branch: the fusion releases'), random weights; the batch
    norms' running statistics random too (else bn0 is the identity)."""
    from supmam_plugin.teachers.laion_clap import build_htsat

    teacher = ClapTeacher("random", model_name, feature="projected")
    if fusion:
        torch.manual_seed(5)
        teacher.audio_branch = build_htsat(teacher.audio_cfg, fusion=True).eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in teacher.audio_branch.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 3 - 1)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) * 50 + 10)
    return teacher


def clips(count: int, seconds: float = 10.0) -> torch.Tensor:
    """(count, S) tones in noise at 48 kHz."""
    rng = np.random.default_rng(3)
    t = np.arange(int(48000 * seconds)) / 48000
    waves = [0.3 * np.sin(2 * np.pi * (300 + 500 * k) * t) + 0.05 * rng.standard_normal(len(t)) for k in range(count)]
    return torch.tensor(np.stack(waves), dtype=torch.float32)


@pytest.fixture(scope="module", params=[("HTSAT-tiny", False), ("HTSAT-base", False), ("HTSAT-tiny", True)],
                ids=["tiny", "base", "tiny-fusion"])
def release_and_folder(request, tmp_path_factory):
    """(release .pt, transformers folder, model name) of one random laion-clap HTS-AT (a fusion one too:
    a fusion release and laion/clap-htsat-fused's layout)."""
    model_name, fusion = request.param
    root = tmp_path_factory.mktemp(model_name)
    state = teacher_state_dict_for_release(random_htsat(model_name, fusion))
    torch.save(state, root / "release.pt")
    folder = write_transformers_folder(state["state_dict"], model_name, root / "folder", fusion)
    return str(root / "release.pt"), folder, model_name


def test_the_mapping_covers_every_weight_of_transformers_audio_model(release_and_folder):
    from transformers import ClapAudioModelWithProjection

    _, folder, _ = release_and_folder
    _, info = ClapAudioModelWithProjection.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


@pytest.mark.parametrize("feature", ["tokens", "projected"])
def test_a_transformers_folder_gives_the_release_teachers_token_maps(release_and_folder, feature):
    release, folder, model_name = release_and_folder
    laion = ClapTeacher(release, model_name, feature=feature)
    theirs = TransformersClapTeacher(folder, feature=feature)
    assert (theirs.model_name, theirs.sample_rate, theirs.num_samples, theirs.output_dim) == \
        (model_name, laion.sample_rate, laion.num_samples, laion.output_dim)
    audio = clips(2, seconds=7.5)  # shorter than 10 s: both zero-pad
    ours, reference = theirs.token_map(audio), laion.token_map(audio)
    assert ours.shape == reference.shape == (2, laion.token_width, 2, 32)
    torch.testing.assert_close(ours, reference, atol=2e-4 * reference.abs().max().item(), rtol=1e-4)
    torch.testing.assert_close(theirs(audio), laion(audio), atol=2e-4 * laion(audio).abs().max().item(), rtol=1e-4)


def test_the_laion_mel_written_here_is_the_one_inside_htsat():
    laion = random_htsat("HTSAT-tiny")
    mel = LaionClapMel(laion.audio_cfg)
    audio = clips(2)
    branch = laion.audio_branch
    with torch.no_grad():
        inside = branch.logmel_extractor(branch.spectrogram_extractor(audio))
    torch.testing.assert_close(mel(audio), inside, atol=1e-4, rtol=0)


def test_the_front_end_is_a_stated_choice_and_it_matters(release_and_folder, tmp_path):
    """front_end="transformers" hears the folder's ClapFeatureExtractor (laion/clap-htsat-unfused's settings:
    rand_trunc, repeatpad), "checkpoint" laion-clap's in-model mel. They differ (measured here, random
    HTSAT-tiny weights, these clips: per-bin mean offsets up to 8.7 dB in the lowest mel bins, token maps
    at cosine 0.93 on average): a teacher that silently heard the other mel would give other targets."""
    import shutil

    from transformers import ClapFeatureExtractor

    _, folder, model_name = release_and_folder
    if model_name != "HTSAT-tiny" or TransformersClapTeacher(folder).fusion:
        pytest.skip("the front end does not depend on the tower's size")
    copy = shutil.copytree(folder, tmp_path / "with_extractor")
    extractor = ClapFeatureExtractor(truncation="rand_trunc", padding="repeatpad")
    extractor.save_pretrained(copy)
    checkpoint_mel, transformers_mel = TransformersClapTeacher(str(copy)), TransformersClapTeacher(str(copy), front_end="transformers")
    audio = clips(2)
    expected = extractor([a.numpy() for a in audio], sampling_rate=48000, return_tensors="pt")["input_features"]
    torch.testing.assert_close(transformers_mel.features(audio)[0], expected)
    assert transformers_mel.identity() != checkpoint_mel.identity()  # a cache of one is refused by the other
    cosine = torch.nn.functional.cosine_similarity(checkpoint_mel.token_map(audio).flatten(2),
                                                   transformers_mel.token_map(audio).flatten(2), dim=1)
    assert 0.85 < cosine.mean().item() < 0.99


def test_a_folder_that_is_no_clap_is_refused_naming_it(tmp_path):
    with pytest.raises(CheckpointError, match=rf"{tmp_path}: no config.json, so not a transformers model folder"):
        TransformersClapTeacher(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match=rf"{tmp_path}: its config.json says model_type 'bert', not 'clap'.*"
                                              r"laion/clap-htsat-unfused"):
        TransformersClapTeacher(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clap"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"a pickle")
    with pytest.raises(CheckpointError, match="no model.safetensors; only safetensors weights are read"):
        TransformersClapTeacher(str(tmp_path))


def test_mam_clap_trains_with_a_transformers_folder_as_its_teacher(release_and_folder, tone_dataset, tmp_path):
    _, folder, model_name = release_and_folder
    if model_name != "HTSAT-tiny" or TransformersClapTeacher(folder, build_now=False).fusion:
        pytest.skip("one fairseq run is enough: the other shapes are checked above")
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "mam_clap",
        f"task.data={tone_dataset}", f"model.teacher_checkpoint={folder}", f"checkpoint.save_dir={tmp_path}",
        "optimization.max_update=2", "dataset.batch_size=4", *TINY_MODEL, *CPU_RUN,
    ])
    assert out.returncode == 0, out.stdout[-3000:]
    assert [r["num_updates"] for r in train_log_records(out.stdout)] == ["1", "2"]
    assert f"teacher laion_clap ({folder}): hears 10.00 s at 48000 Hz" in out.stdout
