"""Does a CLAP trained here learn from captions? Train the demo-sized CLAP (the ViT tower at
supmam-demo's tiny size, a small caption tower) on a folder's captions, then score retrieval and
zero-shot classification on held-out splits, beside the SAME model untrained (its random init)
and chance; draw the audio-caption similarity matrix of valid clips.

    .venv/bin/python scripts/clap_study.py --data data/sound_events --out clap_study --updates 1200
    .venv/bin/python scripts/clap_study.py --spoken-words data/demo_pool data/demo --zero-shot-prompt '{}' ...

Steps (each a real command, logged under OUT/):
1. ``supmam-train-tokenizer DATA --splits TRAIN --out OUT/text.spm.model``;
2. ``fairseq-hydra-train --config-dir recipes/clap --config-name vit`` on ``--train-split`` (the
   pool with the labelled clips for make sound-events: ``pretrain``), the best checkpoint by valid
   audio->caption mAP@10; zero-shot classes from ``dict.label.txt`` (mAP when clips have several);
3. the random twin: the same command with lr 0 for one update (the trained run's initial weights);
4. ``fairseq-validate`` of both on each ``--score`` split: R@1/5/10 and mAP@10 both ways, zero-shot;
5. OUT/similarity_valid.png: cosine similarity of the first valid clips to their captions.
Results: OUT/results.json and a table on stdout. Nothing is chosen on the scored splits.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from supmam_plugin.core.captions import read_captions
from supmam_plugin.core.manifest import read_manifest
from supmam_plugin.experiments.clap_teacher import SMALL_CAPTION_TOWER
from supmam_plugin.experiments.fairseq_runs import (
    console_script, hydra_train_command, log_records, parse_validate_output, run_logged, training_seconds,
    validate_command,
)
from supmam_plugin.experiments.folders import chance_score, frames_for, is_multi_label
from supmam_plugin.experiments.settings import ON_CPU, TINY

SHOWN = ("a2t_R1", "a2t_R10", "a2t_mAP10", "t2a_R1", "t2a_R10", "t2a_mAP10")


def train(args, data, tokenizer, name, overrides) -> tuple[str, str]:
    """(checkpoint, training output) of one CLAP run into OUT/name."""
    multi_label = is_multi_label(data)
    save_dir = os.path.join(args.out, name)
    cmd = hydra_train_command("clap", "vit", save_dir, [
        f"task.data={data}", f"task.caption_tokenizer={tokenizer}", f"task.target_frames={frames_for(data)}",
        f"dataset.train_subset={args.train_split}", "dataset.valid_subset=valid", "task.zero_shot_labels=label",
        f"task.multi_label={str(multi_label).lower()}", f"dataset.batch_size={args.batch_size}", *TINY,
        *SMALL_CAPTION_TOWER, *ON_CPU, f"common.seed={args.seed}", "optimization.max_epoch=0",
        f"optimization.lr=[{args.lr}]", f"lr_scheduler.warmup_updates={max(1, args.updates // 10)}",
        f"dataset.validate_interval_updates={args.validate_every}", "dataset.validate_interval=1000",
        *([f"task.zero_shot_prompt='{args.zero_shot_prompt}'"] if args.zero_shot_prompt else []),
        f"checkpoint.save_interval_updates={args.validate_every}", "checkpoint.keep_interval_updates=1", *overrides])
    output = run_logged(cmd, os.path.join(args.out, f"{name}.log"), name, False, reuse=True)
    return os.path.join(save_dir, "checkpoint_best.pt" if "optimization.lr=[0.0]" not in overrides
                        else "checkpoint_last.pt"), output


def score(args, data, checkpoint, split, name) -> dict:
    cmd = validate_command(data, checkpoint, split, 50, True, task="clap_pretraining")
    output = run_logged(cmd, os.path.join(args.out, f"{name}_{split}.log"), f"{name} {split}", False, reuse=True)
    return parse_validate_output(output, split)


def retrieval_chance(captions: list[tuple[str, ...]], ks=(1, 10)) -> dict:
    """R@k (%) of a random ranking, both ways, where a hit is any caption of the clip and equal
    strings are one caption (as core.retrieval scores them). captions: one tuple per clip."""
    from collections import Counter
    from math import comb

    clips = len(captions)
    unique = sorted({c for clip in captions for c in clip})
    holders = Counter(c for clip in captions for c in set(clip))  # clips that hold each caption
    chance = {}
    for k in ks:
        # audio -> text: the clip's own captions among the unique ones
        chance[f"a2t_R{k}"] = 100.0 * sum(1 - comb(len(unique) - len(set(clip)), k) / comb(len(unique), k)
                                          for clip in captions) / clips
        # text -> audio: a caption's clips among all clips
        chance[f"t2a_R{k}"] = 100.0 * sum(1 - comb(clips - holders[c], k) / comb(clips, k) for c in unique) / len(unique)
    return chance


def draw_similarity(args, data, checkpoint, clips=40) -> str:
    """OUT/similarity_valid.png: ``clips`` valid clips spread over the split (rows), ordered by
    caption, against their distinct captions (columns, same order): the cosine similarity, and each row
    as the softmax over captions with the learned temperature (what the loss trains). A CLAP that
    learned lights the diagonal, and the blocks of clips that share a caption or events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch
    from fairseq import checkpoint_utils

    import supmam_plugin  # noqa: F401  (registers the task and model)
    from supmam_plugin.data.caption_dataset import CaptionDataset

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides={"data": data})
    model = models[0].eval()
    task.load_dataset("valid")
    dataset = task.datasets["valid"]
    spread = np.linspace(0, len(dataset) - 1, min(clips, len(dataset))).round().astype(int)
    chosen = sorted(dict.fromkeys(spread.tolist()), key=lambda i: dataset.captions[i][0])
    batch = dataset.collater([dataset[i] for i in chosen])
    captions = sorted({dataset.captions[i][0] for i in chosen})  # a caption shared by clips is one column
    tokens = CaptionDataset.pad_tokens([task.tokenizer.encode(c, task.cfg.max_text_tokens) for c in captions])
    with torch.no_grad():
        audio = model.embed_audio(batch["net_input"]["source"], batch["net_input"]["source_lengths"])
        text = model.embed_text(tokens)
        cosine = audio @ text.t()
        softmax = torch.softmax(model.logit_scale.exp() * cosine, dim=1)
    figure, axes = plt.subplots(1, 2, figsize=(13, 6.2))
    for axis, matrix, title in ((axes[0], cosine, "cosine(audio i, caption j)"),
                                (axes[1], softmax, "softmax over captions j (learned temperature)")):
        image = axis.imshow(matrix.numpy(), cmap="viridis", aspect="auto")
        axis.set_title(title)
        axis.set_xlabel(f"the {len(captions)} distinct captions of these clips, in order")
        if len(captions) <= 12:
            axis.set_xticks(range(len(captions)), captions, rotation=30)
        axis.set_ylabel("valid clip i (held-out recordings), ordered by caption")
        figure.colorbar(image, ax=axis, fraction=0.046)
    figure.suptitle(f"CLAP after {args.updates} updates on {os.path.basename(data)}: {len(chosen)} valid clips "
                    "spread over the split")
    path = os.path.join(args.out, "similarity_valid.png")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def spoken_word_folder(out: str, pool: str, labelled: str) -> str:
    """OUT/spoken_words: the spoken-word demo as caption data, the words spoken being the captions:
    ``pretrain`` = the pool (make demo's ``pretrain.tsv``: its texts, ``train.text``) then the labelled
    training clips (their word); ``valid`` / ``test`` = the labelled held-out speakers (their word);
    roots made absolute. Zero-shot prompts are then the bare word (``--zero-shot-prompt '{}'``)."""
    folder = os.path.join(out, "spoken_words")
    os.makedirs(folder, exist_ok=True)

    def lines(path):
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()

    def write(name, rows):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")

    pretrain = lines(os.path.join(pool, "pretrain.tsv"))
    pool_texts = [t.replace("_", " ") for t in lines(os.path.join(pool, "train.text"))]
    write("pretrain.tsv", [os.path.normpath(os.path.join(os.path.abspath(pool), pretrain[0])), *pretrain[1:]])
    write("pretrain.text", [*pool_texts, *lines(os.path.join(labelled, "train.label"))])
    for split in ("train", "valid", "test"):
        manifest = lines(os.path.join(labelled, f"{split}.tsv"))
        write(f"{split}.tsv", [os.path.join(os.path.abspath(labelled), manifest[0]), *manifest[1:]])
        words = lines(os.path.join(labelled, f"{split}.label"))
        write(f"{split}.label", words)
        write(f"{split}.text", [w.replace("_", " ") for w in words])
    write("dict.label.txt", lines(os.path.join(labelled, "dict.label.txt")))
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join("data", "sound_events"))
    parser.add_argument("--out", default="clap_study")
    parser.add_argument("--train-split", default="pretrain", help="the split whose captions train the CLAP")
    parser.add_argument("--score", nargs="+", default=["test"], help="held-out splits to score (valid picks the "
                        "checkpoint, so it is not one of them)")
    parser.add_argument("--updates", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32, help="clips per update (the in-batch negatives)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak lr (the demo's pretraining lr for this size)")
    parser.add_argument("--validate-every", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--zero-shot-prompt", default=None, help="task.zero_shot_prompt (default the recipe's)")
    parser.add_argument("--spoken-words", nargs=2, metavar=("POOL", "LABELLED"), default=None,
                        help="instead of --data: make demo's pool and labelled folders (data/demo_pool data/demo), "
                        "the spoken words as captions")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data = os.path.abspath(spoken_word_folder(args.out, *args.spoken_words) if args.spoken_words else args.data)
    tokenizer = os.path.abspath(os.path.join(args.out, "text.spm.model"))
    if not os.path.isfile(tokenizer):
        run_logged([console_script("supmam-train-tokenizer"), data, "--splits", args.train_split, "--out", tokenizer],
                   os.path.join(args.out, "tokenizer.log"), "tokenizer", False)
    start = time.time()
    trained, output = train(args, data, tokenizer, "clap", [f"optimization.max_update={args.updates}"])
    result = {"data": data, "updates": args.updates, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
              "train_split": args.train_split, "training_seconds": training_seconds(output) or time.time() - start,
              "valid_curve": log_records(output, "valid"), "scores": {}}
    random_twin, _ = train(args, data, tokenizer, "random_init", ["optimization.max_update=1", "optimization.lr=[0.0]",
                                                                    "dataset.disable_validation=true"])
    multi_label = is_multi_label(data)
    zero_shot = "zero_shot_mAP" if multi_label else "zero_shot_accuracy"
    for split in args.score:
        clips = sum(1 for _ in open(os.path.join(data, f"{split}.tsv"))) - 1
        result["scores"][split] = {
            "trained": score(args, data, trained, split, "clap"), "random_init": score(args, data, random_twin, split,
                                                                                       "random_init"),
            "chance": {**retrieval_chance(read_captions(os.path.join(data, f"{split}.text"),
                                                         read_manifest(os.path.join(data, f"{split}.tsv")))),
                       zero_shot: chance_score(data, multi_label)}, "clips": clips}
    result["picture"] = draw_similarity(args, data, trained)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    for split, rows in result["scores"].items():
        print(f"{split} ({rows['clips']} clips):")
        print(f"  {'chance':12s} " + "  ".join(f"{k} {v:.1f}" for k, v in rows["chance"].items()))
        for name in ("trained", "random_init"):
            print(f"  {name:12s} " + "  ".join(f"{k} {rows[name].get(k, float('nan')):.1f}" for k in (*SHOWN, zero_shot)))
    print(f"training: {result['training_seconds']:.0f} s; picture {result['picture']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
