"""ClapTeacher: the frozen LAION-CLAP HTS-AT, run for real (laion-clap's own code, random weights)."""
import argparse
import sys

import pytest
import torch
import torch.nn.functional as F

from supmam_plugin.teachers.laion_clap import (
    ClapTeacher,
    import_htsat,
    read_clap_model_config,
)

from conftest import teacher_state_dict_for_release

BATCH = 2
CLIP = 480000  # 10 s at 48 kHz
TIME, FREQ = 64, 8  # the student's patch grid


@pytest.fixture(scope="module")
def waveform():
    generator = torch.Generator().manual_seed(1)
    return 0.1 * torch.randn(BATCH, CLIP, generator=generator)


@pytest.fixture(scope="module")
def tokens_teacher():
    return ClapTeacher("random")


@pytest.fixture(scope="module")
def projected_teacher():
    return ClapTeacher("random", feature="projected")


@pytest.fixture(scope="module")
def token_map(tokens_teacher, waveform):
    return tokens_teacher.token_map(waveform)


def perturbed(teacher: ClapTeacher, seed: int = 7) -> ClapTeacher:
    """The teacher with every parameter moved, so that loading it back is not a no-op."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in teacher.parameters():
            parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
    return teacher


def test_only_the_audio_branch_of_laion_clap_is_imported(tokens_teacher):
    assert import_htsat().__name__ == "create_htsat_model"
    assert "laion_clap.clap_module.htsat" in sys.modules
    assert "laion_clap.training.data" not in sys.modules  # it downloads a tokenizer
    assert "laion_clap.hook" not in sys.modules
    assert read_clap_model_config("HTSAT-tiny")["audio_cfg"]["model_name"] == "tiny"
    with pytest.raises(ValueError, match="HTSAT-tiny"):
        read_clap_model_config("HTSAT-huge")


def test_random_teacher_shapes_and_frozen(tokens_teacher, projected_teacher, waveform):
    tokens = tokens_teacher(waveform)
    projected = projected_teacher(waveform)
    assert tokens_teacher.output_dim == 768 and tokens.shape == (BATCH, TIME * FREQ, 768)
    assert projected_teacher.output_dim == 512 and projected.shape == (BATCH, TIME * FREQ, 512)
    for targets in (tokens, projected):
        assert targets.dtype == torch.float32
        assert torch.isfinite(targets).all()
        assert not targets.requires_grad
    for teacher in (tokens_teacher, projected_teacher):
        assert not any(p.requires_grad for p in teacher.parameters())
        teacher.train()
        assert not any(module.training for module in teacher.modules())


def test_random_teacher_is_seeded_warned_and_leaves_the_global_rng_alone(tokens_teacher, caplog):
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    with caplog.at_level("WARNING", logger="supmam_plugin.teachers.laion_clap"):
        again = ClapTeacher("random")
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert "meaningless" in caplog.text
    expected = tokens_teacher.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in again.state_dict().items())


def test_token_map_is_htsats_2_by_32_map_in_time_order(tokens_teacher, waveform, token_map):
    assert token_map.shape == (BATCH, 768, 2, 32)  # batch, channels, freq rows, time steps
    clips = {"waveform": waveform, "longer": torch.zeros(BATCH, dtype=torch.bool)}
    with torch.no_grad():
        htsat = tokens_teacher.audio_branch(clips)  # the whole HTS-AT, no hook
    # HTS-AT's clip embedding is the mean of that map ...
    torch.testing.assert_close(htsat["embedding"], token_map.mean(dim=(2, 3)))
    # ... and its frame-wise embedding repeats the freq-mean of each of the 32 time steps 32 times.
    per_time_step = token_map.mean(dim=2).transpose(1, 2)  # (B, 32, C)
    torch.testing.assert_close(htsat["fine_grained_embedding"], per_time_step.repeat_interleave(32, dim=1))


def test_forward_is_the_captured_map_resized_to_the_patch_grid(tokens_teacher, waveform, token_map):
    time_major = token_map.transpose(2, 3)  # (B, C, 32 time, 2 freq)
    grid = F.interpolate(time_major, size=(TIME, FREQ), mode="bilinear", align_corners=False)
    targets = tokens_teacher(waveform)
    for t, f in [(0, 0), (0, 7), (1, 3), (31, 4), (63, 0), (63, 7)]:
        torch.testing.assert_close(targets[:, t * FREQ + f], grid[:, :, t, f])
    torch.testing.assert_close(targets, tokens_teacher.targets_from_token_map(token_map))


def test_patch_order_is_time_major(tokens_teacher):
    # A map whose value says where it comes from: 100 * freq row + time step.
    rows = torch.arange(2.0).view(1, 1, 2, 1)
    steps = torch.arange(32.0).view(1, 1, 1, 32)
    coded = (100 * rows + steps).expand(1, 768, 2, 32)
    tokens_teacher.interpolation = "nearest"
    try:
        nearest = tokens_teacher.targets_from_token_map(coded)[0, :, 0]  # (512,)
    finally:
        tokens_teacher.interpolation = "bilinear"
    t = torch.arange(TIME).repeat_interleave(FREQ)
    f = torch.arange(FREQ).repeat(TIME)
    assert torch.equal(nearest, 100 * (f // 4) + t // 2)  # patch t * 8 + f <- row f // 4, step t // 2

    # Bilinear: the first time column of patches (t = 0) depends on the first time step only,
    # the lowest frequency patches (f = 0, 1) on the low frequency row only.
    base = torch.randn(1, 768, 2, 32)
    targets = tokens_teacher.targets_from_token_map(base).view(1, TIME, FREQ, 768)

    def changed_patches(edit):
        edited = base.clone()
        edit(edited)
        edited_targets = tokens_teacher.targets_from_token_map(edited).view(1, TIME, FREQ, 768)
        return (edited_targets != targets).any(dim=-1)[0]  # (TIME, FREQ) bool

    first_step = changed_patches(lambda m: m[..., 0].add_(1.0))  # reaches t = 0, 1, 2
    assert first_step[:3].all() and not first_step[3:].any()
    others = changed_patches(lambda m: m[..., 1:].add_(1.0))
    assert not others[0].any() and others[1:].all()
    high_row = changed_patches(lambda m: m[:, :, 1].add_(1.0))
    assert not high_row[:, :2].any() and high_row[:, 2:].all()


def test_padding_and_cropping_to_ten_seconds(tokens_teacher, waveform):
    short = waveform[:1, : CLIP // 2]
    long = torch.cat([waveform[:1], waveform[:1, :1000]], dim=1)
    assert torch.equal(tokens_teacher(short), tokens_teacher(F.pad(short, (0, CLIP - CLIP // 2))))
    assert torch.equal(tokens_teacher(long.double()), tokens_teacher(waveform[:1]))


def test_release_layout_round_trip(tmp_path, projected_teacher, waveform):
    clip = waveform[:1]
    teacher = perturbed(ClapTeacher("random", feature="projected"))
    released = teacher_state_dict_for_release(teacher)
    keys = list(released["state_dict"])
    assert all(k.startswith(("module.audio_branch.", "module.audio_projection.")) for k in keys)
    assert "module.audio_projection.2.weight" in keys
    released["state_dict"]["module.text_branch.pooler.dense.weight"] = torch.zeros(2, 2)  # ignored
    released["state_dict"]["module.logit_scale_a"] = torch.zeros(())
    released["args"] = argparse.Namespace(amodel="HTSAT-tiny")  # as released files carry: on the safe allowlist
    path = tmp_path / "630k-like.pt"
    torch.save(released, path)
    expected = teacher(clip)
    assert not torch.equal(expected, projected_teacher(clip))  # the perturbation shows
    assert torch.equal(ClapTeacher(str(path), feature="projected")(clip), expected)

    # Without the `module.` prefix nor the `state_dict` wrapper; feature "tokens" skips the projection.
    bare = {k.removeprefix("module."): v for k, v in released["state_dict"].items()}
    bare_path = tmp_path / "bare.pt"
    torch.save(bare, bare_path)
    reloaded = ClapTeacher(str(bare_path), feature="tokens")
    assert not any(k.startswith("audio_projection.") for k in reloaded.state_dict())
    assert torch.equal(reloaded.token_map(clip), teacher.token_map(clip))


def test_checkpoints_that_do_not_fit_are_refused(tmp_path):
    state = teacher_state_dict_for_release(ClapTeacher("random"))["state_dict"]
    del state["module.audio_branch.norm.weight"]
    state["module.audio_branch.bogus.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError) as error:
        ClapTeacher(str(path))
    message = str(error.value)
    for needle in (str(path), "HTSAT-tiny", "audio_branch.norm.weight", "audio_branch.bogus.weight", "model_name"):
        assert needle in message

    # "projected" needs the audio projection, which this checkpoint lacks.
    del state["module.audio_branch.bogus.weight"]
    state["module.audio_branch.norm.weight"] = torch.ones(768)
    torch.save({"state_dict": state}, path)
    with pytest.raises(ValueError, match=r"audio_projection\.0\.weight"):
        ClapTeacher(str(path), feature="projected")
    ClapTeacher(str(path), feature="tokens")  # fits


def test_htsat_base_checkpoint_given_as_tiny_is_refused(tmp_path):
    base = ClapTeacher("random", model_name="HTSAT-base", feature="projected")
    assert base.output_dim == 512 and base.token_width == 1024
    path = tmp_path / "music_speech_audioset_epoch_15_esc_89.98.pt"
    torch.save(teacher_state_dict_for_release(base), path)
    with pytest.raises(ValueError) as error:
        ClapTeacher(str(path), model_name="HTSAT-tiny", feature="projected")
    message = str(error.value)
    assert str(path) in message and "of another shape" in message and "HTSAT-base" in message
    assert "audio_branch.patch_embed.proj.weight: checkpoint (128, 1, 4, 4) != model (96, 1, 4, 4)" in message
    assert "audio_branch.layers.2.blocks.6." in message
    assert "looks like 'HTSAT-base'" in message  # base has 12 blocks in stage 3, tiny 6


def test_missing_checkpoint_file(tmp_path):
    path = tmp_path / "nowhere" / "630k-audioset-best.pt"
    with pytest.raises(FileNotFoundError, match="630k-audioset-best.pt"):
        ClapTeacher(str(path))


def test_targets_work_as_a_loss_target(tokens_teacher, waveform):
    prediction = torch.zeros(BATCH, TIME * FREQ, 768, requires_grad=True)
    loss = F.mse_loss(prediction, tokens_teacher(waveform))
    loss.backward()
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all()


def test_half_precision_keeps_the_log_mel_front_end_in_float32(waveform):
    teacher = ClapTeacher("random", feature="projected")
    reference = teacher(waveform[:1])
    teacher.half()
    assert teacher.audio_branch.patch_embed.proj.weight.dtype == torch.float16
    assert teacher.audio_projection[0].weight.dtype == torch.float16
    assert teacher.audio_branch.logmel_extractor.melW.dtype == torch.float32
    assert teacher.audio_branch.bn0.weight.dtype == torch.float32
    silent_half = waveform[:1].clone()
    silent_half[:, CLIP // 2 :] = 0  # float16 log-mel would give -inf here
    targets = teacher(silent_half)
    assert targets.dtype == torch.float32 and torch.isfinite(targets).all()
    torch.testing.assert_close(teacher(waveform[:1]), reference, atol=0.05, rtol=0.05)


@pytest.mark.parametrize("student_seconds, grid", [(10.24, (64, 8)), (1.28, (8, 8))])
def test_time_is_aligned_in_seconds(tokens_teacher, student_seconds, grid):
    # A map whose value is its time step: bilinear sampling at a patch centre returns the
    # teacher's (fractional) step there: centre / (10 s / 32) - 0.5, clamped to [0, 31].
    steps = torch.arange(32.0).view(1, 1, 1, 32).expand(1, 768, 2, 32)
    saved = tokens_teacher.grid, tokens_teacher.student_seconds
    tokens_teacher.grid, tokens_teacher.student_seconds = grid, student_seconds
    try:
        sampled = tokens_teacher.targets_from_token_map(steps)[0, :, 0].view(grid)  # (T, F)
    finally:
        tokens_teacher.grid, tokens_teacher.student_seconds = saved
    centres = (torch.arange(grid[0]) + 0.5) * student_seconds / grid[0]
    expected = (centres / (10.0 / 32) - 0.5).clamp(0, 31)
    torch.testing.assert_close(sampled, expected.unsqueeze(1).expand(grid), atol=1e-4, rtol=0)
    if student_seconds < 10:
        assert sampled.max() < 4.0  # 1.28 s of audio only reaches the teacher's first steps


def test_a_teacher_for_cached_maps_builds_no_htsat_until_asked(tmp_path, waveform):
    """build_now=False (a model pretraining from task.teacher_cache): no HTS-AT, the projection loaded
    alone from the release, the same targets from a map; HTS-AT is built, with the release's weights,
    at the first token_map."""
    clip = waveform[:1]
    teacher = perturbed(ClapTeacher("random", feature="projected"))
    path = tmp_path / "630k-like.pt"
    torch.save(teacher_state_dict_for_release(teacher), path)
    lazy = ClapTeacher(str(path), feature="projected", build_now=False)
    assert lazy.audio_branch is None and sum(p.numel() for p in lazy.parameters()) == 768 * 512 + 512 + 512 * 512 + 512
    token_map = teacher.token_map(clip)
    assert torch.equal(lazy.targets_from_token_map(token_map), teacher.targets_from_token_map(token_map))
    assert lazy.follow(torch.device("cpu")) is lazy  # nothing to move yet
    assert torch.equal(lazy.token_map(clip), token_map) and lazy.audio_branch is not None


def test_a_model_pretraining_from_a_cache_has_no_htsat():
    from omegaconf import OmegaConf

    from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel

    cfg = OmegaConf.structured(SupmamConfig(encoder_layers=1, encoder_embed_dim=64, encoder_heads=2, decoder_embed_dim=32,
                                            decoder_heads=2, target="teacher", teacher_checkpoint="random"))
    cached, online = SupmamModel(cfg, teacher_cached=True), SupmamModel(cfg)
    assert cached.teacher.audio_branch is None and online.teacher.audio_branch is not None
    token_map = torch.randn(2, 768, 2, 32)
    assert torch.equal(cached.teacher_targets(teacher_token_map=token_map),
                       online.teacher_targets(teacher_token_map=token_map))
