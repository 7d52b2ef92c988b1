"""Build the small spoken-command data set that ships in ``data/demo``.

    .venv/bin/python scripts/make_demo_data.py --out-dir data/demo

Each clip is one English command word (yes, no, up, down, left, right, on, off, stop, go)
spoken by Debian's ``espeak-ng`` speech synthesiser (``apt-get install espeak-ng``), run as
``espeak-ng -v VOICE -s SPEED -p PITCH -w out.wav WORD``. A "speaker" is an espeak-ng accent
(en, en-us, en-gb-scotland, ...) combined with a voice variant (``+m3``, ``+f2``, ...), which
changes pitch range, formants and voice quality. Every word is

1. synthesised at a random speed (words per minute) and pitch,
2. resampled from espeak-ng's 22 050 Hz to 16 kHz mono with soxr and trimmed of silence,
3. scaled to a random loudness, placed at a random offset in a clip of exactly
   ``--clip-seconds`` (16 000 samples for 1 s),
4. mixed with white, pink or brown background noise at a random SNR,
5. written as 16-bit FLAC to ``audio/{split}/{word}/{word}_{voice}_{k}.flac``.

Splits use disjoint voice variants, so valid and test accuracy measure generalisation to
unseen speakers; the accents are shared. Manifests follow fairseq's convention
(``{split}.tsv`` whose first line is the audio root, here ``audio`` relative to the tsv's
folder so that a clone anywhere works; ``{split}.label``; ``dict.label.txt``).

espeak-ng is deterministic and every random draw comes from a generator seeded by
(``--seed``, split, word, clip number), so the same seed gives the same samples.
The default 290 clips take about 15 seconds.

The unlabelled pretraining pool (about a minute for 3000 clips):

    .venv/bin/python scripts/make_demo_data.py --pool-dir data/demo_pool [--labelled-dir data/demo]

writes, in the pool folder, ``audio/pool/..`` and
- ``train.tsv``: the pool clips only, no labels (root ``audio``);
- ``pretrain.tsv`` / ``pretrain.label`` / ``dict.label.txt``: the semi-supervised pretraining
  split, the pool clips (EMPTY label lines: unlabelled) followed by the labelled training clips
  of ``--labelled-dir`` (its ``train.tsv`` order, their words; its class list copied). The root
  line is the folder holding both (``..`` relative to the pool folder for ``data/demo_pool`` and
  ``data/demo``, resolved against the tsv's folder), so the paths read
  ``demo_pool/audio/pool/00/00000.flac`` and ``demo/audio/train/yes/...``. Pretrain on it with
  ``task.data=data/demo_pool dataset.train_subset=pretrain task.labels=label
  task.allow_unlabeled=true``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
import soxr

from supmam_plugin.core.manifest import (
    read_class_list, read_labels, read_manifest, write_class_list, write_manifest,
)

SAMPLE_RATE = 16000
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# espeak-ng's English accents (``espeak-ng --voices=en``, the eSpeak "gmw" voices).
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# Voice variants (``espeak-ng --voices=variant``); each split gets its own.
VARIANTS = {
    "train": ("m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt", "croak"),
    "valid": ("m6", "f4"),
    "test": ("m7", "f5"),
}
SPLIT_IDS = {"train": 0, "valid": 1, "test": 2, "pool": 3}
# The unlabeled pretraining pool (--pool-dir): other words and short phrases (none of WORDS), spoken
# by the training voices and by further espeak-ng variants, never by a valid or test voice.
POOL_TEXTS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat",
    "dog", "happy", "house", "tree", "wow", "backward", "forward", "follow", "learn", "visual", "marvin",
    "sheila", "hello", "thank you", "good morning", "see you later", "open the door", "turn the light",
    "what time is it", "play some music", "call my mother", "where is the car", "it is raining",
    "the quick brown fox", "please wait here", "how are you", "come back soon", "red green blue",
    "water", "coffee", "window", "table", "morning", "evening", "music", "number", "question",
)
POOL_VARIANTS = VARIANTS["train"] + ("m8", "klatt2", "klatt3", "klatt4", "adam", "Alex", "Andy", "Annie", "david",
                                     "edward", "john", "linda", "max", "paul", "rob", "steph", "travis", "victor")
SPEED_RANGE = (120, 200)  # words per minute
PITCH_RANGE = (30, 70)  # espeak-ng 0-99, 50 is the default
SNR_RANGE_DB = (5.0, 20.0)
LEVEL_RANGE_DBFS = (-44.0, -34.0)  # RMS of the spoken word
NOISE_KINDS = ("white", "pink", "brown")
NOISE_PROBS = (0.2, 0.4, 0.4)
SILENCE_DB = -40.0  # trim samples quieter than this relative to the word's peak


def espeak(word: str, voice: str, speed: int, pitch: int, workdir: str) -> np.ndarray:
    """The word spoken by espeak-ng, 16 kHz mono float32, leading/trailing silence trimmed."""
    wav = os.path.join(workdir, "word.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav, word],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > np.abs(audio).max() * 10 ** (SILENCE_DB / 20))
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng produced silence for {word!r} with voice {voice}")
    return audio[loud[0]:loud[-1] + 1]


def colored_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise: white (flat), pink (1/f power) or brown (1/f^2 power)."""
    white = rng.standard_normal(n)
    if kind == "white":
        noise = white
    else:
        exponent = {"pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f^-exponent
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
        freqs[0] = freqs[1]
        spectrum /= (freqs / 20.0).clip(min=1.0) ** exponent  # flat below 20 Hz
        spectrum[0] = 0.0
        noise = np.fft.irfft(spectrum, n)
    noise -= noise.mean()
    return noise / np.sqrt(np.mean(noise ** 2))


def make_clip(speech: np.ndarray, num_samples: int, rng: np.random.Generator):
    """Place ``speech`` at a random offset in silence, add noise; int16 samples and the settings."""
    level = rng.uniform(*LEVEL_RANGE_DBFS)
    snr = rng.uniform(*SNR_RANGE_DB)
    kind = str(rng.choice(NOISE_KINDS, p=NOISE_PROBS))
    speech = speech * (10 ** (level / 20) / np.sqrt(np.mean(speech ** 2)))
    if len(speech) > num_samples:  # too long for the clip: keep the middle
        start = (len(speech) - num_samples) // 2
        speech = speech[start:start + num_samples]
    offset = int(rng.integers(0, num_samples - len(speech) + 1))
    clip = np.zeros(num_samples)
    clip[offset:offset + len(speech)] = speech
    clip += colored_noise(kind, num_samples, rng) * 10 ** ((level - snr) / 20)
    peak = np.abs(clip).max()
    if peak > 0.99:
        clip *= 0.99 / peak
    samples = np.round(clip * 32767).astype(np.int16)
    return samples, {"level_dbfs": level, "snr_db": snr, "noise": kind, "offset": offset}


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True, text=True).stdout
    return out.split("Data at")[0].strip() or "espeak-ng (unknown version)"


def check_voices() -> None:
    """espeak-ng silently ignores an unknown variant, so check that every one is installed."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], check=True, capture_output=True, text=True).stdout
    installed = {line.split()[4].split("/")[-1] for line in out.splitlines()[1:] if len(line.split()) >= 5}
    missing = sorted(({v for vs in VARIANTS.values() for v in vs} | set(POOL_VARIANTS)) - installed)
    if missing:
        sys.exit(f"espeak-ng lacks the voice variant(s) {missing}; see espeak-ng --voices=variant")
    out = subprocess.run(["espeak-ng", "--voices=en"], check=True, capture_output=True, text=True).stdout
    languages = {line.split()[1] for line in out.splitlines()[1:] if len(line.split()) >= 2}
    missing = sorted(set(ACCENTS) - languages)
    if missing:
        sys.exit(f"espeak-ng lacks the English accent(s) {missing}; see espeak-ng --voices=en")


def plan_split(split: str, per_class: int, seed: int):
    """(word, accent, variant, speed, pitch, rng) for every clip of a split; no two clips of a word
    share all of accent, variant, speed and pitch."""
    plan = []
    variants = VARIANTS[split]
    for word_id, word in enumerate(WORDS):
        used = set()
        for k in range(per_class):
            rng = np.random.default_rng([seed, SPLIT_IDS[split], word_id, k])
            # spread speakers evenly: cycle over variants, random accent
            variant = variants[k % len(variants)]
            while True:
                accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
                speed = int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1))
                pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
                if (accent, variant, speed, pitch) not in used:
                    used.add((accent, variant, speed, pitch))
                    break
            plan.append((word, accent, variant, speed, pitch, k, rng))
    return plan


def make_pool(out_dir: str, num_clips: int, seed: int, num_samples: int) -> str:
    """The unlabeled pretraining pool: ``num_clips`` clips of POOL_TEXTS by POOL_VARIANTS (no valid or
    test voice, none of the command words), same loudness / noise recipe as the labeled splits;
    ``OUT_DIR/train.tsv`` without labels. Returns the manifest's path."""
    held_out = set(VARIANTS["valid"]) | set(VARIANTS["test"])
    assert not held_out & set(POOL_VARIANTS) and not set(WORDS) & set(POOL_TEXTS)
    audio_root = os.path.join(out_dir, "audio")
    if os.path.isdir(audio_root):
        shutil.rmtree(audio_root)
    entries, texts = [], []
    with tempfile.TemporaryDirectory() as workdir:
        for k in range(num_clips):
            rng, text = pool_draw(seed, k)
            texts.append(text)
            voice = f"{ACCENTS[int(rng.integers(len(ACCENTS)))]}+{POOL_VARIANTS[int(rng.integers(len(POOL_VARIANTS)))]}"
            speed = int(rng.integers(SPEED_RANGE[0], SPEED_RANGE[1] + 1))
            pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
            samples, _ = make_clip(espeak(text, voice, speed, pitch, workdir), num_samples, rng)
            relative = f"pool/{k // 500:02d}/{k:05d}.flac"
            path = os.path.join(audio_root, relative)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            sf.write(path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
            entries.append((relative, len(samples)))
            if (k + 1) % 500 == 0 or k + 1 == num_clips:
                print(f"pool: {k + 1}/{num_clips} clips", flush=True)
    tsv = write_manifest(out_dir, "train", audio_root, entries, None)
    with open(tsv, encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines[0] = "audio"  # relative root, as in data/demo
    with open(tsv, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    write_pool_texts(out_dir, texts)
    return tsv


def pool_draw(seed: int, k: int) -> tuple[np.random.Generator, str]:
    """The generator of pool clip ``k`` and its text (the generator's first draw)."""
    rng = np.random.default_rng([seed, SPLIT_IDS["pool"], k])
    return rng, POOL_TEXTS[int(rng.integers(len(POOL_TEXTS)))]


def write_pool_texts(out_dir: str, texts: list[str]) -> str:
    """``train.text`` (each pool clip's text, spaces as '_') and ``dict.text.txt``: NOT used by the demo
    (its pool is unlabelled); for experiments that give SupMAM's supervised branch the pretraining
    set's own labels, as the paper does with AudioSet's (``task.labels=text``)."""
    names = [t.replace(" ", "_") for t in texts]
    with open(os.path.join(out_dir, "train.text"), "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    classes = [t.replace(" ", "_") for t in POOL_TEXTS]
    return write_class_list(out_dir, classes, label_ext="text", counts={c: names.count(c) for c in classes})


def write_pretrain_manifest(pool_dir: str, labelled_dir: str, split: str = "pretrain") -> dict:
    """The semi-supervised pretraining split in ``pool_dir``: ``{split}.tsv`` listing the pool's
    clips (``pool_dir/train.tsv``, in order) then the labelled training clips
    (``labelled_dir/train.tsv``, in order), ``{split}.label`` with an EMPTY line for every pool
    clip and the labelled clips' class names, and ``dict.label.txt`` copied from ``labelled_dir``.
    The root line is the deepest folder holding both audio roots, written relative to
    ``pool_dir`` (``..`` for data/demo_pool + data/demo), so the pair of folders can move together.
    Returns {"tsv", "root", "pool", "labelled"}."""
    pool = read_manifest(os.path.join(pool_dir, "train.tsv"))
    labelled = read_manifest(os.path.join(labelled_dir, "train.tsv"))
    classes = read_class_list(os.path.join(labelled_dir, "dict.label.txt"))
    label_ids = read_labels(os.path.join(labelled_dir, "train.label"), classes, labelled)
    pool_paths = [pool.audio_path(i) for i in range(len(pool))]
    labelled_paths = [labelled.audio_path(i) for i in range(len(labelled))]
    common = os.path.commonpath(pool_paths + labelled_paths)
    if os.path.isfile(common):  # a single clip
        common = os.path.dirname(common)
    entries = [(os.path.relpath(path, common), e.num_samples)
               for path, e in zip(pool_paths + labelled_paths, pool.entries + labelled.entries)]
    labels = [[] for _ in pool_paths] + [[classes[c] for c in ids] for ids in label_ids]
    tsv = write_manifest(pool_dir, split, common, entries, labels, label_ext="label")
    root = os.path.relpath(common, os.path.abspath(pool_dir))
    with open(tsv, encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines[0] = root  # relative: read_manifest resolves it against the tsv's folder
    with open(tsv, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    shutil.copyfile(os.path.join(labelled_dir, "dict.label.txt"), os.path.join(pool_dir, "dict.label.txt"))
    return {"tsv": tsv, "root": root, "pool": len(pool_paths), "labelled": len(labelled_paths)}


def write_readme(args, stats: dict, num_samples: int) -> None:
    """``OUT_DIR/README.md``: what the data set is, how it was made, what each split holds."""
    defaults = args.train_per_class == 20 and args.valid_per_class == 20 and args.test_per_class == 30
    command = "apt-get install espeak-ng   # Debian/Ubuntu\n.venv/bin/python scripts/make_demo_data.py --out-dir data/demo"
    if not (defaults and args.seed == 0 and args.clip_seconds == 1.0):
        command += (f" --seed {args.seed} --clip-seconds {args.clip_seconds} --train-per-class "
                    f"{args.train_per_class} --valid-per-class {args.valid_per_class} "
                    f"--test-per-class {args.test_per_class}")
    total_bytes = sum(s["bytes"] for s in stats.values())
    rows = []
    for split, s in stats.items():
        noise = ", ".join(f"{k} {n}" for k, n in s["noise"].items())
        rows.append(f"| {split} | {s['clips']} | {s['clips'] // len(WORDS)} | "
                    f"{', '.join('+' + v for v in VARIANTS[split])} | {len(s['voices'])} | "
                    f"{min(s['speeds'])}-{max(s['speeds'])} | {min(s['pitches'])}-{max(s['pitches'])} | "
                    f"{noise} | {s['bytes'] / 1e6:.2f} MB |")
    text = f"""# Demo data set: synthetic spoken command words

A small, real (not random-tensor) audio classification data set that ships with the repository
so that the examples and tests run without downloads. {len(WORDS)} classes, one English command
word per clip: {", ".join(WORDS)}. Chance level is {100 / len(WORDS):.0f}% accuracy.

Clips are {num_samples / SAMPLE_RATE:g} s ({num_samples} samples), 16 kHz mono, 16-bit FLAC.
Each word was spoken by the `espeak-ng` speech synthesiser ({espeak_version()}) with a random
English accent, speed and pitch, resampled from 22 050 Hz to 16 kHz with soxr, trimmed of
silence, scaled to {LEVEL_RANGE_DBFS[0]:g} to {LEVEL_RANGE_DBFS[1]:g} dBFS RMS, placed at a random
offset, and mixed with white, pink (1/f) or brown (1/f^2) noise at {SNR_RANGE_DB[0]:g}-{SNR_RANGE_DB[1]:g} dB SNR.

## Splits

A voice is an espeak-ng accent plus a voice variant (`en-us+m3`). The splits use **disjoint
voice variants** (speaker timbres), so valid and test accuracy measure generalisation to unseen
speakers. The accents ({", ".join(ACCENTS)}) are shared by all splits.

| split | clips | per class | voice variants | voices (accent+variant) used | speed (wpm) | pitch | noise | size |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Total audio: {total_bytes / 1e6:.2f} MB in {sum(s["clips"] for s in stats.values())} files.

## Files

- `audio/{{split}}/{{word}}/{{word}}_{{accent}}-{{variant}}_{{k}}.flac`
- `{{train,valid,test}}.tsv`: fairseq manifests; the first line is the audio root `audio`,
  relative to this folder (the project's `read_manifest` resolves it), then
  `relative/path<TAB>num_samples`.
- `{{train,valid,test}}.label`: the class name of each manifest line.
- `dict.label.txt`: the class list, `name count` (train clips) per line; line order = class index.

Use it as the task's data folder, e.g. `task.data=data/demo task.labels=label`, and check it with
`supmam-validate-manifest data/demo train`.

## How it was made

```
{command}
```

espeak-ng is deterministic and every random draw is seeded by `--seed`, split, word and clip
number, so the command rebuilds the same samples (the FLAC bytes may differ between libFLAC
versions). Edit `scripts/make_demo_data.py` to change words, voices or noise.

## License

Generated by the SupMAM-CLAP project authors with espeak-ng (GPL-3.0 software; its output is
not covered by the GPL). The audio and manifests are dedicated to the public domain under
CC0 1.0 (https://creativecommons.org/publicdomain/zero/1.0/).
"""
    with open(os.path.join(args.out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default="data/demo", help="output folder (default: data/demo)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    # defaults keep data/demo under 10 MB on disk (a 1 s noisy clip is about 15 KB as FLAC)
    parser.add_argument("--train-per-class", type=int, default=20, help="train clips per word (default: 20)")
    parser.add_argument("--valid-per-class", type=int, default=20, help="valid clips per word (default: 20: 200 clips to choose settings on)")
    parser.add_argument("--test-per-class", type=int, default=30, help="test clips per word (default: 30: 300 clips, so one clip is 0.33 points)")
    parser.add_argument("--clip-seconds", type=float, default=1.0, help="clip length (default: 1.0)")
    parser.add_argument("--pool-dir", default="", help="write ONLY the unlabeled pretraining pool here "
                        "(e.g. data/demo_pool), not the labeled splits: OUT/train.tsv (pool, no labels) and "
                        "OUT/pretrain.tsv + pretrain.label + dict.label.txt (pool unlabelled + the labelled "
                        "training clips of --labelled-dir)")
    parser.add_argument("--labelled-dir", default="data/demo", help="with --pool-dir: the folder whose "
                        "train.tsv / train.label / dict.label.txt join the pool in pretrain.tsv (default: data/demo)")
    parser.add_argument("--pool-clips", type=int, default=3000, help="clips in the pool (default: 3000)")
    parser.add_argument("--keep", action="store_true",
                        help="do not delete an existing OUT_DIR/audio before writing")
    args = parser.parse_args(argv)

    if shutil.which("espeak-ng") is None:
        parser.error("espeak-ng not found; install it with: apt-get install espeak-ng")
    check_voices()
    num_samples = int(round(args.clip_seconds * SAMPLE_RATE))
    if args.pool_dir:
        for name in ("train.tsv", "train.label", "dict.label.txt"):
            if not os.path.isfile(os.path.join(args.labelled_dir, name)):
                parser.error(f"--labelled-dir {args.labelled_dir}: {name} not found (build it first with "
                             f"--out-dir {args.labelled_dir})")
        print(f"wrote {make_pool(args.pool_dir, args.pool_clips, args.seed, num_samples)} (pool only, unlabelled)")
        made = write_pretrain_manifest(args.pool_dir, args.labelled_dir)
        print(f"wrote {made['tsv']}: {made['pool']} unlabelled pool clips + {made['labelled']} labelled clips "
              f"of {args.labelled_dir}/train.tsv, root {made['root']!r} (relative to {args.pool_dir}); "
              f"pretrain with task.data={args.pool_dir} dataset.train_subset=pretrain task.labels=label "
              "task.allow_unlabeled=true")
        return 0
    audio_root = os.path.join(args.out_dir, "audio")
    if os.path.isdir(audio_root) and not args.keep:
        shutil.rmtree(audio_root)
    per_class = {"train": args.train_per_class, "valid": args.valid_per_class, "test": args.test_per_class}
    counts = {word: 0 for word in WORDS}
    stats = {}

    with tempfile.TemporaryDirectory() as workdir:
        for split in ("train", "valid", "test"):
            entries, labels = [], []
            stat = {"voices": set(), "noise": {k: 0 for k in NOISE_KINDS}, "bytes": 0, "speeds": [], "pitches": []}
            for word, accent, variant, speed, pitch, k, rng in plan_split(split, per_class[split], args.seed):
                voice = f"{accent}+{variant}"
                speech = espeak(word, voice, speed, pitch, workdir)
                samples, settings = make_clip(speech, num_samples, rng)
                relative = f"{split}/{word}/{word}_{accent}-{variant}_{k:03d}.flac"
                path = os.path.join(audio_root, relative)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                sf.write(path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)
                entries.append((relative, len(samples)))
                stat["voices"].add(voice)
                stat["noise"][settings["noise"]] += 1
                stat["bytes"] += os.path.getsize(path)
                stat["speeds"].append(speed)
                stat["pitches"].append(pitch)
                labels.append([word])
                if split == "train":
                    counts[word] += 1
            tsv = write_manifest(args.out_dir, split, audio_root, entries, labels, label_ext="label")
            # ship a relative root: read_manifest resolves it against the tsv's folder
            with open(tsv, encoding="utf-8") as f:
                lines = f.read().splitlines()
            lines[0] = "audio"
            with open(tsv, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            stat["clips"] = len(entries)
            stats[split] = stat
            print(f"{split}: {len(entries)} clips, voice variants {', '.join(VARIANTS[split])} -> {tsv}")
    write_class_list(args.out_dir, WORDS, label_ext="label", counts=counts)
    write_readme(args, stats, num_samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
