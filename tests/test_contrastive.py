"""CLAP's contrastive loss (core.contrastive) and the retrieval scores (core.retrieval),
against laion_clap's own ClipLoss, a hand computation, two worker processes and direct loops."""
import importlib
import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from supmam_plugin.core.contrastive import MAX_LOGIT_SCALE, contrastive_loss_sum
from supmam_plugin.core.retrieval import audio_text_retrieval


def embeddings(batch=6, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (F.normalize(torch.randn(batch, dim, generator=g), dim=-1),
            F.normalize(torch.randn(batch, dim, generator=g), dim=-1))


def test_the_loss_is_laion_clap_cliploss_times_the_batch():
    from supmam_plugin.teachers.laion_clap import import_htsat

    import_htsat()  # registers laion_clap without running its __init__ (a tokenizer download)
    ClipLoss = importlib.import_module("laion_clap.clap_module.loss").ClipLoss
    audio, text = embeddings()
    for log_scale in (0.0, math.log(1 / 0.07), 3.0):
        reference = ClipLoss()(audio, text, torch.tensor(log_scale).exp())
        ours = contrastive_loss_sum(audio, text, torch.tensor(log_scale)) / audio.size(0)
        torch.testing.assert_close(ours, reference)


def test_the_loss_by_hand_on_two_pairs_and_the_clamp():
    audio = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    # similarities: a0.t0 = 0.6, a0.t1 = 0, a1.t0 = 0.8, a1.t1 = 1; scale 1
    a2t = -math.log(math.exp(0.6) / (math.exp(0.6) + 1)) - math.log(math.e / (math.exp(0.8) + math.e))
    t2a = -math.log(math.exp(0.6) / (math.exp(0.6) + math.exp(0.8))) - math.log(math.e / (1 + math.e))
    torch.testing.assert_close(contrastive_loss_sum(audio, text, torch.tensor(0.0)), torch.tensor((a2t + t2a) / 2))
    torch.testing.assert_close(contrastive_loss_sum(audio, text, torch.tensor(9.0)),
                               contrastive_loss_sum(audio, text, torch.tensor(MAX_LOGIT_SCALE)))


def _worker(rank, world, init_file, batch, result_file):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    audio_in, text_in = embeddings(batch * world, seed=1)
    towers, scale = _towers()
    local = slice(rank * batch, (rank + 1) * batch)
    loss = contrastive_loss_sum(F.normalize(towers[0](audio_in[local]), dim=-1),
                                F.normalize(towers[1](text_in[local]), dim=-1), scale)
    loss.backward()
    grads = [p.grad for p in [*towers.parameters(), scale]]
    for g in [loss.detach(), *grads]:
        dist.all_reduce(g)  # what fairseq's trainer does: sum over workers (then / total sample size)
    if rank == 0:
        torch.save({"loss": loss.detach(), "grads": grads}, result_file)
    dist.barrier()  # leave together: a rank tearing gloo down while the other still talks aborts (seen under load)
    dist.destroy_process_group()


def _towers():
    torch.manual_seed(0)
    return torch.nn.ModuleList([torch.nn.Linear(8, 4), torch.nn.Linear(8, 4)]), torch.nn.Parameter(torch.tensor(2.0))


def test_two_workers_give_the_loss_and_gradients_of_one_with_both_batches(tmp_path):
    batch, world = 3, 2
    torch.multiprocessing.spawn(_worker, args=(world, str(tmp_path / "init"), batch, str(tmp_path / "r.pt")),
                                nprocs=world, join=True)
    distributed = torch.load(str(tmp_path / "r.pt"), weights_only=True)
    audio_in, text_in = embeddings(batch * world, seed=1)
    towers, scale = _towers()
    loss = contrastive_loss_sum(F.normalize(towers[0](audio_in), dim=-1), F.normalize(towers[1](text_in), dim=-1), scale)
    loss.backward()
    torch.testing.assert_close(distributed["loss"], loss.detach())
    for ours, reference in zip(distributed["grads"], [p.grad for p in [*towers.parameters(), scale]]):
        torch.testing.assert_close(ours, reference)


def _direct_scores(similarity, captions):
    """Retrieval scores by plain loops over the captions as strings (the reference)."""
    strings = sorted({t for clip in captions for t in clip})
    out = {}
    for prefix, queries in (("a2t_", range(len(captions))), ("t2a_", strings)):
        recalls, aps = {1: [], 5: [], 10: []}, []
        for q in queries:
            if prefix == "a2t_":
                scores = {s: similarity[q][s] for s in strings}
                relevant = set(captions[q])
            else:
                scores = {i: similarity[i][q] for i in range(len(captions))}
                relevant = {i for i, clip in enumerate(captions) if q in clip}
            ranking = sorted(scores, key=lambda c: -scores[c])
            for k in recalls:
                recalls[k].append(any(c in relevant for c in ranking[:k]))
            found, total = 0, 0.0
            for position, c in enumerate(ranking[:10], start=1):
                if c in relevant:
                    found += 1
                    total += found / position
            aps.append(total / min(len(relevant), 10))
        out.update({f"{prefix}R{k}": 100 * np.mean(v) for k, v in recalls.items()})
        out[f"{prefix}mAP10"] = 100 * np.mean(aps)
    return out


def test_retrieval_scores_match_direct_loops_with_shared_captions():
    rng = np.random.default_rng(0)
    words = ["a dog barks", "rain falls", "a car passes", "a bell rings", "wind blows", "a door shuts"]
    captions = [tuple(rng.choice(words, size=rng.integers(1, 3), replace=False)) for _ in range(14)]
    captions[3] = captions[5] = ("a dog barks",)  # the same caption string on several clips
    audio = rng.normal(size=(14, 5))
    text_by_string = {w: rng.normal(size=5) for w in words}
    ours = audio_text_retrieval(audio, text_by_string, captions)
    similarity = [{w: float(audio[i] @ text_by_string[w]) for w in words} for i in range(14)]
    reference = _direct_scores(similarity, captions)
    assert ours.keys() == reference.keys()
    for key in ours:
        assert ours[key] == pytest.approx(reference[key]), key
    assert ours["a2t_R10"] == 100.0  # fewer than 10 distinct captions: every clip finds one


def test_perfect_embeddings_score_100_everywhere():
    captions = [("one",), ("two",), ("three", "three again")]
    audio = np.eye(4)[:3]
    text = {"one": np.eye(4)[0], "two": np.eye(4)[1], "three": np.eye(4)[2], "three again": np.eye(4)[2] * 0.9}
    assert set(audio_text_retrieval(audio, text, captions).values()) == {100.0}
