"""Fine-tuning augmentations (time roll, frequency shift, frequency warp): each clip is moved by its own shift,
against torch.roll and a hand-shifted clip; the classifier applies them in training only."""
import torch
from omegaconf import OmegaConf

from supmam_plugin.models.augment import freq_shift, freq_warp, time_roll
from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig


def assert_each_clip_moved_by_its_own_shift(fbank, out, move, max_shift):
    """Every output clip is its input moved by exactly one shift in [-max_shift, max_shift]
    (``move(clip, k)``), and over the batch every shift is drawn."""
    seen = set()
    for x, y in zip(fbank, out):
        found = [k for k in range(-max_shift, max_shift + 1) if torch.equal(y, move(x, k))]
        assert len(found) == 1, found
        seen.add(found[0])
    assert seen == set(range(-max_shift, max_shift + 1))


def test_time_roll_is_a_circular_roll_of_each_clip_by_its_own_shift():
    torch.manual_seed(0)
    fbank = torch.randn(64, 12, 5)
    assert_each_clip_moved_by_its_own_shift(fbank, time_roll(fbank, 3), lambda x, k: torch.roll(x, k, dims=0), 3)


def hand_shift(x, k):
    """Mel axis moved up by k bins (down for k < 0), the edge bin repeated, written out by hand."""
    bins = x.size(1)
    return torch.stack([x[:, min(max(f - k, 0), bins - 1)] for f in range(bins)], dim=1)


def test_freq_shift_moves_the_mel_axis_and_repeats_the_edge_bin():
    torch.manual_seed(0)
    fbank = torch.randn(64, 6, 10)
    assert_each_clip_moved_by_its_own_shift(fbank, freq_shift(fbank, 2), hand_shift, 2)
    x = torch.arange(4.0).repeat(2, 1).unsqueeze(0)  # (1, 2 frames, 4 bins): 0 1 2 3
    assert hand_shift(x[0], 1).tolist() == [[0, 0, 1, 2], [0, 0, 1, 2]]  # not wrapped around


def test_classifier_rolls_shifts_and_warps_in_training_only():
    cfg = SupmamClassifierConfig(encoder_layers=1, encoder_embed_dim=32, encoder_heads=2, input_frames=32,
                                 time_mask_ratio=0.0, freq_mask_ratio=0.0, drop_path=0.0, layer_decay=1.0,
                                 time_roll_frames=8, freq_shift_bins=4, freq_warp=0.1)
    model = SupmamClassifier(OmegaConf.structured(cfg), num_classes=3)
    torch.manual_seed(0)
    fbank = torch.randn(4, 32, 128)
    plain = SupmamClassifier(OmegaConf.structured({**OmegaConf.to_container(OmegaConf.structured(cfg)),
                                                   "time_roll_frames": 0, "freq_shift_bins": 0, "freq_warp": 0.0}),
                       num_classes=3)
    plain.load_state_dict(model.state_dict())
    model.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(model(fbank=fbank)["logits"], plain(fbank=fbank)["logits"])  # eval: untouched
        model.train(), plain.train()
        torch.manual_seed(1)
        moved = model(fbank=fbank)["logits"]
        assert not torch.allclose(moved, plain(fbank=fbank)["logits"])  # train: the input was moved
        torch.manual_seed(1)  # the same draws as the model's: roll, shift, then warp
        expected = plain(fbank=freq_warp(freq_shift(time_roll(fbank, 8), 4), 0.1))["logits"]
    assert torch.allclose(moved, expected, atol=1e-6)


def sine_fbank(hz: float) -> torch.Tensor:
    """(1, T, 128) log-mel of a 1 s sine at ``hz`` through the plugin's Kaldi fbank."""
    from supmam_plugin.core.fbank import kaldi_fbank
    t = torch.arange(16000) / 16000.0
    return kaldi_fbank(0.1 * torch.sin(2 * torch.pi * hz * t)).unsqueeze(0)


def peak_bin(fbank: torch.Tensor) -> float:
    """Power-weighted centre (in bins) of the 7 bins around the loudest bin of frame 50."""
    power = fbank[0, 50].exp()
    top = int(power.argmax())
    near = torch.arange(top - 3, top + 4)
    return float((power[near] * near).sum() / power[near].sum())


def test_warp_frequency_moves_a_sine_to_the_warped_frequency():
    """Sines at 300 Hz, 500 Hz, 2 kHz and 4 kHz warped by 1.1 and 0.9 peak where sines at 1.1 and
    0.9 times their frequency peak (fbank of real sines, not of our warp), within 0.25 bin, where
    the unwarped sine is more than 1 bin away; a factor of 1 changes nothing."""
    from supmam_plugin.models.augment import warp_frequency
    for hz in (300.0, 500.0, 2000.0, 4000.0):
        x = sine_fbank(hz)
        for factor in (1.1, 0.9):
            reference = peak_bin(sine_fbank(hz * factor))
            assert abs(peak_bin(warp_frequency(x, torch.tensor([factor]))) - reference) < 0.25, (hz, factor)
            assert abs(peak_bin(x) - reference) > 1.0
        assert torch.allclose(warp_frequency(x, torch.tensor([1.0])), x, atol=1e-3)


def test_freq_warp_draws_one_factor_per_clip_within_the_range():
    from supmam_plugin.models.augment import freq_warp, warp_frequency
    torch.manual_seed(0)
    fbank = torch.randn(8, 4, 128)
    torch.manual_seed(3)
    out = freq_warp(fbank, 0.1)
    torch.manual_seed(3)
    factor = 1.0 + (torch.rand(8) * 2.0 - 1.0) * 0.1
    assert factor.min() >= 0.9 and factor.max() <= 1.1 and factor.std() > 0.01
    assert torch.equal(out, warp_frequency(fbank, factor))
