"""Training-step throughput, FLOPs and utilisation of the four pretraining variants.

For each variant (settings read from examples/supmam/pretraining/{variant}.yaml) and size (vitb:
12 x 768 as the recipes; tiny: 2 x 192, decoder 128 wide) it builds the real SupmamModel,
SupmamCriterion and torch.optim.AdamW, a batch of B real-looking 10 s waveforms (16 kHz; plus,
for the CLAP targets, the teacher's cached native map (B, 768, 2, 32) float16 and/or the 48 kHz
audio for the online teacher) and times whole steps: criterion(model, sample) (fbank, encoder,
decoder, head, teacher, loss), backward, AdamW step, zero_grad.

The machine may be shared: every configuration of a size is stepped in turn, round after round
(round-robin; in each visit only the last of --steps-per-visit steps is timed, the ones before
re-warm that model's memory as in a real run), with fresh matmul-peak measurements at the
start of each round, so ratios
(utilisation, teacher share, supmam_clap / supmam) compare steps taken under the same load.
Two peaks: the burst (best single 2048^3 product, a fraction of a second, at the start of each
round) and the sustained rate (products back to back for --peak-seconds, measured just before and
just after each timed visit: a step keeps the cores busy for seconds, and boost clocks and a
shared host make the burst higher and drift). Utilisation is reported three ways: best step /
best burst, the median over rounds of (step GFLOP/s / that round's burst) and of (step GFLOP/s /
the mean of the sustained rates around that step). The optimizer is the recipes' (supmam_adamw,
torch_fused=true) unless --optimizers says otherwise.

    python -m benchmarks.pretraining_step                         # CPU: B=2, vitb and tiny
    python -m benchmarks.pretraining_step --sizes tiny --steps 10
    python -m benchmarks.pretraining_step --device cuda --dtype bf16 --batch 32
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import time

import torch

from . import common, flops
from .common import CLIP_SECONDS, SAMPLE_RATE, TEACHER_RATE, VARIANTS


def make_sample(batch: int, num_classes: int, device, with_teacher_audio: bool, token_map=None, seed: int = 0):
    source = common.synthetic_batch(batch, CLIP_SECONDS, SAMPLE_RATE, seed)
    net_input = {
        "source": source.to(device),
        "source_lengths": torch.full((batch,), source.size(1), dtype=torch.long, device=device),
        "clip_ids": torch.arange(batch, device=device),
    }
    if with_teacher_audio:
        net_input["teacher_source"] = common.synthetic_batch(batch, CLIP_SECONDS, TEACHER_RATE, seed).to(device)
    if token_map is not None:
        net_input["teacher_token_map"] = token_map.to(device)
    target = torch.zeros(batch, num_classes, device=device)  # AudioSet-like multi-hot labels
    for i in range(batch):
        target[i, (7 * i) % num_classes] = 1.0
        target[i, (7 * i + 100) % num_classes] = 1.0
    return {"id": torch.arange(batch), "nsentences": batch, "ntokens": int(source.numel()),
            "net_input": net_input, "target": target}


def cached_token_map(model, batch: int, seed: int = 0) -> torch.Tensor:
    """What a teacher cache holds for the batch: the (random) teacher's native map, float16."""
    audio = common.synthetic_batch(batch, CLIP_SECONDS, TEACHER_RATE, seed)
    return model.teacher.token_map(audio).to(torch.float16)


class Config:
    """One thing to time: a variant at a size, with the teacher online or cached (CLAP targets)."""

    def __init__(self, variant, size, teacher_mode, model, criterion, cfg, optimizer, sample):
        self.variant, self.size, self.teacher_mode = variant, size, teacher_mode
        self.model, self.criterion, self.cfg, self.optimizer, self.sample = model, criterion, cfg, optimizer, sample
        self.times, self.round_peaks, self.round_sustained, self.mem_peak, self.mem_added = [], [], [], 0, 0
        self.flop_parts = None
        self.suffix = ""

    @property
    def name(self):
        return self.variant + (f" ({self.teacher_mode})" if self.teacher_mode else "") + self.suffix


def train_step(config: Config, device, dtype: str):
    with common.autocast(device, dtype):
        loss, sample_size, _ = config.criterion(config.model, config.sample)
    loss.backward()
    config.optimizer.step()
    config.optimizer.zero_grad()  # torch: set_to_none by default; fairseq: takes no argument


OPTIMIZERS = {
    "torch": "torch.optim.AdamW (default implementation)",
    "torch-fused": "torch.optim.AdamW(fused=True)",
    "fairseq": "fairseq's optimizer=adam (decoupled weight decay)",
    "supmam_adamw": "the recipes' optimizer (fairseq's adam with AudioMAE's decay groups), torch_fused=false",
    "supmam_adamw-fused": "the same with optimizer.torch_fused=true (torch.optim.AdamW(fused=True), the same groups)",
}


def make_optimizer(name: str, model):
    params = [p for p in model.parameters() if p.requires_grad]
    if name == "torch":
        return torch.optim.AdamW(params, lr=2e-4, betas=(0.9, 0.95), weight_decay=0.05)
    if name == "torch-fused":
        return torch.optim.AdamW(params, lr=2e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=True)
    if name == "fairseq":
        from fairseq.optim.adam import Adam

        return Adam(params, lr=2e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.05)
    if name in ("supmam_adamw", "supmam_adamw-fused"):  # the recipes' optimizer, AudioMAE's decay groups
        from fairseq.optim import build_optimizer
        from omegaconf import OmegaConf

        import supmam_plugin  # noqa: F401 (registers it)

        cfg = OmegaConf.create({"_name": "supmam_adamw", "lr": [2e-4], "adam_betas": "(0.9,0.95)", "adam_eps": 1e-8,
                                "weight_decay": 0.05, "decay_tokens": True, "use_old_adam": False,
                                "fp16_adam_stats": False, "tpu": False, "torch_fused": name.endswith("-fused")})
        return build_optimizer(cfg, params)
    raise ValueError(name)


def build_configs(size, args, device):
    configs = []
    for variant in args.variants:
        base, criterion, cfg, lambda_cls = common.build_variant(variant, size, args.num_classes)
        base.to(device).train()
        if cfg.target == "teacher":
            # the model moves its (out-of-tree) teacher to the input's device on first use (and halves
            # it on a GPU): do that now, so that cached maps and FLOP counts come from there
            base.teacher.follow(device)
        token_map = None
        for opt_index, opt_name in enumerate(args.optimizers):
            # one model (and optimizer state) per optimizer implementation
            model = base if opt_index == 0 else copy.deepcopy(base)
            optimizer = make_optimizer(opt_name, model)
            suffix = "" if opt_index == 0 else f" [{opt_name}]"
            if cfg.target == "teacher":
                modes = ["cached", "online"] if args.teacher == "both" else [args.teacher]
                if token_map is None and "cached" in modes:
                    token_map = cached_token_map(model, args.batch)
                for mode in modes:
                    sample = make_sample(args.batch, args.num_classes, device, with_teacher_audio=(mode == "online"),
                                         token_map=token_map if mode == "cached" else None)
                    c = Config(variant, size, mode, model, criterion, cfg, optimizer, sample)
                    c.suffix = suffix
                    configs.append(c)
            else:
                sample = make_sample(args.batch, args.num_classes, device, with_teacher_audio=False)
                c = Config(variant, size, None, model, criterion, cfg, optimizer, sample)
                c.suffix = suffix
                configs.append(c)
    return configs


def count_flops(config: Config, args, device, teacher_flops_cache: dict) -> dict:
    """Analytic FLOPs of the step, and FlopCounterMode's count of one forward (and one forward +
    backward) for the cross-check. Returns a dict of numbers."""
    model, cfg = config.model, config.cfg
    target_dim = model.head[0].out_features
    teacher_forward = 0.0
    if config.teacher_mode == "online":
        key = (config.size, cfg.teacher)
        if key not in teacher_flops_cache:
            teacher_flops_cache[key] = flops.teacher_forward_flops(model.teacher, config.sample["net_input"]["teacher_source"])
        teacher_forward = teacher_flops_cache[key]
    num_samples = config.sample["net_input"]["source"].size(1)
    parts = flops.step_flops(cfg, args.batch, num_samples, args.num_classes, target_dim, teacher_forward)
    config.flop_parts = parts
    total = flops.totals(parts)
    counter = flops.flop_counter()
    with counter:
        with common.autocast(device, args.dtype):
            loss, _, _ = config.criterion(model, config.sample)
    counted_forward = float(counter.get_total_flops())
    by_op_forward = flops.counted_by_op(counter)
    counter_bwd = flops.flop_counter()
    with counter_bwd:
        loss.backward()
    counted_backward = float(counter_bwd.get_total_flops())
    config.optimizer.zero_grad()  # torch: set_to_none by default; fairseq: takes no argument
    plain = flops.flop_counter(with_cpu_sdpa=False)
    with plain:
        with torch.no_grad(), common.autocast(device, args.dtype):
            config.criterion(model, config.sample)
    return {"analytic": total, "counted_forward": counted_forward, "counted_backward": counted_backward,
            "counted_forward_without_cpu_sdpa_formula": float(plain.get_total_flops()),
            "counted_by_op_forward": by_op_forward}


def single_config(variant: str, size: str, teacher: str, batch: int, num_classes: int, optimizer_name: str,
                  device) -> Config:
    """One configuration on its own (a fresh process, a profile): ``teacher`` "cached" / "online" is
    where a variant with CLAP targets gets them (its ``teacher_mode``); other variants ignore it."""
    model, criterion, cfg, _ = common.build_variant(variant, size, num_classes)
    model.to(device).train()
    mode = teacher if cfg.target == "teacher" else None
    token_map = cached_token_map(model, batch) if mode == "cached" else None
    sample = make_sample(batch, num_classes, device, with_teacher_audio=(mode == "online"), token_map=token_map)
    return Config(variant, size, mode, model, criterion, cfg, make_optimizer(optimizer_name, model), sample)


def memory_probe(args) -> None:
    """--probe-memory VARIANT:SIZE:MODE: a fresh process builds the config, takes 2 steps and
    prints its peak RSS (CPU) as JSON on the last line."""
    device = common.setup(args)
    variant, size, mode = args.probe_memory.split(":")
    config = single_config(variant, size, mode, args.batch, args.num_classes, args.optimizers[0], device)
    rss_before = common.rss_bytes()
    common.reset_peak_rss()
    for _ in range(2):
        train_step(config, device, args.dtype)
    peak = common.peak_rss_bytes()
    print(json.dumps({"rss_before_steps": rss_before, "peak_rss": peak,
                      "state_bytes": common.training_state_bytes(config.model, config.optimizer)}))


def probe_memory_in_subprocess(config: Config, args) -> dict | None:
    mode = config.teacher_mode or "none"
    options = ["--probe-memory", f"{config.variant}:{config.size}:{mode}", "--batch", str(args.batch),
               "--num-classes", str(args.num_classes), "--device", "cpu", "--dtype", args.dtype,
               "--threads", str(torch.get_num_threads()), "--optimizers", args.optimizers[0],
               "--host-memory", args.host_memory]
    result = common.run_module(__spec__.name, options, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return None


def print_size(size, configs) -> None:
    """The size's configurations (their model settings) and their parameter counts."""
    print(f"\n=== size {size}: " + ", ".join(
        f"{c.name} [{c.cfg.encoder_layers}x{c.cfg.encoder_embed_dim}, mask {c.cfg.mask_ratio}, "
        f"decoder {c.cfg.decoder_layers}x{c.cfg.decoder_embed_dim}, target {c.cfg.target}, "
        f"cls {'on' if c.cfg.cls_branch else 'off'}]" for c in configs if c.teacher_mode != "online" and not c.suffix), flush=True)
    for c in configs:
        if c.teacher_mode != "online" and not c.suffix:
            print(f"  {c.variant}: {common.count_parameters(c.model) / 1e6:.1f} M trainable parameters")


def step_rounds(size, configs, args, device) -> tuple[list, list]:
    """Every configuration stepped in turn, round after round (warm-up rounds first); each timed step
    goes to its config with that round's burst peak and the sustained rate around it. Returns the
    timed rounds' burst peaks and sustained rates."""
    warmup = args.warmup if args.warmup is not None else (1 if size == "vitb" and device.type == "cpu" else 3)
    steps = args.steps if args.steps is not None else (5 if size == "vitb" and device.type == "cpu" else 10)
    peaks, sustained_peaks = [], []

    def sustained_rate() -> float:
        if args.peak_seconds <= 0:
            return float("nan")
        return common.matmul_sustained(device, args.peak_size, args.peak_seconds, common.peak_dtype(args.dtype))

    for round_index in range(warmup + steps):
        peak = common.matmul_peak(device, args.peak_size, reps=args.peak_reps, dtype=common.peak_dtype(args.dtype))
        timed_round = round_index >= warmup
        if timed_round:
            peaks.append(peak)
        round_times = {}
        # each visit is bracketed by sustained measurements (the one after a visit is the next one's
        # before): a shared host's capacity drifts within a round, so each step is compared with the
        # mean of the two taken just around it
        before = sustained_rate()
        for c in configs:
            for _ in range(args.steps_per_visit - 1):  # re-warm this model's memory after the others ran
                train_step(c, device, args.dtype)
            with common.PeakMemory(device) as memory:
                seconds = common.timed(lambda: train_step(c, device, args.dtype), device)
            round_times[c.name] = seconds
            after = sustained_rate()
            sustained = (before + after) / 2
            before = after
            if timed_round:
                c.times.append(seconds)
                c.round_peaks.append(peak)
                c.round_sustained.append(sustained)
                sustained_peaks.append(sustained)
                if device.type == "cuda":
                    c.mem_peak = max(c.mem_peak, memory.peak)
                    c.mem_added = max(c.mem_added, memory.added)
        label = "timed" if timed_round else "warm-up"
        print(f"  round {round_index + 1}/{warmup + steps} ({label}): peak {peak:.1f} GFLOP/s | " + " | ".join(
            f"{c.name} {round_times[c.name]:.3f}s" for c in configs), flush=True)
    return peaks, sustained_peaks


def probe_memory(configs, args) -> None:
    """CPU: each configuration's peak RSS, from a fresh process of its own (--probe-memory)."""
    for c in configs:
        if c.suffix:
            continue  # the probe builds the default optimizer
        probe = probe_memory_in_subprocess(c, args)
        if probe:
            c.mem_peak = probe["peak_rss"]
            c.mem_added = probe["peak_rss"] - probe["rss_before_steps"]
            c.state_bytes = probe["state_bytes"]


def config_results(c: Config, size, args, flop_info: dict, best_peak: float) -> dict:
    """A configuration's figures: step times, clips/s, GFLOP/s and the three utilisations."""
    stats = common.summary(c.times)
    step_flops = flop_info[c.name]["analytic"]["step"]
    achieved_best = step_flops / stats["best"] / 1e9
    per_round = [step_flops / t / 1e9 / p for t, p in zip(c.times, c.round_peaks)]
    return {
        "variant": c.variant, "teacher": c.teacher_mode, "size": size, "batch": args.batch,
        "seconds_per_step": stats, "clips_per_s": args.batch / stats["median"],
        "clips_per_s_best": args.batch / stats["best"],
        "step_gflop": step_flops / 1e9, "gflops_best": achieved_best, "gflops_median": step_flops / stats["median"] / 1e9,
        "util_best_over_best_peak": achieved_best / best_peak, "util_median_per_round": statistics.median(per_round),
        "util_median_per_round_sustained": statistics.median(
            [step_flops / t / 1e9 / p for t, p in zip(c.times, c.round_sustained)]),
        "peak_mem_bytes": c.mem_peak, "step_added_mem_bytes": c.mem_added,
        "flops": {k: v for k, v in flop_info[c.name].items()},
        "flop_parts": {k: list(v) for k, v in c.flop_parts.items()},
        "times": c.times, "round_peaks": c.round_peaks, "round_sustained": c.round_sustained,
    }


def print_results(size, configs, results: dict, args, device, peaks, sustained_peaks) -> None:
    print(f"\n--- size {size}, batch {args.batch}, {args.dtype}, device {device}, "
          f"{args.dtype} matmul peak ({args.peak_size}^3) best {max(peaks):.1f} GFLOP/s "
          f"(median {statistics.median(peaks):.1f}), sustained over {args.peak_seconds:g} s median "
          f"{statistics.median(sustained_peaks):.1f} ---")
    header = (f"{'config':36s} {'s/step med':>10s} {'s/step best':>11s} {'clips/s':>8s} {'GFLOP/step':>10s} "
              f"{'GFLOP/s':>8s} {'%peak best':>10s} {'%peak med':>9s} {'%sust med':>9s} {'peak mem MB':>11s} "
              f"{'+step MB':>9s}")
    print(header)
    for c in configs:
        r = results[c.name]
        stats = r["seconds_per_step"]
        print(f"{c.name:36s} {stats['median']:10.3f} {stats['best']:11.3f} {r['clips_per_s']:8.2f} "
              f"{r['step_gflop']:10.1f} {r['gflops_best']:8.1f} {100 * r['util_best_over_best_peak']:9.1f}% "
              f"{100 * r['util_median_per_round']:8.1f}% {100 * r['util_median_per_round_sustained']:8.1f}% "
              f"{c.mem_peak / 2**20:11.0f} {c.mem_added / 2**20:9.0f}")


def print_flops(configs, flop_info: dict) -> None:
    """FLOPs per step (analytic; forward / backward) and the FlopCounterMode cross-check."""
    print("\nFLOPs per step (analytic; forward / backward, GFLOP) and the FlopCounterMode cross-check:")
    for c in configs:
        info = flop_info[c.name]
        analytic = info["analytic"]
        teacher = c.flop_parts.get("teacher (frozen, forward)", (0.0, 0.0))[0]
        student_forward = analytic["forward"] - teacher
        print(f"  {c.name:24s} forward {analytic['forward'] / 1e9:8.2f} backward {analytic['backward'] / 1e9:8.2f} "
              f"step {analytic['step'] / 1e9:8.2f}" + (f" (teacher {teacher / 1e9:.2f})" if teacher else ""))
        counted_student = info["counted_forward"] - teacher
        print(f"  {'':24s} FlopCounterMode forward {info['counted_forward'] / 1e9:8.2f} "
              f"(student {counted_student / 1e9:.2f} vs analytic {student_forward / 1e9:.2f}: "
              f"{100 * (counted_student / student_forward - 1):+.2f}%), backward {info['counted_backward'] / 1e9:8.2f} "
              f"(analytic {analytic['backward'] / 1e9:.2f}: "
              f"{100 * (info['counted_backward'] / max(analytic['backward'], 1) - 1):+.2f}%); "
              f"without a CPU-SDPA formula torch counts {info['counted_forward_without_cpu_sdpa_formula'] / 1e9:.2f}")
    for c in configs[:1]:
        print("  components of " + c.name + ": " + ", ".join(
            f"{k} {f / 1e9:.2f}/{b / 1e9:.2f}" for k, (f, b) in c.flop_parts.items()))


def paired_ratios(configs) -> dict:
    """Step-time ratios of configurations stepped in the same rounds (same load): the teacher's share
    (online / cached), supmam_clap / supmam, and each extra optimizer against the first."""
    ratios = {}
    by_name = {c.name: c for c in configs}

    def paired(a, b):
        """Median over rounds of the step-time ratio a/b (same round, same load), and the
        ratio of the best step times."""
        median = statistics.median([x / y for x, y in zip(by_name[a].times, by_name[b].times)])
        return median, min(by_name[a].times) / min(by_name[b].times)

    for variant in ("mam_clap", "supmam_clap"):
        online, cached = f"{variant} (online)", f"{variant} (cached)"
        if online in by_name and cached in by_name:
            r, rb = paired(online, cached)
            ratios[f"{variant} online/cached"] = {"paired_median": r, "best": rb}
            print(f"  teacher share {variant}: online/cached step time {r:.3f}x paired median, {rb:.3f}x best/best "
                  f"-> the teacher takes {100 * (1 - 1 / r):.1f}% ({100 * (1 - 1 / rb):.1f}%) of an online step")
    for mode in ("cached", "online"):
        name = f"supmam_clap ({mode})"
        if name in by_name and "supmam" in by_name:
            r, rb = paired(name, "supmam")
            ratios[f"supmam_clap({mode})/supmam"] = {"paired_median": r, "best": rb}
            verdict = "met" if max(r, rb) <= 1.1 else ("MISSED" if min(r, rb) > 1.1 else "mixed")
            print(f"  {name} / supmam (both mask 0.4): {r:.3f}x paired median, {rb:.3f}x best/best "
                  f"(target <= 1.1x: {verdict})")
    for c in configs:
        if c.suffix:
            base_name = c.name[: -len(c.suffix)]
            if base_name in by_name:
                r, rb = paired(c.name, base_name)
                ratios[f"{c.name} / {base_name}"] = {"paired_median": r, "best": rb}
                print(f"  {c.name} / {base_name}: {r:.3f}x paired median, {rb:.3f}x best/best")
    return ratios


def run_size(size, args, device) -> dict:
    configs = build_configs(size, args, device)
    print_size(size, configs)
    # FLOPs (analytic + FlopCounterMode cross-check), one forward/backward each (untimed)
    teacher_cache = {}
    flop_info = {c.name: count_flops(c, args, device, teacher_cache) for c in configs}
    peaks, sustained_peaks = step_rounds(size, configs, args, device)
    if device.type == "cpu" and not args.no_memory:
        probe_memory(configs, args)
    best_peak = max(peaks)
    results = {c.name: config_results(c, size, args, flop_info, best_peak) for c in configs}
    print_results(size, configs, results, args, device, peaks, sustained_peaks)
    print_flops(configs, flop_info)
    ratios = paired_ratios(configs)
    return {"configs": results, "peaks": peaks, "best_peak": best_peak, "sustained_peaks": sustained_peaks,
            "ratios": ratios}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--sizes", nargs="+", default=["vitb", "tiny"], choices=list(common.SIZES))
    parser.add_argument("--size", dest="sizes", action="store", type=lambda s: [s], help="one size (alias)")
    parser.add_argument("--batch", type=int, default=0, help="clips per step (default: 2 on CPU, 32 on GPU)")
    parser.add_argument("--teacher", default="both", choices=["online", "cached", "both"],
                        help="CLAP targets: teacher run on 48 kHz audio in the step, a cached map, or both")
    parser.add_argument("--steps", type=int, default=None, help="timed rounds (default: 5 vitb on CPU, else 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default: 1 vitb on CPU, else 3)")
    parser.add_argument("--optimizers", nargs="+", default=["supmam_adamw-fused"], choices=list(OPTIMIZERS),
                        help="optimizer implementations to time (each on its own copy of the model; the first one "
                             "unnamed in the tables): "
                        + "; ".join(f"{k}: {v}" for k, v in OPTIMIZERS.items()))
    parser.add_argument("--steps-per-visit", type=int, default=2,
                        help="steps of a configuration in a row in each round; only the last is timed (the first "
                             "ones re-warm its memory after the other models ran); 1 = strict alternation")
    parser.add_argument("--num-classes", type=int, default=527, help="classes of the cls branch (AudioSet: 527)")
    common.add_peak_size_arg(parser)
    parser.add_argument("--peak-reps", type=int, default=3, help="matmul repetitions per peak measurement")
    parser.add_argument("--peak-seconds", type=float, default=1.5,
                        help="length of each sustained matmul measurement, taken before and after every timed "
                             "visit (0: skip)")
    parser.add_argument("--no-memory", action="store_true", help="CPU: skip the per-config memory subprocesses")
    parser.add_argument("--json", default="", help="also write all figures to this JSON file")
    parser.add_argument("--probe-memory", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.batch = common.default_batch(args.batch, args.device)
    if args.probe_memory:
        memory_probe(args)
        return
    device = common.begin(args)
    start = time.time()
    out = {"machine": common.machine_summary(device), "args": vars(args), "sizes": {}}
    for size in args.sizes:
        out["sizes"][size] = run_size(size, args, device)
    print(f"\nload average at the end: {common.load_average()} | wall {time.time() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()
