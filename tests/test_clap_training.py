"""Training a CLAP from captions through the real fairseq CLI: task clap_pretraining, model clap,
criterion clap_contrastive; fairseq-validate's retrieval over the whole subset equals the same
scores computed directly from the checkpoint's towers, one clip and one caption at a time."""
import os
import shutil

import numpy as np
import pytest
import torch

from conftest import TONE_CLIPS, make_labelled_folder, run_cli, train_log_records
from supmam_plugin.commands.fairseq_runs import log_records, validate_command
from supmam_plugin.commands.train_tokenizer import main as train_tokenizer_main

TINY_CLAP = ["model.encoder_layers=2", "model.encoder_embed_dim=192", "model.encoder_heads=3", "model.text_layers=1",
             "model.text_embed_dim=64", "model.text_heads=2", "model.embed_dim=32", "task.target_frames=128"]
CPU = ["common.cpu=true", "dataset.num_workers=0", "common.log_interval=1", "common.log_format=json",
       "lr_scheduler.warmup_updates=1", "dataset.batch_size=4"]


@pytest.fixture(scope="module")
def caption_folder(tmp_path_factory):
    """The 12 tone clips as train and valid, each with a caption (two clips share one string, one
    clip has two captions) and a tokenizer trained on the training captions."""
    root = make_labelled_folder(tmp_path_factory.mktemp("captions"), ["low", "high"], TONE_CLIPS, split="train")
    captions = [f"a {labels[0]} tone, clip {i}" for i, (_, _, _, labels) in enumerate(TONE_CLIPS)]
    captions[5] = captions[3]
    captions[7] = f"{captions[7]} ||| a steady {TONE_CLIPS[7][3][0]} whistle"
    for split in ("train", "valid"):
        if split != "train":
            shutil.copy(os.path.join(root, "train.tsv"), os.path.join(root, f"{split}.tsv"))
        with open(os.path.join(root, f"{split}.text"), "w") as f:
            f.write("\n".join(captions) + "\n")
    assert train_tokenizer_main([root, "--vocab-size", "60"]) == 0
    return root


def test_clap_trains_and_validate_scores_retrieval_over_the_whole_subset(caption_folder, tmp_path):
    trained = run_cli(["fairseq-hydra-train", "--config-dir", "examples/supmam/clap", "--config-name", "vit",
                       f"task.data={caption_folder}", f"checkpoint.save_dir={tmp_path}", "optimization.max_update=3",
                       *TINY_CLAP, *CPU])
    assert trained.returncode == 0, trained.stdout[-4000:]
    records = train_log_records(trained.stdout)
    assert [r["num_updates"] for r in records] == ["1", "2", "3"]
    assert all(float(r["loss"]) > 0 for r in records)
    assert float(records[0]["inverse_temperature"]) == pytest.approx(1 / 0.07, abs=0.05)

    checkpoint = os.path.join(tmp_path, "checkpoint_last.pt")
    cmd = validate_command(caption_folder, checkpoint, "valid", batch_size=5, cpu=True, task="clap_pretraining")
    validated = run_cli([os.path.basename(cmd[0]), *cmd[1:]])
    assert validated.returncode == 0, validated.stdout[-4000:]
    logged = log_records(validated.stdout, "valid")
    logged = logged[-1] if logged else _last_valid_line(validated.stdout)

    direct = _retrieval_from_the_towers(checkpoint, caption_folder)
    for key, value in direct.items():
        assert float(logged[key]) == pytest.approx(value, abs=1e-3), key


def _last_valid_line(output):
    """fairseq-validate prints its metrics as 'valid on 'valid' subset | key value | ...'."""
    line = [line for line in output.splitlines() if "valid on 'valid' subset" in line][-1]
    fields = [part.strip().split(" ", 1) for part in line.split("|")[1:]]
    return {key: value for key, value in (f for f in fields if len(f) == 2)}


def _retrieval_from_the_towers(checkpoint, data):
    """Retrieval computed without fairseq's batches or meters: each clip and each caption alone."""
    from fairseq import checkpoint_utils

    import supmam_plugin  # noqa: F401  (registers the task and model)
    from supmam_plugin.evaluation.retrieval import audio_text_retrieval

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    task.load_dataset("valid")
    dataset = task.datasets["valid"]
    audio, text = [], {}
    with torch.no_grad():
        for i in range(len(dataset)):
            batch = dataset.collater([dataset[i]])
            audio.append(model.embed_audio(batch["net_input"]["source"], batch["net_input"]["source_lengths"])[0])
            for caption in dataset.captions[i]:
                tokens = torch.tensor([task.tokenizer.encode(caption, task.cfg.max_text_tokens)])
                text[caption] = model.embed_text(tokens)[0].numpy()
    return audio_text_retrieval(torch.stack(audio).numpy(), text, dataset.captions)
