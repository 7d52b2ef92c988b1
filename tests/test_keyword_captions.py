"""Captions from labels (LAION-CLAP's keyword-to-caption in miniature): every caption names exactly
the clip's classes, once each, in varied orders; the caption dataset mixes them in at the share asked,
for labelled clips only, and leaves the captions of a split without labels as they were."""
import re

import numpy as np
import pytest

from supmam_plugin.core.keyword_captions import TEMPLATES, clip_rng, keyword_captions

# the classes of make sound-events (scripts/make_sound_events.py CLASSES)
CLASSES = ["piano", "chromatic_percussion", "organ", "guitar", "bass", "strings", "brass", "reed", "pipe",
           "kick_drum", "snare_drum", "hi_hat", "tom", "cymbal", "speech"]


def named(caption: str) -> list[str]:
    """The classes a caption names, as often as it names them (whole words)."""
    text = caption.lower()
    return sorted(c for c in CLASSES for _ in re.finditer(r"\b" + c.replace("_", " ") + r"\b", text))


@pytest.mark.parametrize("labels", [["speech"], ["kick_drum", "bass"], ["hi_hat", "chromatic_percussion", "tom"]])
def test_keyword_captions_name_exactly_the_clips_labels(labels):
    orders = set()
    for index in range(40):
        captions = keyword_captions(labels, len(TEMPLATES), clip_rng(1, index))
        assert len(captions) == len(TEMPLATES)
        for caption in captions:
            assert named(caption) == sorted(labels), caption
            assert "_" not in caption and caption[0].isupper() and caption.endswith(".")
            orders.add(tuple(sorted(labels, key=lambda c: caption.lower().index(c.replace("_", " ")))))
        # every template once among a clip's len(TEMPLATES) captions (the bare one, "{}.", matches any: last)
        used = {next(t for t in TEMPLATES if re.fullmatch(re.escape(t).replace(r"\{\}", ".+"), c, re.IGNORECASE))
                for c in captions}
        assert used == set(TEMPLATES)
    assert len(orders) == min(6, np.prod(range(1, len(labels) + 1)))  # every order of the labels turns up


def test_no_label_no_keyword_caption_and_the_same_seed_the_same_captions():
    assert keyword_captions([], 3, clip_rng(1, 0)) == []
    assert keyword_captions(["piano", "organ"], 3, clip_rng(2, 7)) == keyword_captions(["piano", "organ"], 3, clip_rng(2, 7))


def test_caption_dataset_mixes_keyword_captions_at_the_share_for_labelled_clips_only(tone_dataset, tmp_path):
    """CaptionDataset over real clips: over many epochs a labelled clip takes a caption made from its
    labels in about ``keyword_share`` of its draws, a clip with an empty label line never, and without
    ``keywords`` the draws are the captions alone."""
    from fairseq import tasks
    from omegaconf import OmegaConf

    from supmam_plugin.core.captions import train_tokenizer, CaptionTokenizer
    from supmam_plugin.data.caption_dataset import CaptionDataset

    task = tasks.setup_task(OmegaConf.create({"_name": "supmam_pretraining", "data": tone_dataset, "labels": None}))
    clips = task.load_dataset("train")
    captions = [(f"a steady tone number {i}",) for i in range(len(clips))]
    spm = train_tokenizer([c[0] for c in captions] + ["Low. The sound of low. A recording of low. Low can be heard. High."],
                          str(tmp_path / "t.model"), vocab_size=50)
    tokenizer = CaptionTokenizer(spm)
    keywords = [["low"] if i % 2 else [] for i in range(len(clips))]
    mixed = CaptionDataset(clips, captions, tokenizer, 32, draw_caption=True, seed=3, keywords=keywords, keyword_share=0.3)
    plain = CaptionDataset(clips, captions, tokenizer, 32, draw_caption=True, seed=3)
    own = [tokenizer.encode(c[0], 32) for c in captions]
    taken = {True: [], False: []}
    for epoch in range(1, 201):
        mixed.set_epoch(epoch)
        plain.set_epoch(epoch)
        for index in range(len(clips)):
            assert plain.caption_tokens(index) == own[index]
            tokens = mixed.caption_tokens(index)
            taken[bool(keywords[index])].append(tokens != own[index])
            if tokens != own[index]:  # made from the label "low"
                text = tokenizer.decode(tokens).lower()
                assert "low" in text and "high" not in text and "tone" not in text, text
    assert not any(taken[False])
    share = np.mean(taken[True])
    assert 0.25 < share < 0.35, share  # 1,200 draws: 0.3 +- 0.04 at 3 sigma



def test_captions_from_labels_name_exactly_each_clips_labels():
    """A folder with labels and no captions (AudioSet): one caption per template per clip, each naming
    every label of the clip once and nothing else; the same for a seed, others for another seed."""
    from supmam_plugin.core.keyword_captions import captions_from_labels

    labels = [["kick_drum", "speech"], [], ["piano"], ["hi_hat", "tom", "organ"]]
    made = captions_from_labels(labels, seed=3)
    assert [len(c) for c in made] == [len(TEMPLATES), 0, len(TEMPLATES), len(TEMPLATES)]
    for names, captions in zip(labels, made):
        assert all(named(caption) == sorted(names) for caption in captions)
    assert made == captions_from_labels(labels, seed=3) and made != captions_from_labels(labels, seed=4)
