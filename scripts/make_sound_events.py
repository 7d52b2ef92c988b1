"""Make a miniature AudioSet of REAL recorded sound events: multi-label clips with captions.

    .venv/bin/python scripts/make_sound_events.py --out-dir data/sound_events     # make sound-events

Every sound comes from a recording installed by a Debian package (``make sound-events`` installs
them; licences in ``/usr/share/doc/PACKAGE/copyright``):

- sampled instruments, rendered note by note with fluidsynth (Debian) through pyfluidsynth (PyPI):
  ``fluidr3mono-gm-soundfont`` (FluidR3Mono) on the SEEN side, ``timgm6mb-soundfont`` (TimGM6mb:
  other recordings of the same General MIDI programs) on the HELD-OUT side;
- acoustic drum one-shots: ``hydrogen-drumkits`` (Hydrogen kits, read from their ``drumkit.xml``)
  and FluidR3Mono's drum kit SEEN, ``avldrums.lv2-soundfont`` (2 kits) and TimGM6mb's kit HELD OUT;
- real voices: ``asterisk-core-sounds-{en,es,fr,it,ru}-wav`` (4 speakers) SEEN,
  ``asterisk-prompt-it-menardi-wav``, ``asterisk-prompt-fr-armelle`` and ``asterisk-prompt-es-co``
  (3 other speakers; GSM decoded by ``sox``) HELD OUT.

15 classes (``CLASSES``): 9 instrument families (General MIDI's program groups), 5 drum pieces,
speech. A clip (``--clip-seconds``, 2 s) holds 1-3 events of different classes at random onsets,
gains, pitches and velocities over coloured background noise; its label line names their classes
(the plugin's multi-label format) and its caption (``{split}.text``) describes them in onset order
("A low cello note, then a woman speaking French, over pink noise."). The packages give no
transcripts of the prompts, so a caption names the speaker's language, not the words.

Splits by SOURCE, so held-out scores measure generalisation to recordings never heard in training
(two soundfonts of one sample family would leak: DESIGN.md): ``train`` (labelled, the AS-20K role)
and ``pool`` (unlabelled, the AS-2M role) from the SEEN sources; ``valid`` and ``test`` from the
HELD-OUT sources, with the held-out speakers' prompts split between them (no prompt in both);
``test_seen``: new clips of the SEEN sources, never trained on (test minus test_seen = what does not
transfer to new recordings).
Two information settings over the same clips, one split each (docs/data.md):
``pretrain.{tsv,label,text}`` = the pool with EMPTY label lines followed by train, as in
``data/demo_pool``: the *unlabelled pool* (semi-supervised; labels on 1 pretraining clip in 11);
``pretrain_labelled.{tsv,label,text}`` = the same clips with the pool's labels too: the *labelled
pool*, the paper's setting (AudioSet-2M carries weak labels on every clip). ``{split}.events.jsonl`` records every event placed (class, source, onset,
gain, pitch, file). Deterministic by ``--seed``: clip k of a split draws from a generator seeded
by (seed, split, k).
"""
from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
import zlib
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

from supmam_plugin.core.manifest import write_class_list, write_manifest
from make_demo_data import colored_noise  # the spoken-word data's background noise

SAMPLE_RATE = 16000
SPLIT_IDS = {"train": 0, "pool": 1, "valid": 2, "test": 3, "test_seen": 4}
SPLITS = ("train", "pool", "valid", "test", "test_seen")
SIDE = {"train": "seen", "pool": "seen", "valid": "held_out", "test": "held_out", "test_seen": "seen"}

# General MIDI program groups (programs 47 timpani and 52-55 choir/voices/orchestra hit left out:
# a drum and voices are other classes here) and the keys each family plays.
INSTRUMENTS = {
    "piano": (range(0, 8), (36, 84)), "chromatic_percussion": (range(8, 16), (60, 96)),
    "organ": (range(16, 24), (36, 84)), "guitar": (range(24, 32), (40, 76)),
    "bass": (range(32, 40), (28, 55)), "strings": ([*range(40, 47), *range(48, 52)], (40, 79)),
    "brass": (range(56, 64), (40, 76)), "reed": (range(64, 72), (45, 81)), "pipe": (range(72, 80), (60, 96)),
}
# General MIDI percussion keys (channel 10) and the words of Hydrogen's instrument names, per piece
DRUMS = {
    "kick_drum": ((35, 36), ("kick", "bassdrum", "bass drum")),
    "snare_drum": ((38, 40), ("snare",)),
    "hi_hat": ((42, 44, 46), ("hh", "hat")),
    "tom": ((41, 43, 45, 47, 48, 50), ("tom",)),
    "cymbal": ((49, 51, 52, 55, 57, 59), ("crash", "ride", "splash", "cymbal", "china")),
}
CLASSES = [*INSTRUMENTS, *DRUMS, "speech"]
DRUM_WORDS = {"kick_drum": "a kick drum", "snare_drum": "a snare drum hit", "hi_hat": "a hi-hat",
              "tom": "a tom hit", "cymbal": "a cymbal"}

SOUNDFONTS = "/usr/share/sounds"
HYDROGEN = "/usr/share/hydrogen/data/drumkits"
ASTERISK = "/usr/share/asterisk/sounds"
# Hydrogen kits left out: electronic (not recordings of acoustic drums), or the same kit as a
# held-out AVL one (The Black Pearl), or no piece of ours (hand percussion).
HYDROGEN_LEFT_OUT = {"ElectricEmpireKit", "HardElectro1", "The Black Pearl 1.0", "Gimme A Hand 1.0", "circAfrique v4"}


@dataclass(frozen=True)
class Speaker:
    folder: str  # under ASTERISK
    language: str
    gender: str  # "woman" / "man", for the caption
    package: str


SOURCES = {
    "seen": {
        "instruments": ("sf3/FluidR3Mono_GM.sf3", "fluidr3mono-gm-soundfont"),
        "drum_fonts": [("sf3/FluidR3Mono_GM.sf3", 128, "fluidr3mono-gm-soundfont")],
        "hydrogen": True,
        "speakers": [Speaker("en_US_f_Allison", "English", "woman", "asterisk-core-sounds-en-wav"),
                     Speaker("es_MX_f_Allison", "Spanish", "woman", "asterisk-core-sounds-es-wav"),
                     Speaker("fr_CA_f_June", "French", "woman", "asterisk-core-sounds-fr-wav"),
                     Speaker("it_IT_m_Carlo", "Italian", "man", "asterisk-core-sounds-it-wav"),
                     Speaker("ru_RU_f_IvrvoiceRU", "Russian", "woman", "asterisk-core-sounds-ru-wav")],
    },
    "held_out": {
        "instruments": ("sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
        "drum_fonts": [("sf2/TimGM6mb.sf2", 128, "timgm6mb-soundfont"),
                       ("sf2/Black_Pearl_4_LV2.sf2", 0, "avldrums.lv2-soundfont"),
                       ("sf2/Red_Zeppelin_4_LV2.sf2", 0, "avldrums.lv2-soundfont")],
        "hydrogen": False,
        "speakers": [Speaker("it_IT_f_Menardi", "Italian", "woman", "asterisk-prompt-it-menardi-wav"),
                     Speaker("fr", "French", "woman", "asterisk-prompt-fr-armelle"),
                     Speaker("es", "Spanish", "woman", "asterisk-prompt-es-co")],
    },
}
DEBIAN_PACKAGES = ["fluidsynth", "sox", "fluidr3mono-gm-soundfont", "timgm6mb-soundfont", "hydrogen-drumkits",
                   "avldrums.lv2-soundfont", *[f"asterisk-core-sounds-{x}-wav" for x in ("en", "es", "fr", "it", "ru")],
                   "asterisk-prompt-it-menardi-wav", "asterisk-prompt-fr-armelle", "asterisk-prompt-es-co"]
INSTALL_LINE = "apt-get install -y " + " ".join(DEBIAN_PACKAGES)

EVENTS_PER_CLIP = (1, 3)
EVENT_GAIN_DB = (-12.0, 0.0)  # relative to a peak of 0.5
NOTE_SECONDS = (0.25, 1.0)  # key held; the release tail follows
SPEECH_SECONDS = (0.6, 1.6)
MIN_SPEECH_SECONDS = 0.3
NOISE_DB = (-50.0, -30.0)  # RMS of the background, dBFS
NOISE_KINDS = ("white", "pink", "brown")


class MissingSource(SystemExit):
    pass


def require(path: str, package: str) -> str:
    if not os.path.exists(path):
        raise MissingSource(f"make_sound_events: {path} not found: install the Debian package {package} "
                            f"(all of them, as root: {INSTALL_LINE}; or `make sound-events`)")
    return path


BLOCK = 64  # fluidsynth renders in blocks of 64 samples


class Synth:
    """One fluidsynth synthesiser at 16 kHz without reverb or chorus: renders one note at a time."""

    def __init__(self):
        try:
            import fluidsynth
        except ImportError as e:  # pyfluidsynth missing, or libfluidsynth (Debian fluidsynth)
            raise MissingSource(f"make_sound_events: cannot import pyfluidsynth ({e}): `.venv/bin/pip install "
                                "--no-deps pyfluidsynth==1.4.0` and `apt-get install fluidsynth`") from e
        self.synth = fluidsynth.Synth(samplerate=float(SAMPLE_RATE), gain=0.5,
                                      **{"synth.reverb.active": 0, "synth.chorus.active": 0})
        # float output, not pyfluidsynth's get_samples: its 16-bit conversion adds dither from a
        # sequence that runs on across notes, so a note's samples would depend on the notes before it
        self.write_float = fluidsynth._fl.fluid_synth_write_float
        self.write_float.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                     ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self.fonts = {}

    def font(self, relative: str, package: str) -> int:
        if relative not in self.fonts:
            self.fonts[relative] = self.synth.sfload(require(os.path.join(SOUNDFONTS, relative), package))
        return self.fonts[relative]

    def preset_name(self, font: int, bank: int, program: int) -> str:
        return self.synth.sfpreset_name(font, bank, program) or ""

    def note(self, font: int, bank: int, program: int, key: int, velocity: int, seconds: float,
             channel: int = 0) -> np.ndarray:
        """The note held ``seconds`` then released (0.4 s of tail), (n,) float64, left channel."""
        self.synth.all_sounds_off(channel)
        self.synth.program_select(channel, font, bank, program)
        self.synth.noteon(channel, key, velocity)
        held = self.render(BLOCK * round(seconds * SAMPLE_RATE / BLOCK))
        self.synth.noteoff(channel, key)
        return np.concatenate([held, self.render(int(0.4 * SAMPLE_RATE))])

    def render(self, n: int) -> np.ndarray:
        """The next ``n`` samples of the left channel, (n,) float64. ``n``: a multiple of BLOCK, so that
        every note starts on a block of fluidsynth's (a note-on waits for the next block)."""
        left, right = (ctypes.c_float * n)(), (ctypes.c_float * n)()
        self.write_float(self.synth.synth, n, left, 0, 1, right, 0, 1)
        return np.frombuffer(left, dtype=np.float32).astype(np.float64)


def hydrogen_one_shots() -> dict[str, list[tuple[str, str]]]:
    """{drum class: [(kit, sample path)]} from the Hydrogen kits' drumkit.xml (instrument names
    matched to ``DRUMS``' words), every velocity layer a sample."""
    require(HYDROGEN, "hydrogen-drumkits")
    found = {name: [] for name in DRUMS}
    for kit in sorted(os.listdir(HYDROGEN)):
        xml = os.path.join(HYDROGEN, kit, "drumkit.xml")
        if kit in HYDROGEN_LEFT_OUT or not os.path.isfile(xml):
            continue
        for instrument in ElementTree.parse(xml).getroot().iter():
            if not instrument.tag.endswith("instrument") or instrument.find("{*}name") is None:
                continue
            name = (instrument.findtext("{*}name") or "").lower()
            piece = next((p for p in ("cymbal", "hi_hat", "kick_drum", "snare_drum", "tom")
                          if any(word in name for word in DRUMS[p][1])), None)
            files = [e.text for e in instrument.iter() if e.tag.endswith("filename") and e.text]
            if piece:
                found[piece] += [(kit, os.path.join(HYDROGEN, kit, f)) for f in files
                                 if os.path.isfile(os.path.join(HYDROGEN, kit, f))]
    return found


@functools.lru_cache(maxsize=None)
def read_recording(path: str) -> np.ndarray:
    """A recording as 16 kHz mono float64 with leading/trailing silence (-40 dB) trimmed; GSM via sox."""
    if path.endswith(".gsm"):
        with tempfile.TemporaryDirectory() as tmp:
            wav = os.path.join(tmp, "decoded.wav")
            subprocess.run(["sox", path, wav], check=True, capture_output=True)
            audio, rate = sf.read(wav, dtype="float64", always_2d=True)
    else:
        audio, rate = sf.read(path, dtype="float64", always_2d=True)
    audio = audio.mean(axis=1)
    if audio.size == 0 or not np.abs(audio).max() > 0:
        return np.zeros(0)  # a few prompts are empty files
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    loud = np.flatnonzero(np.abs(audio) > np.abs(audio).max() * 0.01)
    return audio[loud[0]:loud[-1] + 1] if loud.size else audio


def speech_prompts(speaker: Speaker) -> list[str]:
    folder = require(os.path.join(ASTERISK, speaker.folder), speaker.package)
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith((".wav", ".gsm")))


def prompt_half(path: str) -> str:
    """``valid`` or ``test``: which of the two held-out splits may use this prompt (by its name)."""
    return ("valid", "test")[zlib.crc32(os.path.basename(path).encode()) % 2]


class Sources:
    """The recordings of one side (``seen`` / ``held_out``), and the rendering of one event."""

    def __init__(self, side: str, synth: Synth):
        spec = SOURCES[side]
        self.synth = synth
        self.instrument_font = synth.font(*spec["instruments"])
        self.instrument_source = os.path.basename(spec["instruments"][0])
        self.drum_fonts = [(synth.font(path, package), bank, os.path.basename(path))
                           for path, bank, package in spec["drum_fonts"]]
        # {(font index, piece): the keys of the piece this kit has} (the AVL kits have no key 35, ...)
        self.drum_keys = {(i, piece): [k for k in keys if np.abs(synth.note(font, bank, 0, k, 100, 0.1, 9)).max() > 1e-4]
                          for i, (font, bank, _) in enumerate(self.drum_fonts) for piece, (keys, _) in DRUMS.items()}
        self.one_shots = hydrogen_one_shots() if spec["hydrogen"] else {name: [] for name in DRUMS}
        self.prompts = [(speaker, path) for speaker in spec["speakers"] for path in speech_prompts(speaker)]

    def event(self, name: str, split: str, rng: np.random.Generator) -> tuple[np.ndarray, dict, str]:
        """One event of class ``name``: (audio (n,) float64 peak 1, its record, its caption phrase)."""
        if name in INSTRUMENTS:
            programs, (low, high) = INSTRUMENTS[name]
            audio = np.zeros(1)
            while not np.abs(audio).max() > 1e-4:  # a soundfont may have no sample for a key (a tuba's high C)
                program, key = int(rng.choice(list(programs))), int(rng.integers(low, high + 1))
                velocity, seconds = int(rng.integers(50, 128)), float(rng.uniform(*NOTE_SECONDS))
                audio = self.synth.note(self.instrument_font, 0, program, key, velocity, seconds)
            preset = self.synth.preset_name(self.instrument_font, 0, program)
            record = {"source": self.instrument_source, "program": program, "preset": preset, "key": key,
                      "velocity": velocity}
            register = "low " if key < low + (high - low) / 3 else "high " if key > high - (high - low) / 3 else ""
            phrase = f"a {register}{spoken_name(preset)} note"
        elif name in DRUMS:
            choices = [("font", i) for i in range(len(self.drum_fonts)) if self.drum_keys[i, name]] + \
                [("hydrogen", i) for i in range(len(self.one_shots[name]))]
            kind, index = choices[int(rng.integers(len(choices)))]
            if kind == "font":
                font, bank, source = self.drum_fonts[index]
                key, velocity = int(rng.choice(self.drum_keys[index, name])), int(rng.integers(50, 128))
                audio = self.synth.note(font, bank, 0, key, velocity, 0.1, channel=9)
                record = {"source": source, "key": key, "velocity": velocity}
            else:
                kit, path = self.one_shots[name][index]
                audio = read_recording(path)
                record = {"source": f"hydrogen/{kit}", "file": os.path.relpath(path, HYDROGEN)}
            audio = audio[:int(1.5 * SAMPLE_RATE)]  # a cymbal rings for seconds
            phrase = DRUM_WORDS[name]
        else:
            usable = [p for p in self.prompts if SIDE[split] == "seen" or prompt_half(p[1]) == split]
            recording = np.zeros(0)
            while len(recording) < MIN_SPEECH_SECONDS * SAMPLE_RATE:  # skip empty or too short prompts
                speaker, path = usable[int(rng.integers(len(usable)))]
                recording = read_recording(path)
            length = min(len(recording), int(rng.uniform(*SPEECH_SECONDS) * SAMPLE_RATE))
            start = int(rng.integers(0, len(recording) - length + 1))
            audio = recording[start:start + length]
            record = {"source": f"asterisk/{speaker.folder}", "file": os.path.relpath(path, ASTERISK),
                      "start": start}
            phrase = f"a {speaker.gender} speaking {speaker.language}"
        peak = np.abs(audio).max()
        if peak == 0:
            raise RuntimeError(f"silent {name} event from {record}")
        return audio / peak, record, phrase


def spoken_name(preset: str) -> str:
    """A soundfont preset name as words: 'SoloTrumpet' -> 'solo trumpet', 'Yamaha Grand Piano' ->
    'yamaha grand piano' (numbers and punctuation dropped)."""
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", preset)
    return " ".join(re.sub(r"[^A-Za-z ]", " ", words).lower().split()) or "instrument"


def make_clip(sources: Sources, split: str, k: int, seed: int, num_samples: int):
    """Clip k of ``split``: (int16 samples (num_samples,), class names, caption, event records)."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], k])
    count = int(rng.integers(EVENTS_PER_CLIP[0], EVENTS_PER_CLIP[1] + 1))
    names = [CLASSES[i] for i in rng.choice(len(CLASSES), size=count, replace=False)]
    clip = np.zeros(num_samples)
    events = []
    for name in names:
        audio, record, phrase = sources.event(name, split, rng)
        gain_db = float(rng.uniform(*EVENT_GAIN_DB))
        onset = int(rng.integers(0, max(1, num_samples - int(0.25 * SAMPLE_RATE))))
        audio = audio[:num_samples - onset] * 0.5 * 10 ** (gain_db / 20)
        clip[onset:onset + len(audio)] += audio
        events.append({"class": name, "onset": round(onset / SAMPLE_RATE, 4), "gain_db": round(gain_db, 2),
                       "phrase": phrase, **record})
    noise_kind, noise_db = str(rng.choice(NOISE_KINDS)), float(rng.uniform(*NOISE_DB))
    clip += colored_noise(noise_kind, num_samples, rng) * 10 ** (noise_db / 20)
    clip *= min(1.0, 0.99 / np.abs(clip).max())
    events.sort(key=lambda e: e["onset"])
    caption = ", then ".join(e["phrase"] for e in events) + f", over {noise_kind} noise."
    caption = caption[0].upper() + caption[1:]
    return np.round(clip * 32767).astype(np.int16), names, caption, events


def make_split(out_dir: str, split: str, num_clips: int, sources: Sources, seed: int, num_samples: int) -> dict:
    """Write the clips of ``split`` (audio/{split}/NN/NNNNN.flac) and their records; returns
    {"entries", "labels", "captions"}."""
    entries, labels, captions = [], [], []
    start = time.time()
    with open(os.path.join(out_dir, f"{split}.events.jsonl"), "w", encoding="utf-8") as events_file:
        for k in range(num_clips):
            samples, names, caption, events = make_clip(sources, split, k, seed, num_samples)
            relative = os.path.join(split, f"{k // 1000:02d}", f"{k:05d}.flac")
            os.makedirs(os.path.join(out_dir, "audio", os.path.dirname(relative)), exist_ok=True)
            sf.write(os.path.join(out_dir, "audio", relative), samples, SAMPLE_RATE, subtype="PCM_16")
            entries.append((relative, num_samples))
            labels.append(sorted(names, key=CLASSES.index))
            captions.append(caption)
            events_file.write(json.dumps({"clip": relative, "labels": labels[-1], "caption": caption,
                                          "events": events}) + "\n")
            if (k + 1) % 1000 == 0 or k + 1 == num_clips:
                print(f"[sound-events] {split}: {k + 1}/{num_clips} clips ({time.time() - start:.0f} s)", flush=True)
    return {"entries": entries, "labels": labels, "captions": captions}


def write_split(out_dir: str, split: str, made: dict, labelled: bool = True) -> None:
    """``{split}.tsv`` (root ``audio``, relative to the folder), ``{split}.label`` (empty lines when
    not ``labelled``) and ``{split}.text`` (captions)."""
    labels = made["labels"] if labelled else [[] for _ in made["entries"]]
    tsv = write_manifest(out_dir, split, os.path.join(out_dir, "audio"), made["entries"], labels)
    with open(tsv, encoding="utf-8") as f:
        lines = f.read().splitlines()
    lines[0] = "audio"  # relative: the folder can move
    with open(tsv, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(out_dir, f"{split}.text"), "w", encoding="utf-8") as f:
        f.write("\n".join(made["captions"]) + "\n")


def package_versions() -> dict[str, str]:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Version}\\n", *DEBIAN_PACKAGES],
                            capture_output=True, text=True)
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def write_readme(out_dir: str, args, made: dict, seconds: float) -> None:
    versions = package_versions()
    counts = {split: {c: sum(c in ls for ls in m["labels"]) for c in CLASSES} for split, m in made.items()}
    lines = [
        "# Sound events: a miniature AudioSet of real recordings",
        "",
        f"Made by `scripts/make_sound_events.py --out-dir {args.out_dir} --seed {args.seed} --train {args.train} "
        f"--pool {args.pool} --valid {args.valid} --test {args.test} --test-seen {args.test_seen} --clip-seconds {args.clip_seconds}` "
        f"in {seconds:.0f} s. Generated, not shipped: the recordings' licences (GPL, CC-BY-SA, MIT) travel with them.",
        "",
        f"{len(CLASSES)} classes, multi-label (1-3 events per {args.clip_seconds:g}-s clip, 16 kHz mono FLAC): "
        + ", ".join(CLASSES) + ".",
        "",
        "| split | clips | role | sources |",
        "|---|---|---|---|",
        f"| train | {args.train} | labelled (AS-20K) | seen |",
        f"| pool | {args.pool} | pretraining (AS-2M): labelled only in `pretrain_labelled` | seen |",
        f"| valid | {args.valid} | held out, settings are chosen here | held out (half of the held-out prompts) |",
        f"| test | {args.test} | held out, scored once | held out (the other half of the prompts) |",
        f"| test_seen | {args.test_seen} | new clips of the training recordings: the gap to test is what does not "
        "transfer | seen |",
        "",
        "Two information settings over the same pretraining clips (the pool, then train):",
        "",
        "- *unlabelled pool* (semi-supervised): `pretrain.tsv` / `pretrain.label` / `pretrain.text`, the pool's "
        "label lines empty: labels on 1 pretraining clip in 11;",
        "- *labelled pool* (the paper's setting: AudioSet-2M is weakly labelled on every clip): "
        "`pretrain_labelled.tsv` / `.label` / `.text`, the pool's labels too.",
        "",
        "`{split}.text`: one caption per clip. `{split}.events.jsonl`: every event placed.",
        "",
        "## Sources (seen: train, pool; held out: valid, test)",
        "",
        "| side | instruments | drums | speech |",
        "|---|---|---|---|",
    ]
    for side, spec in SOURCES.items():
        drums = [os.path.basename(p) for p, _, _ in spec["drum_fonts"]]
        if spec["hydrogen"]:
            drums.append("Hydrogen kits except " + ", ".join(sorted(HYDROGEN_LEFT_OUT)))
        speech = [f"{s.folder} ({s.language}, {s.gender})" for s in spec["speakers"]]
        lines.append(f"| {side} | {os.path.basename(spec['instruments'][0])} | {'; '.join(drums)} | {'; '.join(speech)} |")
    lines += ["", "## Debian packages and licences", "",
              "Each package's licence is in `/usr/share/doc/PACKAGE/copyright`.", "",
              "| package | version |", "|---|---|"]
    lines += [f"| {p} | {versions.get(p, 'not installed')} |" for p in DEBIAN_PACKAGES]
    lines += ["", "## Clips per class", "", "| class | " + " | ".join(made) + " |",
              "|---|" + "---|" * len(made)]
    lines += [f"| {c} | " + " | ".join(str(counts[s][c]) for s in made) + " |" for c in CLASSES]
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", help="folder to (re)create")
    parser.add_argument("--debian-packages", action="store_true",
                        help="print the Debian packages the sources come from (for apt-get install) and exit")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random draw")
    parser.add_argument("--train", type=int, default=1000, help="labelled training clips (seen sources)")
    parser.add_argument("--pool", type=int, default=10000, help="unlabelled pretraining clips (seen sources)")
    parser.add_argument("--valid", type=int, default=500, help="validation clips (held-out sources)")
    parser.add_argument("--test", type=int, default=500, help="test clips (held-out sources)")
    parser.add_argument("--test-seen", type=int, default=500,
                        help="clips of the SEEN sources not trained on (test_seen): which classes transfer to new "
                             "recordings is the gap between test_seen and test")
    parser.add_argument("--clip-seconds", type=float, default=2.0, help="length of every clip")
    args = parser.parse_args(argv)
    if args.debian_packages:
        print(" ".join(DEBIAN_PACKAGES))
        return 0
    if not args.out_dir:
        parser.error("--out-dir is required")
    start = time.time()
    out_dir = os.path.abspath(args.out_dir)
    num_samples = int(round(args.clip_seconds * SAMPLE_RATE))
    if shutil.which("sox") is None:
        raise MissingSource(f"make_sound_events: sox not found (it decodes the GSM prompts): {INSTALL_LINE}")
    synth = Synth()
    sides = {side: Sources(side, synth) for side in SOURCES}
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    made = {split: make_split(out_dir, split, getattr(args, split), sides[SIDE[split]], args.seed, num_samples)
            for split in SPLITS}
    for split in ("train", "valid", "test", "test_seen"):
        write_split(out_dir, split, made[split])
    write_split(out_dir, "pool", made["pool"], labelled=False)
    pretrain = {key: made["pool"][key] + made["train"][key] for key in ("entries", "captions")}
    pretrain["labels"] = [[] for _ in made["pool"]["entries"]] + made["train"]["labels"]
    write_split(out_dir, "pretrain", pretrain)  # the unlabelled pool
    pretrain["labels"] = made["pool"]["labels"] + made["train"]["labels"]
    write_split(out_dir, "pretrain_labelled", pretrain)  # the labelled pool (the paper's AS-2M)
    write_class_list(out_dir, CLASSES, counts={c: sum(c in ls for ls in made["train"]["labels"]) for c in CLASSES})
    write_readme(out_dir, args, made, time.time() - start)
    print(f"[sound-events] {sum(len(m['entries']) for m in made.values())} clips in {out_dir} "
          f"({time.time() - start:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
