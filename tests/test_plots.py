"""supmam-plot-reconstruction and supmam-plot-curves: pure functions (un-patchify, de-normalising,
the log parser) and both commands on real checkpoints / logs of fairseq-hydra-train runs."""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from conftest import CPU_RUN, TINY_MODEL, run_cli
from supmam_plugin.commands import plot_curves, plot_reconstruction
from supmam_plugin.pictures import reconstruction, training_curves
from supmam_plugin.pictures.training_curves import curves_of, draw_curves, panel_layout, parse_fairseq_log, run_group
from supmam_plugin.pictures.reconstruction import denormalise_patches, reconstruct, unpatchify
from supmam_plugin.models.supmam_model import normalise_patches, patchify

RUNS = {
    "spectrogram": ["--config-name", "supmam", "task.multi_label=false"],
    "clap": ["--config-name", "mam_clap", "model.teacher_checkpoint=random"],
}


def _train(data, run_dir, extra):
    args = [
        "fairseq-hydra-train", "--config-dir", "examples/supmam/pretraining", *extra,
        f"task.data={data}", "task.target_frames=128", f"checkpoint.save_dir={run_dir}",
        f"hydra.run.dir={run_dir}/hydra", "optimization.max_update=2", "dataset.batch_size=4",
        *TINY_MODEL, *CPU_RUN,
    ]
    return run_cli(args)


@pytest.fixture(scope="module")
def runs(tone_dataset, tmp_path_factory):
    """{target: run folder} of two tiny 2-update pretraining runs (trained side by side)."""
    root = tmp_path_factory.mktemp("plot_runs")
    dirs = {target: str(root / target) for target in RUNS}
    with ThreadPoolExecutor(len(RUNS)) as pool:
        done = {t: pool.submit(_train, tone_dataset, dirs[t], extra) for t, extra in RUNS.items()}
    for target, future in done.items():
        result = future.result()
        assert result.returncode == 0, result.stdout[-4000:]
        assert os.path.isfile(os.path.join(dirs[target], "checkpoint_last.pt"))
    return dirs


def _read_png(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg

    assert os.path.isfile(path) and os.path.getsize(path) > 0
    return mpimg.imread(path)


def _audio(tone_dataset):
    return os.path.join(tone_dataset, "audio", "low", "clip2.wav")


# ----------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize("frames,bins,p", [(128, 128, 16), (64, 32, 8), (48, 16, 16)])
def test_unpatchify_inverts_patchify(frames, bins, p):
    fbank = torch.randn(3, frames, bins)
    patches = patchify(fbank, p)
    assert torch.equal(unpatchify(patches, p, (frames // p, bins // p)), fbank)
    # and the other way round: patch k of the image is row k of the patches
    patches = torch.randn(2, (frames // p) * (bins // p), p * p)
    assert torch.equal(patchify(unpatchify(patches, p, (frames // p, bins // p)), p), patches)


def test_unpatchify_places_patch_t_f_at_its_grid_cell():
    p, grid = 4, (3, 2)
    patches = torch.arange(6, dtype=torch.float32).view(1, 6, 1).expand(1, 6, p * p)
    image = unpatchify(patches, p, grid)[0]
    for t in range(grid[0]):
        for f in range(grid[1]):
            assert (image[t * p:(t + 1) * p, f * p:(f + 1) * p] == t * grid[1] + f).all()
    with pytest.raises(ValueError):
        unpatchify(patches, p, (2, 2))


def test_perfect_prediction_reconstructs_the_input():
    torch.manual_seed(0)
    p = 16
    fbank = torch.randn(2, 128, 128) * 0.3 + 0.1 * torch.arange(128).view(1, 1, 128) / 128
    target = normalise_patches(patchify(fbank, p))
    mask = (torch.rand(2, 64) < 0.8).float()
    predicted, mixed = reconstruct(fbank, target, mask, p, norm_pix=True)
    assert torch.allclose(predicted, fbank, atol=1e-5)
    assert torch.allclose(mixed, fbank, atol=1e-5)
    assert torch.allclose(denormalise_patches(target, patchify(fbank, p)), patchify(fbank, p), atol=1e-5)
    # without norm_pix the prediction is taken as it is
    predicted, mixed = reconstruct(fbank, patchify(fbank, p), mask, p, norm_pix=False)
    assert torch.equal(predicted, fbank) and torch.equal(mixed, fbank)


def test_reconstruction_keeps_visible_patches_and_predicts_masked_ones():
    p = 8
    fbank = torch.randn(1, 32, 16)
    prediction = torch.zeros(1, 8, p * p)  # normalised zero = the input patch's mean
    mask = torch.tensor([[1, 0, 0, 1, 0, 1, 1, 0]], dtype=torch.float32)
    _, mixed = reconstruct(fbank, prediction, mask, p, norm_pix=True)
    inputs, out = patchify(fbank, p)[0], patchify(mixed, p)[0]
    for k in range(8):
        if mask[0, k]:
            assert torch.allclose(out[k], inputs[k].mean().expand(p * p), atol=1e-6)
        else:
            assert torch.equal(out[k], inputs[k])


JSON_LOG = """\
[2024-05-01 10:00:00,000][fairseq_cli.train][INFO] - {'_name': None, 'common': {'log_format': 'json'}}
[2024-05-01 10:00:01,000][fairseq.trainer][INFO] - begin training epoch 1
[2024-05-01 10:00:02,000][train_inner][INFO] - {"epoch": 1, "update": 0.5, "loss": "1.23", "target_loss": "1.2", "cls_accuracy": "25", "num_updates": "25", "lr": "0.0002"}
[2024-05-01 10:00:03,000][train_inner][INFO] - {"epoch": 1, "update": 1.0, "loss": "1.1", "target_loss": "1.05", "cls_accuracy": "50", "num_updates": "50", "lr": "0.0002"}
[2024-05-01 10:00:04,000][valid][INFO] - {"epoch": 1, "valid_loss": "0.69", "valid_accuracy": "50", "valid_num_updates": "50", "valid_best_loss": "0.69"}
[2024-05-01 10:00:05,000][train][INFO] - {"epoch": 1, "train_loss": "1.15", "train_num_updates": "50"}
"""

SIMPLE_LOG = """\
[2024-05-01 10:00:00,000][fairseq.trainer][INFO] - begin training epoch 2
[2024-05-01 10:00:02,000][train_inner][INFO] - epoch 002:      1 / 1 loss=4.1495, target_loss=4.1494, masked_loss=4.1494, cls_loss=2.0794, cls_accuracy=12.5, nsentences=4, num_updates=2, lr=1e-07, gnorm=7.12, wall=3
[2024-05-01 10:00:03,000][valid][INFO] - epoch 002 | valid on 'valid' subset | loss 1.0937 | accuracy 42.857 | mAP 51.2 | nsentences 7 | num_updates 4 | best_loss 1.0937
[2024-05-01 10:00:04,000][eval][INFO] - epoch 002 | valid on 'eval' subset | loss 1.5 | accuracy 30 | num_updates 4
2024-05-01 10:00:05 | INFO | valid | epoch 003 | valid on 'valid' subset | loss 0.9 | accuracy 60 | num_updates 6
"""


def test_parse_json_log():
    parsed = parse_fairseq_log(JSON_LOG)
    assert sorted(parsed) == ["train", "train_inner", "valid"]
    inner = parsed["train_inner"]
    assert [r["num_updates"] for r in inner] == [25.0, 50.0]
    assert [r["loss"] for r in inner] == [1.23, 1.1]
    assert inner[1]["target_loss"] == 1.05 and inner[0]["cls_accuracy"] == 25.0 and inner[0]["epoch"] == 1.0
    (valid,) = parsed["valid"]
    assert valid["loss"] == 0.69 and valid["accuracy"] == 50.0 and valid["num_updates"] == 50.0
    assert parsed["train"][0]["loss"] == 1.15


def test_parse_simple_log():
    parsed = parse_fairseq_log(SIMPLE_LOG)
    assert sorted(parsed) == ["eval", "train_inner", "valid"]
    (inner,) = parsed["train_inner"]
    assert inner["epoch"] == 2.0 and inner["loss"] == 4.1495 and inner["target_loss"] == 4.1494
    assert inner["cls_loss"] == 2.0794 and inner["cls_accuracy"] == 12.5 and inner["num_updates"] == 2.0
    assert inner["lr"] == 1e-07
    first, second = parsed["valid"]
    assert first["epoch"] == 2.0 and first["loss"] == 1.0937 and first["accuracy"] == 42.857
    assert first["mAP"] == 51.2 and first["num_updates"] == 4.0 and first["best_loss"] == 1.0937
    assert second["epoch"] == 3.0 and second["loss"] == 0.9 and second["num_updates"] == 6.0
    assert parsed["eval"][0]["accuracy"] == 30.0
    assert parse_fairseq_log("nothing here\n[x][fairseq.trainer][INFO] - epoch begins\n") == {}


# ----------------------------------------------------------------------------- the commands


def _check_png(path, size):
    image = _read_png(path)
    assert image.shape[:2] == size, image.shape
    assert float(image[..., :3].var()) > 0.0


@pytest.mark.parametrize("target", sorted(RUNS))
def test_plot_reconstruction(target, runs, tone_dataset, tmp_path, capsys):
    out = str(tmp_path / f"{target}.png")
    checkpoint = os.path.join(runs[target], "checkpoint_last.pt")
    assert plot_reconstruction.main([checkpoint, _audio(tone_dataset), "--out", out, "--clip-id", "3"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == out
    _check_png(out, (920, 1100))  # 128 x 128 input: 2 x 2 panels of 11 x 9.2 inches at 100 dpi


def test_reconstruction_model_output(runs, tone_dataset):
    """The command's model is the checkpoint's: same weights, deterministic mask of the right ratio."""
    checkpoint = os.path.join(runs["spectrogram"], "checkpoint_last.pt")
    model, info = reconstruction.load_pretraining_model(checkpoint)
    assert info["num_updates"] == 2 and info["num_classes"] == 2 and not model.training
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    assert torch.equal(model.state_dict()["head.0.weight"], saved["head.0.weight"])
    clip = reconstruction.load_clip(_audio(tone_dataset), model)
    # clip2 is 1.5 s at 16 kHz: cut to its first 128 frames (400 + 127 x 160 samples), as in training
    assert clip["source"].shape == (1, 400 + 127 * 160)
    first = reconstruction.run_model(model, clip, clip_id=3)
    again = reconstruction.run_model(model, clip, clip_id=3)
    assert first["fbank"].shape == (1, 128, 128) and first["prediction"].shape == (1, 64, 256)
    assert torch.equal(first["mask"], again["mask"]) and torch.equal(first["prediction"], again["prediction"])
    assert int(first["mask"].sum()) == 64 - int(64 * (1 - model.cfg.mask_ratio) + 1e-6)


def test_plot_reconstruction_errors(runs, tone_dataset, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert plot_reconstruction.main([str(tmp_path / "missing.pt"), _audio(tone_dataset), "--out", out]) == 1
    assert "missing.pt" in capsys.readouterr().err
    checkpoint = os.path.join(runs["spectrogram"], "checkpoint_last.pt")
    assert plot_reconstruction.main([checkpoint, str(tmp_path / "missing.wav"), "--out", out]) == 1
    assert "missing.wav" in capsys.readouterr().err
    assert not os.path.exists(out)


def _figure_size(rows, columns):
    """Pixels (height, width) at 100 dpi of a figure of rows x columns panels (draw_curves' sizes:
    4.3 x 3.9 inches a panel, 2.6 inches for the run legends)."""
    return round(100 * 3.9 * rows), round(100 * (4.3 * columns + 2.6))


def test_plot_curves_from_run_folders(runs, tmp_path, capsys):
    out = str(tmp_path / "curves.png")
    assert plot_curves.main([runs["spectrogram"], runs["clap"], "--out", out]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == out
    # both are pretraining runs: one row; supmam logs the cls branch, mam_clap masked + visible losses
    parsed = [curves_of(parse_fairseq_log(open(log).read())) for log in
              training_curves.find_logs(runs["spectrogram"]) + training_curves.find_logs(runs["clap"])]
    assert panel_layout(parsed) == [("pretraining", [
        ("loss", ("loss",)), ("target loss", ("target_loss", "masked_loss", "visible_loss")),
        ("classification branch: cls_loss", ("cls_loss",)),
        ("classification branch: cls_accuracy (%)", ("cls_accuracy",))])]
    _check_png(out, _figure_size(1, 4))


def test_plot_curves_from_simple_and_json_files(tmp_path):
    simple, json_log = tmp_path / "simple.log", tmp_path / "json.log"
    simple.write_text(SIMPLE_LOG)
    json_log.write_text(JSON_LOG)
    out = str(tmp_path / "curves.png")
    assert plot_curves.main([str(simple), str(json_log), "--out", out]) == 0
    # pretraining runs that validate with accuracy and mAP: those get panels in their row
    titles = [t for t, _ in panel_layout([curves_of(parse_fairseq_log(t)) for t in (SIMPLE_LOG, JSON_LOG)])[0][1]]
    assert titles == ["loss", "target loss", "classification branch: cls_loss",
                      "classification branch: cls_accuracy (%)", "accuracy (%)", "mAP (%)"]
    _check_png(out, _figure_size(1, 6))


FINETUNE_LOG = """\
[2024-05-01 10:00:02,000][train_inner][INFO] - {"epoch": 1, "loss": "2.3", "accuracy": "10", "num_updates": "10"}
[2024-05-01 10:00:03,000][train_inner][INFO] - {"epoch": 1, "loss": "1.9", "accuracy": "30", "num_updates": "20"}
[2024-05-01 10:00:04,000][valid][INFO] - {"epoch": 1, "valid_loss": "2.0", "valid_accuracy": "25", "valid_num_updates": "20"}
[2024-05-01 10:00:05,000][train_inner][INFO] - {"epoch": 2, "loss": "1.5", "accuracy": "50", "num_updates": "30"}
[2024-05-01 10:00:06,000][valid][INFO] - {"epoch": 2, "valid_loss": "1.7", "valid_accuracy": "40", "valid_num_updates": "30"}
"""


def _variant(text, k):
    """The same log with every loss and accuracy shifted by k (another run)."""
    import re

    return re.sub(r'"((?:valid_)?(?:loss|target_loss|cls_loss|accuracy|cls_accuracy))": "([\d.]+)"',
                  lambda m: f'"{m.group(1)}": "{float(m.group(2)) + 0.1 * k:.3f}"', text)


def test_fifteen_runs_two_groups_legends_cover_no_panel(tmp_path):
    """5 pretraining and 10 fine-tuning runs: a row per group, every line drawn, each run once in
    its row's legend with its own colour, and no legend overlapping a panel."""
    import matplotlib.pyplot as plt

    texts = [_variant(JSON_LOG, k) for k in range(5)] + [_variant(FINETUNE_LOG, k) for k in range(10)]
    parsed = [curves_of(parse_fairseq_log(t)) for t in texts]
    assert [run_group(p) for p in parsed] == ["pretraining"] * 5 + ["fine-tuning"] * 10
    layout = panel_layout(parsed)
    assert [(g, [t for t, _ in panels]) for g, panels in layout] == [
        ("pretraining", ["loss", "target loss", "classification branch: cls_accuracy (%)", "accuracy (%)"]),
        ("fine-tuning", ["loss", "accuracy (%)"]),
    ]
    names = [f"pretrain_{k}" for k in range(5)] + [f"finetune_{k}" for k in range(10)]
    fig = draw_curves(names, parsed)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 6
    by_title = {ax.get_title(): ax for ax in panels}
    # fine-tuning loss: 10 runs x (train, valid); pretraining target loss: 5 runs x target_loss
    assert len(by_title["fine-tuning: loss"].lines) == 20
    assert len(by_title["pretraining: target loss"].lines) == 5
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    run_legends = [lg for lg in legends if lg.get_title().get_text().endswith("runs")]
    assert [[t.get_text() for t in lg.get_texts()] for lg in run_legends] == [names[:5], names[5:]]
    for lg in run_legends:
        colours = [tuple(h.get_color()) for h in lg.legend_handles]
        assert len(set(colours)) == len(colours)
    for lg in legends:
        box = lg.get_window_extent(renderer)
        for ax in panels:
            assert not box.overlaps(ax.get_window_extent(renderer)), (lg.get_title().get_text(), ax.get_title())
    plt.close(fig)


def test_plot_curves_rejects_a_log_without_metrics(tmp_path, capsys):
    good, bad = tmp_path / "good.log", tmp_path / "empty_run.log"
    good.write_text(SIMPLE_LOG)
    bad.write_text("[2024-05-01 10:00:00,000][fairseq.trainer][INFO] - begin training epoch 1\n")
    out = str(tmp_path / "curves.png")
    assert plot_curves.main([str(good), str(bad), "--out", out]) == 1
    err = capsys.readouterr().err
    assert "empty_run.log" in err and "no training or validation metrics" in err
    assert not os.path.exists(out)
    assert plot_curves.main([str(tmp_path / "nowhere"), "--out", out]) == 1
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert plot_curves.main([str(empty_dir), "--out", out]) == 1
    assert "no hydra_train.log" in capsys.readouterr().err


def test_results_picture_draws_the_bars_a_demo_trained_beside_its_students(tmp_path):
    """supmam-plot-results: the all-labels classifier and the teacher's probe are lines at their means
    over seeds (hand-computed), drawn with the MFCC baseline and chance; a result without them has none."""
    from supmam_plugin.commands.plot_results import bars, plot_results

    result = {"methods": ["supmam_clap"], "seeds": [1, 2], "metric": "mAP", "chance": 13.6,
              "teacher_name": "clap", "teacher": "trained here", "mfcc_baseline": {"test": 33.7},
              "finetuned": {"supmam_clap": {"1": {"test": 40.0}, "2": {"test": 42.0}},
                            "scratch": {"1": {"test": 23.0}, "2": {"test": 25.0}}},
              "linear_probe": {}, "all_labels": {"1": {"test": 27.0}, "2": {"test": 28.0}},
              "clap_teacher": {"1": {"probe_test": 46.0}, "2": {"probe_test": 45.0}}}
    lines = bars(result)
    assert [(score, words) for score, _, _, words in lines] == [
        (27.5, "from scratch on every labelled clip"), (45.5, "the teacher (linear probe)")]
    assert bars({k: v for k, v in result.items() if k not in ("all_labels", "clap_teacher")}) == []
    out = plot_results(result, str(tmp_path / "held_out_mAP.png"))
    assert os.path.getsize(out) > 10_000
