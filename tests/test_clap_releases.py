"""Every LAION-CLAP release shape as the laion_clap teacher (issue 39): HTSAT-tiny, HTSAT-base and the
fusion releases (630k-fusion-best.pt, 630k-audioset-fusion-best.pt: HTSAT-tiny with the ``aff_2d``
feature-fusion branch). The reference is laion-clap's own HTS-AT module with random weights, fed the
input laion-clap's pipeline makes (for a fusion release: the mel of ``training/data.get_mel``, which
laion-clap aligns to librosa's, four times, ``longer`` False)."""
import numpy as np
import pytest
import torch
from types import SimpleNamespace

from conftest import CPU_RUN, TINY_MODEL, run_cli, train_log_records
from supmam_plugin.teachers.laion_clap import (FUSION_TYPE, ClapTeacher, FusionMel, _stop_at_token_map,
                                               _TokenMapCaptured, import_htsat, read_clap_model_config)

AUDIO_CFG = read_clap_model_config("HTSAT-tiny")["audio_cfg"]


def random_release(model_name: str, fusion: bool, path) -> str:
    """laion-clap's HTS-AT (random weights, random batch-norm statistics) saved as a release's audio side."""
    torch.manual_seed(11)
    cfg = read_clap_model_config(model_name)["audio_cfg"]
    branch = import_htsat()(SimpleNamespace(**cfg), enable_fusion=fusion, fusion_type=FUSION_TYPE if fusion else "None")
    with torch.no_grad():
        for module in branch.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 2)
                module.running_var.uniform_(0.5, 20)
    torch.save({"state_dict": {f"module.audio_branch.{k}": v for k, v in branch.state_dict().items()}}, path)
    return str(path), branch.eval()


def librosa_mel(waveform: np.ndarray) -> np.ndarray:
    """(frames, mel) dB mel as laion-clap's get_mel computes it, through librosa (its stated alignment)."""
    import librosa

    mel = librosa.feature.melspectrogram(y=waveform, sr=48000, n_fft=AUDIO_CFG["window_size"],
                                         hop_length=AUDIO_CFG["hop_size"], win_length=AUDIO_CFG["window_size"],
                                         center=True, pad_mode="reflect", power=2.0, n_mels=AUDIO_CFG["mel_bins"],
                                         fmin=AUDIO_CFG["fmin"], fmax=AUDIO_CFG["fmax"], htk=True, norm=None)
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).T


def clips(count=2, seconds=10.0) -> torch.Tensor:
    rng = np.random.default_rng(9)
    t = np.arange(int(48000 * seconds)) / 48000
    return torch.tensor(np.stack([0.3 * np.sin(2 * np.pi * (400 + 700 * k) * t) + 0.05 * rng.standard_normal(len(t))
                                  for k in range(count)]), dtype=torch.float32)


def map_of(branch, inputs) -> torch.Tensor:
    hook = branch.tscam_conv.register_forward_pre_hook(_stop_at_token_map)
    try:
        with torch.no_grad():
            branch(inputs, device="cpu")
    except _TokenMapCaptured as captured:
        return captured.token_map
    finally:
        hook.remove()
    raise AssertionError("no token map")


def test_the_fusion_mel_is_laion_clap_pipelines():
    audio = clips()
    ours = FusionMel(AUDIO_CFG)(audio)
    reference = torch.tensor(np.stack([librosa_mel(a.numpy()) for a in audio]), dtype=torch.float32)
    assert ours.shape == reference.shape == (2, 1001, 64)
    torch.testing.assert_close(ours, reference, atol=5e-4, rtol=0)  # dB; measured 9e-5


def test_a_fusion_release_gives_laion_clap_modules_token_maps_and_its_fusion_branch_does_nothing(tmp_path):
    release, branch = random_release("HTSAT-tiny", True, tmp_path / "fusion.pt")
    teacher = ClapTeacher(release, "HTSAT-tiny")
    audio = clips(seconds=6.0)  # shorter than 10 s: zero-padded, as the teacher hears every clip
    assert teacher.fusion
    padded = torch.nn.functional.pad(audio, (0, AUDIO_CFG["clip_samples"] - audio.shape[1]))
    mel = torch.tensor(np.stack([librosa_mel(a.numpy()) for a in padded]), dtype=torch.float32)
    pipeline = {"mel_fusion": mel.unsqueeze(1).repeat(1, 4, 1, 1), "longer": torch.zeros(2, dtype=torch.bool)}
    reference = map_of(branch, pipeline)
    ours = teacher.token_map(audio)
    assert ours.shape == reference.shape == (2, 768, 2, 32)
    torch.testing.assert_close(ours, reference, atol=5e-5, rtol=0)  # measured 4e-6 (maps up to 4)
    # clips of 10 s and less: the three local crops (channels 1-3) are never read
    other = {"mel_fusion": torch.cat([mel.unsqueeze(1), torch.randn(2, 3, *mel.shape[1:]) * 30], dim=1),
             "longer": torch.zeros(2, dtype=torch.bool)}
    torch.testing.assert_close(map_of(branch, other), reference, atol=0, rtol=0)


@pytest.mark.parametrize("model_name, fusion", [("HTSAT-tiny", False), ("HTSAT-base", False), ("HTSAT-tiny", True)])
def test_mam_clap_trains_with_each_release_shape_as_its_teacher(model_name, fusion, tone_dataset, tmp_path):
    release, _ = random_release(model_name, fusion, tmp_path / "release.pt")
    out = run_cli([
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", "--config-name", "mam_clap",
        f"task.data={tone_dataset}", f"model.teacher_checkpoint={release}", f"model.clap_model={model_name}",
        f"checkpoint.save_dir={tmp_path / 'run'}", "optimization.max_update=2", "dataset.batch_size=4",
        *TINY_MODEL, *CPU_RUN,
    ])
    assert out.returncode == 0, out.stdout[-3000:]
    assert [r["num_updates"] for r in train_log_records(out.stdout)] == ["1", "2"]
