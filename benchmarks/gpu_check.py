"""One-shot check of a GPU machine (issue 26, item 4): what the plugin's training steps reach there,
in one JSON file, in under 8 minutes.

    bash benchmarks/gpu_check.sh                        # on a GPU machine: writes gpu_check.json
    bash benchmarks/gpu_check.sh results/h200.json      # or --out results/h200.json
    bash benchmarks/gpu_check.sh --cpu-tiny out.json    # the same code on the CPU, tiny model, < 1 min
    python -m benchmarks.gpu_check --device cpu --size tiny --out out.json   # = --cpu-tiny, no time limit

Sections (each in its own try: a failure is kept as {"error": ...} and the rest still runs; the
JSON is rewritten after every section, so a run cut short keeps what it measured):

  machine    GPU name and memory, torch / CUDA / cuDNN versions, CPU count and model.
  peak       the device's dense bf16 peak from a table keyed by the device name (vendor data sheets,
             no sparsity), beside a measured bf16 matmul peak (square matmuls, best of a few).
  steps      bf16 training steps (``torch.autocast(bfloat16)`` around forward and loss; weights,
             gradients and AdamW state stay float32; a CLAP teacher runs in its own precision,
             float16 weights on a GPU) of the real SupmamModel + SupmamCriterion + AdamW for the four
             pretraining variants (CLAP targets from the teacher's cached native map; supmam_clap
             also with the random HTS-AT teacher online) and of fine-tuning (SupmamClassifier +
             supmam_classification, the as2m recipe's model settings), each at the largest
             power-of-two batch that fits: doubling from a small batch, catching out-of-memory
             errors, capped (512 on a GPU). Step time, clips/s, analytic FLOPs (benchmarks.flops)
             and MFU against the table peak (the measured one where the table has no entry, as on
             a CPU), peak memory (torch.cuda.max_memory_allocated; peak RSS on a CPU).
  attention  which attention kernels ran: the SDPA backends torch allows, and the attention ops and
             GPU kernels a torch.profiler trace of one supmam step shows.
  compile    torch.compile on vs off for one variant (supmam), in a subprocess with a timeout (a
             compile that fails or hangs is recorded, not fatal): compile time (first compiled step
             minus an eager one), eager and compiled step times, graph breaks.
  loader     clips/s of the supmam_pretraining task's dataset (10 s FLAC at 16 kHz written to a
             temporary folder) through a torch DataLoader with N workers (1, 4, 8, 16, capped by
             the CPU count), against the clips/s each measured step consumes.
  fbank      fbank on the device (what the model does with a waveform batch,
             task.fbank_in_dataloader=false) against fbank in the loader's workers
             (task.fbank_in_dataloader=true): clips/s of each.

Time (GPU): the batch search stops doubling once half of --budget-s (420 s) is spent; the compile
subprocess gets what is left but 90 s for the loader and fbank; bash's wrapper kills the run at
470 s. A summary table goes to stdout, progress lines to stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from types import SimpleNamespace

import torch

from . import common, flops, pretraining_step
from .common import SAMPLE_RATE

START = time.monotonic()
DTYPE = "bf16"  # common.autocast: torch.autocast(bfloat16) around forward and loss
PRECISION = ("torch.autocast(bfloat16) around forward and loss (not a model cast): weights, gradients and "
             "AdamW state float32, fbank float32; a CLAP teacher in its own precision (float16 weights on a GPU)")
NUM_CLASSES = 527  # AudioSet, as the recipes' classification branch and the as2m fine-tuning
FINETUNE_RECIPE = "as2m"
COMPILE_MARK = "GPU_CHECK_COMPILE_RESULT "  # prefix of the compile subprocess's result line

# (variant, teacher modes): one model each, stepped once per mode; None = the fine-tuning classifier.
# The JSON names a config as pretraining_step.Config does: "supmam", "supmam_clap (online)", "finetune".
CONFIGS = [
    ("audiomae", [None]),
    ("mam_clap", ["cached"]),
    ("supmam", [None]),
    ("supmam_clap", ["cached", "online"]),
    (None, [None]),
]

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, keyed by a
# part of torch.cuda.get_device_name(); the longest matching key wins ("H200 NVL" before "H200").
BF16_PEAK_TFLOPS = {
    "B200": 2250.0,
    "H200 NVL": 835.0,
    "H200": 989.0,
    "GH200": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
}

# Settings of a GPU run (sized so the whole script stays under 8 minutes on an H200) and of a CPU
# run (tiny model, a few clips: the same code path in well under a minute).
GPU_SETTINGS = dict(size="vitb", start_batch=8, max_batch=512, try_steps=2, warmup=3, steps=10, pool=8,
                    peak_size=8192, peak_reps=10, files=256, loader_batch=32, loader_clips=1024,
                    loader_seconds=6.0, fbank_batch=256, fbank_reps=5, profile_batch=8,
                    compile_backend="inductor", compile_timeout=240.0, after_compile_s=90.0, budget_s=420.0)
CPU_SETTINGS = dict(size="tiny", start_batch=1, max_batch=2, try_steps=1, warmup=1, steps=2, pool=2,
                    peak_size=256, peak_reps=3, files=4, loader_batch=2, loader_clips=8,
                    loader_seconds=5.0, fbank_batch=2, fbank_reps=2, profile_batch=1,
                    # inductor's C++ kernels for even the tiny model took 106 s to build on one thread
                    # here: on the CPU the check runs dynamo + AOT autograd without code generation
                    compile_backend="aot_eager", compile_timeout=120.0, after_compile_s=30.0, budget_s=240.0)


def log(message: str) -> None:
    print(f"[gpu_check {time.monotonic() - START:6.1f}s] {message}", file=sys.stderr, flush=True)


def time_left(s) -> float:
    return s.budget_s - (time.monotonic() - START)


def release(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("out of memory" in text or "ALLOC_FAILED" in text)


# ----------------------------------------------------------------------------- machine and peak

def machine_section(s, device) -> dict:
    info = {
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": common.cpu_model(),
        "torch_threads": torch.get_num_threads(), "load_average": common.load_average(), "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu_name=props.name, gpu_memory_bytes=props.total_memory,
                    gpu_capability=f"{props.major}.{props.minor}", gpu_multiprocessors=props.multi_processor_count,
                    gpu_count=torch.cuda.device_count())
    else:
        info.update(gpu_name=None, gpu_memory_bytes=None)
    return info


def table_peak(device) -> tuple[str | None, float | None]:
    if device.type != "cuda":
        return None, None
    name = torch.cuda.get_device_name(device).upper()
    for key in sorted(BF16_PEAK_TFLOPS, key=len, reverse=True):
        if key.upper() in name:
            return key, BF16_PEAK_TFLOPS[key]
    return None, None


def peak_section(s, device) -> dict:
    key, table = table_peak(device)
    measured = common.matmul_peak(device, s.peak_size, reps=s.peak_reps, dtype=torch.bfloat16) / 1e3
    return {"table_key": key, "table_tflops": table, "measured_tflops": measured,
            "measured_how": f"bf16 {s.peak_size}^3 matmul, best of {s.peak_reps}",
            "mfu_against": "table" if table else "measured", "peak_tflops": table or measured}


# ----------------------------------------------------------------------------- models and batches

def pool_sample(s, device, with_teacher_audio: bool = False, token_map=None) -> dict:
    """pretraining_step's batch of s.pool real-looking 10 s clips, multi-hot labels (and the teacher's
    audio or cached map), its waveforms float64 as the task's batches carry them."""
    pool = pretraining_step.make_sample(s.pool, NUM_CLASSES, device, with_teacher_audio, token_map)
    pool["net_input"]["source"] = pool["net_input"]["source"].double()
    return pool


def tile_sample(pool: dict, batch: int) -> dict:
    """The pool's clips repeated up to ``batch`` clips: writing 512 distinct 10 s clips would take
    longer than the benchmark. Clip ids stay distinct, so every clip gets its own mask."""
    some = pool["net_input"]["source"]
    repeats = math.ceil(batch / some.size(0))

    def tile(t):
        return t.repeat(repeats, *[1] * (t.dim() - 1))[:batch]

    net_input = {k: tile(v) for k, v in pool["net_input"].items()}
    net_input["clip_ids"] = torch.arange(batch, device=some.device)
    return {"id": torch.arange(batch), "nsentences": batch, "ntokens": int(net_input["source"].numel()),
            "net_input": net_input, "target": tile(pool["target"])}


def finetune_flops(cfg, batch: int, num_samples: int, num_classes: int) -> dict:
    """The classifier's step by flops.step_flops: the encoder on the patches structured masking keeps
    ((T - rows) x (F - columns), passed as the equivalent mask ratio), no decoder, a linear head."""
    grid_t, grid_f = cfg.input_frames // cfg.patch_size, cfg.num_mel_bins // cfg.patch_size
    kept = (grid_t - round(grid_t * cfg.time_mask_ratio)) * (grid_f - round(grid_f * cfg.freq_mask_ratio))
    shape = SimpleNamespace(
        patch_size=cfg.patch_size, input_frames=cfg.input_frames, num_mel_bins=cfg.num_mel_bins,
        encoder_embed_dim=cfg.encoder_embed_dim, mlp_ratio=cfg.mlp_ratio, encoder_layers=cfg.encoder_layers,
        cls_token=cfg.cls_token, mask_ratio=1.0 - kept / (grid_t * grid_f), cls_branch=False,
        decoder_embed_dim=0, decoder_layers=0, decoder_window_time=1, decoder_window_freq=1)
    parts = flops.step_flops(shape, batch, num_samples, num_classes, target_dim=0)
    for decoder_part in ("decoder embed", "decoder linear", "decoder attention", "head"):
        parts.pop(decoder_part)
    forward = 2.0 * batch * cfg.encoder_embed_dim * num_classes
    parts["linear head"] = (forward, 2 * forward)
    return parts


def build_finetune(s, device):
    """SupmamClassifier (random encoder) with the as2m recipe's model settings (structured masking,
    SpecAugment, mixup, drop path) at the run's size, its criterion and its config."""
    from omegaconf import OmegaConf

    from supmam_plugin.recipes.compose import compose_recipe
    from supmam_plugin.criterions.classification_loss import SupmamClassificationConfig, SupmamClassificationCriterion
    from supmam_plugin.models.classifier import SupmamClassifier, SupmamClassifierConfig

    recipe = OmegaConf.to_container(compose_recipe("finetuning", FINETUNE_RECIPE), resolve=False)
    settings = {k: v for k, v in recipe["model"].items() if k != "_name"}
    settings.update(pretrained="", num_classes=NUM_CLASSES, input_frames=int(recipe["task"]["target_frames"]))
    known = {f.name for f in dataclasses.fields(SupmamClassifierConfig)}
    settings.update({k: v for k, v in common.SIZES[s.size].items() if k in known})  # the encoder's sizes
    cfg = OmegaConf.structured(SupmamClassifierConfig(**settings))
    model = SupmamClassifier(cfg, num_classes=NUM_CLASSES).to(device).train()
    criterion = SupmamClassificationCriterion(SupmamClassificationConfig(), task=None)
    return model, criterion, cfg


def build_configs(variant: str | None, modes: list, s, device) -> list:
    """pretraining_step.Config objects (one model, one per teacher mode), each with a pool sample of
    ``s.pool`` clips in ``.pool`` (``tile_sample`` makes the batches of it)."""
    if variant is None:
        model, criterion, cfg = build_finetune(s, device)
    else:
        model, criterion, cfg, _ = common.build_variant(variant, s.size, NUM_CLASSES)
        model.to(device).train()
        if cfg.target == "teacher":
            model.teacher.follow(device)  # as the model does on its first batch: float16 on a GPU
    optimizer = pretraining_step.make_optimizer("torch", model)
    configs = []
    for mode in modes:
        token_map = pretraining_step.cached_token_map(model, s.pool) if mode == "cached" else None
        pool = pool_sample(s, device, with_teacher_audio=(mode == "online"), token_map=token_map)
        config = pretraining_step.Config(variant or "finetune", s.size, mode, model, criterion, cfg, optimizer, None)
        config.pool = pool
        configs.append(config)
    return configs


def step_flops_of(config, batch: int) -> dict:
    num_samples = config.pool["net_input"]["source"].size(1)
    if config.variant == "finetune":
        return finetune_flops(config.cfg, batch, num_samples, NUM_CLASSES)
    teacher = 0.0
    if config.teacher_mode == "online":  # HTS-AT counted on one clip (FlopCounterMode), times the batch
        teacher = batch * flops.teacher_forward_flops(config.model.teacher,
                                                      config.pool["net_input"]["teacher_source"][:1])
    target_dim = config.model.head[0].out_features
    return flops.step_flops(config.cfg, batch, num_samples, NUM_CLASSES, target_dim, teacher)


# ----------------------------------------------------------------------------- steps

def unless_out_of_memory(config, device, run):
    """run()'s value, or None when it ran out of memory (then the config's batch, its gradients and
    the allocator's cache are freed, so the next try starts clean). Other errors propagate."""
    try:
        return run()
    except Exception as error:  # noqa: BLE001  (only out-of-memory is caught)
        if not is_out_of_memory(error):
            raise
    # outside the except block: the traceback, and the tensors its frames hold, are gone
    config.sample = None
    config.optimizer.zero_grad(set_to_none=True)
    release(device)
    return None


def try_batch(config, batch: int, device, steps: int) -> bool:
    """``steps`` training steps at ``batch`` clips: True if they ran, False if out of memory."""

    def run():
        config.sample = tile_sample(config.pool, batch)
        for _ in range(steps):
            pretraining_step.train_step(config, device, DTYPE)
        common.sync(device)
        return True

    return bool(unless_out_of_memory(config, device, run))


def largest_batch(config, s, device, deadline: float) -> tuple[int, list]:
    """The largest power-of-two batch from s.start_batch up to s.max_batch whose steps fit (halving
    below s.start_batch if that one does not); stops doubling at ``deadline`` (time.monotonic)."""
    tries, fits, batch = [], 0, s.start_batch
    while batch <= s.max_batch:
        if fits and time.monotonic() > deadline:
            tries.append({"batch": batch, "skipped": "time budget"})
            break
        began = time.perf_counter()
        ok = try_batch(config, batch, device, s.try_steps)
        tries.append({"batch": batch, "fits": ok, "seconds": time.perf_counter() - began})
        log(f"  {config.name}: batch {batch} {'fits' if ok else 'out of memory'}")
        if not ok:
            break
        fits, batch = batch, batch * 2
    batch = s.start_batch // 2
    while not fits and batch >= 1:
        ok = try_batch(config, batch, device, s.try_steps)
        tries.append({"batch": batch, "fits": ok})
        fits = batch if ok else 0
        batch //= 2
    if not fits:
        raise RuntimeError("not even a batch of 1 fits")
    return fits, tries


def batch_search_out_of_memory_above(s, device, limit: int) -> dict:
    """--oom-above: the batch search's out-of-memory path where none happens (the CPU). The search of
    s.compile_variant's config from s.start_batch up to s.max_batch, a step on more than ``limit``
    clips raising CUDA's out-of-memory error: the batch it keeps, its tries, and whether the model's
    gradients and the config's batch are let go at the end (a failed try must leave neither)."""
    modes = next(modes for variant, modes in CONFIGS if variant == s.compile_variant)
    (config,) = build_configs(s.compile_variant, modes[:1], s, device)
    real_step = pretraining_step.train_step

    def step(config, device, dtype):
        if len(config.sample["id"]) > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        real_step(config, device, dtype)

    pretraining_step.train_step = step
    try:
        batch, tries = largest_batch(config, s, device, deadline=float("inf"))
    finally:
        pretraining_step.train_step = real_step
    return {"batch": batch, "tries": tries, "sample_released": config.sample is None,
            "gradients_released": all(p.grad is None for p in config.model.parameters())}


def measure(config, batch: int, s, device, peak_tflops: float, measured_tflops: float) -> dict:
    config.sample = tile_sample(config.pool, batch)
    for _ in range(s.warmup):
        pretraining_step.train_step(config, device, DTYPE)
    with common.PeakMemory(device) as memory:
        times = [common.timed(lambda: pretraining_step.train_step(config, device, DTYPE), device)
                 for _ in range(s.steps)]
    stats = common.summary(times)
    parts = step_flops_of(config, batch)
    step_flops = flops.totals(parts)["step"]
    achieved = step_flops / stats["median"] / 1e12
    return {
        "batch": batch, "seconds_per_step": stats, "clips_per_s": batch / stats["median"],
        "step_tflop": step_flops / 1e12, "achieved_tflops": achieved,
        "mfu": achieved / peak_tflops, "mfu_vs_measured_peak": achieved / measured_tflops,
        "peak_memory_bytes": memory.peak,
        "peak_memory_kind": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS (VmHWM)",
        "flop_parts": {k: list(v) for k, v in parts.items()},
        "parameters": common.count_parameters(config.model),
    }


def steps_section(s, device, results: dict) -> dict:
    peak = results.get("peak", {})
    measured = peak.get("measured_tflops") or common.matmul_peak(device, s.peak_size, dtype=torch.bfloat16) / 1e3
    peak_tflops = peak.get("peak_tflops") or measured
    # the batch search stops doubling once half the budget is spent: the later sections need the rest
    deadline = START + 0.5 * s.budget_s
    out = {"precision": PRECISION, "max_batch": s.max_batch, "configs": {}}
    for variant, modes in CONFIGS:
        try:
            log(f"steps: building {variant or 'finetune'} ({s.size})")
            configs = build_configs(variant, modes, s, device)
        except Exception as error:  # noqa: BLE001
            out["configs"][variant or "finetune"] = error_record(error)
            continue
        for config in configs:
            name = config.name
            try:
                batch, tries = largest_batch(config, s, device, deadline)
                result = None
                while result is None:  # the found batch may still run out while timing (fragmentation)
                    result = unless_out_of_memory(
                        config, device, lambda: measure(config, batch, s, device, peak_tflops, measured))
                    if result is None:
                        if batch == 1:
                            raise RuntimeError("out of memory at batch 1 while timing")
                        tries.append({"batch": batch, "fits": False, "while": "timing"})
                        batch //= 2
                result.update(variant=variant or "finetune", teacher=config.teacher_mode, batch_search=tries)
                out["configs"][name] = result
                log(f"steps: {name} batch {batch}: {result['seconds_per_step']['median']:.4f} s/step, "
                    f"MFU {result['mfu']:.3f}")
            except Exception as error:  # noqa: BLE001
                out["configs"][name] = error_record(error)
                log(f"steps: {name} failed: {error}")
            config.sample = None
        config = configs = None  # frees the model before the next one is built
        release(device)
    return out


# ----------------------------------------------------------------------------- attention kernels

ATTENTION_OPS = {  # aten op (as the profiler names it) -> the SDPA backend it is
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash (cpu)",
    "aten::_scaled_dot_product_efficient_attention": "mem_efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_attention_math": "math",
}
KERNEL_WORDS = ("flash", "fmha", "efficient", "cudnn", "attention", "sdpa")


def attention_section(s, device) -> dict:
    backends = {}
    for flag in ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "cudnn_sdp_enabled", "math_sdp_enabled"):
        if hasattr(torch.backends.cuda, flag):
            backends[flag] = bool(getattr(torch.backends.cuda, flag)())
    (config,) = build_configs("supmam", [None], s, device)
    config.sample = tile_sample(config.pool, s.profile_batch)
    pretraining_step.train_step(config, device, DTYPE)  # warm: first-call set-up stays out of the trace
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profiler:
        pretraining_step.train_step(config, device, DTYPE)
        common.sync(device)
    averages = profiler.key_averages()
    ops = {e.key: e.count for e in averages
           if e.key.startswith("aten::") and ("attention" in e.key or "scaled_dot" in e.key)}
    # GPU kernels (none on a CPU): their names say flash / fmha (mem-efficient) / cudnn
    kernels = sorted({e.key[:160] for e in averages if e.device_type == torch.autograd.DeviceType.CUDA
                      and any(word in e.key.lower() for word in KERNEL_WORDS)})
    kinds = sorted({ATTENTION_OPS[k] for k in ops if k in ATTENTION_OPS})
    return {"profiled": f"supmam ({s.size}), batch {s.profile_batch}, one bf16 training step",
            "sdp_backends_enabled": backends, "attention_ops": ops, "attention_kernels": kernels,
            "kernel_kinds": kinds}


# ----------------------------------------------------------------------------- loader and fbank

def data_folder(s, state: dict) -> str:
    """s.files 10 s FLAC clips at 16 kHz with labels and a manifest, written once per run."""
    if "data" not in state:
        from . import fbank  # the fbank benchmark writes the clips and the manifest

        began = time.perf_counter()
        state["data"] = fbank.write_files(os.path.join(state["root"], "flac16"), s.files, SAMPLE_RATE, "FLAC",
                                          labels=True)
        state["write_s"] = time.perf_counter() - began
        log(f"wrote {s.files} FLAC files in {state['write_s']:.1f} s")
    return state["data"]


def worker_counts(s) -> list[int]:
    usable = len(os.sched_getaffinity(0))
    return sorted({min(n, usable) for n in s.workers})


def loader_clips_per_s(data: str, workers: int, s, fbank_in_dataloader: bool) -> dict:
    """The supmam_pretraining task's train dataset (labels, as SupMAM reads them) through a torch
    DataLoader with ``workers`` processes, s.loader_clips clips drawn at random (the files over
    again once all are read: the page cache serves them, as it would a warm AudioSet shard), at
    most s.loader_seconds. clips/s over the whole run (worker start-up included) and steady
    (after the first batch)."""
    from fairseq import tasks
    from omegaconf import OmegaConf

    import supmam_plugin  # noqa: F401  registers the task

    cfg = OmegaConf.create({"_name": "supmam_pretraining", "data": data, "seed": 1, "labels": "label",
                            "multi_label": True, "fbank_in_dataloader": fbank_in_dataloader})
    dataset = tasks.setup_task(cfg).load_dataset("train")
    sampler = torch.utils.data.RandomSampler(dataset, num_samples=s.loader_clips)
    loader = torch.utils.data.DataLoader(dataset, batch_size=s.loader_batch, sampler=sampler, num_workers=workers,
                                         collate_fn=dataset.collater)
    clips = after_first = 0
    first = None
    start = time.perf_counter()
    iterator = iter(loader)
    for batch in iterator:
        clips += len(batch["id"])
        if first is None:
            first = time.perf_counter()
        else:
            after_first += len(batch["id"])
        if time.perf_counter() - start > s.loader_seconds:
            break
    end = time.perf_counter()
    del iterator, loader  # stops the workers
    return {"workers": workers, "fbank_in_dataloader": fbank_in_dataloader, "clips": clips,
            "seconds": end - start, "clips_per_s": clips / (end - start), "first_batch_s": first - start,
            "steady_clips_per_s": after_first / (end - first) if after_first else None}


def loader_section(s, state: dict, results: dict) -> dict:
    data = data_folder(s, state)
    runs = []
    for workers in worker_counts(s):
        runs.append(loader_clips_per_s(data, workers, s, fbank_in_dataloader=False))
        log(f"loader: {workers} workers {runs[-1]['clips_per_s']:.1f} clips/s")
    # what each measured step consumes, and whether the loader keeps up with it: a training run keeps
    # its workers for an epoch, so the loader's rate is the steady one (after the first batch)
    rates = {r["workers"]: r["steady_clips_per_s"] or r["clips_per_s"] for r in runs}
    best = max(rates.values())
    one_worker = rates.get(1)
    consumption = {}
    for name, step in results.get("steps", {}).get("configs", {}).items():
        if "clips_per_s" in step:
            needed = math.ceil(step["clips_per_s"] / one_worker) if one_worker else None
            consumption[name] = {"step_clips_per_s": step["clips_per_s"], "loader_keeps_up": best >= step["clips_per_s"],
                                 "workers_needed_at_one_worker_rate": needed}
    return {"files": s.files, "format": "FLAC 16 kHz mono, 10 s", "write_s": state.get("write_s"),
            "batch": s.loader_batch, "runs": runs, "best_steady_clips_per_s": best, "against_steps": consumption}


def fbank_section(s, device, state: dict, results: dict) -> dict:
    from supmam_plugin.core.fbank import FbankSettings, model_input_fbank
    from supmam_plugin.core.vit import VitEncoderConfig

    # on the device: the model's own call on a waveform batch (fbank_in_dataloader=false)
    batch = tile_sample(pool_sample(s, device), s.fbank_batch)["net_input"]
    frames = VitEncoderConfig().input_frames

    def on_device():
        return model_input_fbank(batch["source"], batch["source_lengths"], None, frames, FbankSettings())

    on_device()
    times = [common.timed(on_device, device) for _ in range(s.fbank_reps)]
    device_row = {"batch": s.fbank_batch, "seconds": common.summary(times),
                  "clips_per_s": s.fbank_batch / statistics.median(times)}
    log(f"fbank: on {device.type} {device_row['clips_per_s']:.1f} clips/s")
    # in the loader's workers (fbank_in_dataloader=true), beside the same loader without it
    data = data_folder(s, state)
    plain = {r["workers"]: r for r in results.get("loader", {}).get("runs", [])}
    rows = []
    for workers in sorted({1, max(worker_counts(s))}):
        row = loader_clips_per_s(data, workers, s, fbank_in_dataloader=True)
        without = plain.get(workers) or loader_clips_per_s(data, workers, s, fbank_in_dataloader=False)
        row["clips_per_s_without_fbank"] = without["clips_per_s"]
        rows.append(row)
        log(f"fbank: in the loader, {workers} workers {row['clips_per_s']:.1f} clips/s "
            f"(without: {without['clips_per_s']:.1f})")
    return {"on_device": device_row, "in_loader": rows,
            "device_over_best_loader": device_row["clips_per_s"] / max(r["clips_per_s"] for r in rows)}


# ----------------------------------------------------------------------------- torch.compile

def compile_probe(s, device, variant: str, batch: int) -> dict:
    """(In the subprocess.) Eager steps, then torch.compile(model): the first compiled step (which
    compiles forward and backward) and timed compiled steps, at the same batch."""
    (config,) = build_configs(variant, [None], s, device)
    config.sample = tile_sample(config.pool, batch)
    for _ in range(s.warmup):
        pretraining_step.train_step(config, device, DTYPE)
    eager = [common.timed(lambda: pretraining_step.train_step(config, device, DTYPE), device) for _ in range(s.steps)]
    log(f"compile: eager {statistics.median(eager):.4f} s/step; compiling ({s.compile_backend})")
    config.model = torch.compile(config.model, backend=s.compile_backend)
    first = common.timed(lambda: pretraining_step.train_step(config, device, DTYPE), device)
    for _ in range(s.warmup):
        pretraining_step.train_step(config, device, DTYPE)
    compiled = [common.timed(lambda: pretraining_step.train_step(config, device, DTYPE), device)
                for _ in range(s.steps)]
    from torch._dynamo.utils import counters  # where dynamo counts the graph breaks, by reason

    breaks = counters["graph_break"]
    return {"variant": variant, "size": s.size, "batch": batch, "backend": s.compile_backend,
            "first_compiled_step_s": first, "compile_s": first - statistics.median(eager),
            "eager_step_s": common.summary(eager), "compiled_step_s": common.summary(compiled),
            "speedup": statistics.median(eager) / statistics.median(compiled),
            "graph_breaks": sum(breaks.values()), "graph_break_reasons": [r[:200] for r in list(breaks)[:5]]}


def compile_section(s, device, results: dict) -> dict:
    # half the largest batch that fit: headroom for this process's CUDA context and the compiled
    # graph's own memory plan
    measured = results.get("steps", {}).get("configs", {}).get(s.compile_variant, {})
    batch = max(1, measured.get("batch", s.start_batch) // 2)
    timeout = min(s.compile_timeout, time_left(s) - s.after_compile_s)  # the loader and fbank run after it
    if timeout < 20:
        return {"skipped": f"time budget ({time_left(s):.0f} s left)"}
    release(device)  # the child needs the GPU memory this process cached
    command = common.module_command(__spec__.name, [
        "--compile-probe", "--device", str(device), "--size", s.size, "--compile-variant", s.compile_variant,
        "--batch", str(batch), "--compile-backend", s.compile_backend, "--warmup", str(s.warmup),
        "--steps", str(s.steps)])
    # its own session, so that on a timeout the compiler's worker processes go with it
    child = subprocess.Popen(command, cwd=common.REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return {"error": f"timed out after {timeout:.0f} s", "batch": batch, "backend": s.compile_backend}
    lines = [line for line in stdout.splitlines() if line.startswith(COMPILE_MARK)]
    if not lines:
        return {"error": f"the compile subprocess exited {child.returncode} without a result", "batch": batch}
    return json.loads(lines[-1][len(COMPILE_MARK):])


# ----------------------------------------------------------------------------- running it all

def error_record(error: BaseException) -> dict:
    return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-2000:]}


def write_json(path: str, results: dict) -> None:
    results["wall_s"] = time.monotonic() - START
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=1, default=str)
    os.replace(path + ".tmp", path)


def print_summary(results: dict) -> None:
    peak = results.get("peak", {})
    machine = results.get("machine", {})
    print(f"gpu_check: {machine.get('gpu_name') or machine.get('cpu_model')} | torch {machine.get('torch')} "
          f"cuda {machine.get('cuda')} | {machine.get('cpu_count')} CPUs | bf16 peak "
          f"{peak.get('table_tflops') or '-'} TFLOP/s (table), {peak.get('measured_tflops', float('nan')):.3g} measured")
    print(f"{'config':24s} {'batch':>5s} {'s/step':>8s} {'clips/s':>9s} {'TFLOP/s':>8s} {'MFU':>6s} {'peak GB':>8s}")
    for name, r in results.get("steps", {}).get("configs", {}).items():
        if "error" in r:
            print(f"{name:24s} error: {r['error'][:80]}")
            continue
        print(f"{name:24s} {r['batch']:5d} {r['seconds_per_step']['median']:8.4f} {r['clips_per_s']:9.1f} "
              f"{r['achieved_tflops']:8.2f} {r['mfu']:6.3f} {r['peak_memory_bytes'] / 2**30:8.2f}")
    for r in results.get("loader", {}).get("runs", []):
        print(f"loader {r['workers']:2d} workers: {r['clips_per_s']:9.1f} clips/s")
    fb = results.get("fbank", {})
    if "on_device" in fb:
        print(f"fbank on the device: {fb['on_device']['clips_per_s']:9.1f} clips/s; in the loader: "
              + ", ".join(f"{r['workers']} workers {r['clips_per_s']:.1f}" for r in fb["in_loader"]))
    comp = results.get("compile", {})
    if "speedup" in comp:
        print(f"torch.compile ({comp['backend']}, {comp['variant']}, batch {comp['batch']}): compile "
              f"{comp['compile_s']:.1f} s, step {comp['eager_step_s']['median']:.4f} -> "
              f"{comp['compiled_step_s']['median']:.4f} s ({comp['speedup']:.2f}x)")
    att = results.get("attention", {})
    if "kernel_kinds" in att:
        print(f"attention: {', '.join(att['kernel_kinds']) or 'no SDPA op seen'}")
    for section, value in results.items():
        if isinstance(value, dict) and "error" in value:
            print(f"section {section}: {value['error'][:120]}")


def settings_from(args):
    """The run's settings: GPU_SETTINGS on a GPU, CPU_SETTINGS on the CPU; options given win."""
    base = dict(GPU_SETTINGS if args.device.startswith("cuda") else CPU_SETTINGS)
    for key in base:
        value = getattr(args, key, None)
        if value is not None:
            base[key] = value
    base.update(device=args.device, workers=args.workers, compile_variant=args.compile_variant)
    return SimpleNamespace(**base)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_path", nargs="?", default=None, help="the JSON file (default gpu_check.json)")
    parser.add_argument("--out", default=None, help="the JSON file (same as the positional argument)")
    parser.add_argument("--cpu-tiny", action="store_true", help="= --device cpu --size tiny: the CPU check")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--size", default=None, choices=list(common.SIZES), help="vitb (GPU default) or tiny")
    parser.add_argument("--max-batch", type=int, default=None, help="cap of the batch search (GPU: 512)")
    parser.add_argument("--start-batch", type=int, default=None, help="first batch of the search (GPU: 8)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per config (GPU: 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (GPU: 3)")
    parser.add_argument("--files", type=int, default=None, help="FLAC files for the loader (GPU: 256)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8, 16],
                        help="loader worker counts (each capped by the CPU count)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds the run aims to stay within (GPU: 420); the batch search and compile shrink")
    parser.add_argument("--compile-backend", default=None, help="torch.compile backend (GPU: inductor)")
    parser.add_argument("--compile-variant", default="supmam", help="the config timed with torch.compile")
    parser.add_argument("--skip", nargs="*", default=[], help="sections to skip")
    parser.add_argument("--oom-above", type=int, default=None, metavar="N",
                        help="check the batch search's out-of-memory path on a machine that has none: only the "
                             "search of --compile-variant's config, a batch above N clips failing as out of memory, "
                             "printed as JSON")
    parser.add_argument("--compile-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cpu_tiny:
        args.device, args.size = "cpu", args.size or "tiny"
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    s = settings_from(args)
    device = common.setup(SimpleNamespace(threads=0, device=s.device))
    torch.manual_seed(0)
    if args.compile_probe:  # the child of compile_section: one JSON line on stdout
        try:
            result = compile_probe(s, device, s.compile_variant, args.batch)
        except Exception as error:  # noqa: BLE001
            result = error_record(error)
        print(COMPILE_MARK + json.dumps(result, default=str), flush=True)
        return 0
    if args.oom_above is not None:
        print(json.dumps(batch_search_out_of_memory_above(s, device, args.oom_above)), flush=True)
        return 0

    out_path = args.out or args.out_path or "gpu_check.json"
    results = {"settings": {**vars(s), "dtype": DTYPE, "precision": PRECISION}}
    state = {"root": tempfile.mkdtemp(prefix="gpu_check_")}
    sections = [
        ("machine", lambda: machine_section(s, device)),
        ("peak", lambda: peak_section(s, device)),
        ("steps", lambda: steps_section(s, device, results)),
        ("attention", lambda: attention_section(s, device)),
        ("compile", lambda: compile_section(s, device, results)),
        ("loader", lambda: loader_section(s, state, results)),
        ("fbank", lambda: fbank_section(s, device, state, results)),
    ]
    try:
        for name, run in sections:
            if name in args.skip:
                results[name] = {"skipped": "--skip"}
                continue
            log(f"section {name}")
            try:
                results[name] = run()
            except Exception as error:  # noqa: BLE001  (recorded; the next section still runs)
                results[name] = error_record(error)
                log(f"section {name} failed: {error}")
            release(device)
            write_json(out_path, results)
    finally:
        shutil.rmtree(state["root"], ignore_errors=True)
    results["errors"] = sorted(name for name, value in results.items() if isinstance(value, dict) and "error" in value)
    write_json(out_path, results)
    print_summary(results)
    log(f"wrote {out_path} ({results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
