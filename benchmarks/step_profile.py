"""Where the time of one pretraining step goes: fbank, encoder, decoder, head + loss, backward,
optimizer (default: ViT-B supmam_clap with a cached teacher map, B=2).

Stage times come from timers around the model's own modules (forward hooks; full backward
hooks for the per-module backward), without touching the model's code: fbank is timed by
wrapping ``model_input_fbank`` where supmam_model calls it, the teacher by wrapping the model's
``teacher_targets``. A torch.profiler pass then lists the aten operators by self time and
groups them (matmul, attention, elementwise/norm, copies/gathers, optimizer), and lists the
matrix products by shape with the rate each reached inside the step against the sustained matmul
rate: their FLOP-weighted rate is the step's ceiling (what it would reach if everything that is
not a matmul cost nothing).

    python -m benchmarks.step_profile
    python -m benchmarks.step_profile --variant audiomae --size vitb --steps 3
    python -m benchmarks.step_profile --variant supmam_clap --teacher online
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

import torch

from . import common, flops
from .common import VARIANTS
from .pretraining_step import single_config, train_step


class StageTimer:
    def __init__(self, device):
        self.device = device
        self.totals = defaultdict(float)
        self._open = {}

    def start(self, key):
        common.sync(self.device)
        self._open[key] = time.perf_counter()

    def stop(self, key):
        common.sync(self.device)
        self.totals[key] += time.perf_counter() - self._open.pop(key)

    def add_module(self, module, key, backward: bool = True):
        module.register_forward_pre_hook(lambda m, i: self.start("fwd " + key))
        module.register_forward_hook(lambda m, i, o: self.stop("fwd " + key))
        if backward:
            module.register_full_backward_pre_hook(lambda m, g: self.start("bwd " + key))
            module.register_full_backward_hook(lambda m, gi, go: self.stop("bwd " + key))

    def wrap(self, fn, key):
        def timed(*args, **kwargs):
            self.start(key)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stop(key)
        return timed


MATMUL_OPS = {"mm", "addmm", "bmm", "baddbmm", "matmul", "linear", "convolution", "_convolution", "conv2d",
              "convolution_backward", "mkldnn_convolution", "_slow_conv2d_forward", "_slow_conv2d_backward",
              "_mkldnn_convolution"}
NORM_OPS = ("layer_norm", "batch_norm", "gelu", "softmax", "relu", "threshold")
ELEMENTWISE_OPS = {"add", "add_", "mul", "mul_", "sub", "sub_", "div", "div_", "sum", "mean", "var", "sqrt", "pow",
                   "square", "log", "log_", "clamp", "clamp_", "clamp_min", "clamp_min_", "exp", "neg", "rsub", "where",
                   "abs", "sigmoid", "fill_", "zero_", "lerp_", "addcmul_", "addcdiv_", "sqrt_", "maximum",
                   "minimum", "mse_loss", "binary_cross_entropy_with_logits", "masked_fill", "masked_fill_",
                   "reciprocal", "rsqrt", "ne", "eq", "lt", "gt", "ge", "le", "sign", "argmax", "max", "min", "any",
                   "all", "norm", "linalg_vector_norm", "_foreach_add_", "_foreach_mul_", "_foreach_lerp_",
                   "_foreach_addcmul_", "_foreach_addcdiv_", "_foreach_sqrt", "_foreach_div_", "_foreach_add",
                   "_fused_adamw_", "_fused_adam_"}
COPY_OPS = {"copy_", "cat", "gather", "index", "index_select", "clone", "contiguous", "roll", "to", "_to_copy",
            "scatter", "scatter_", "scatter_add_", "constant_pad_nd", "pad", "unfold", "unfold_backward", "stack",
            "grid_sampler_2d", "grid_sampler_2d_backward", "index_add_", "index_put_", "_index_put_impl_",
            "gather_backward", "embedding", "repeat", "flip", "new_zeros", "zeros", "ones", "empty", "empty_like",
            "zeros_like", "ones_like", "new_empty_strided", "empty_strided", "full", "arange", "slice_backward",
            "select_backward", "_unsafe_view", "view", "reshape", "permute", "transpose", "t", "expand",
            "as_strided", "narrow", "slice", "select", "squeeze", "unsqueeze", "split", "chunk", "unbind",
            "detach", "alias", "resize_", "fft_rfft", "_fft_r2c", "fft"}


def op_group(name: str) -> str:
    """Group of an operator (by its aten name) for the profile summary."""
    op = name.split("::", 1)[-1]
    if "scaled_dot_product" in op or "flash_attention" in op:
        return "attention (sdpa)"
    if op in MATMUL_OPS:
        return "matmul (linear/mm/bmm/conv)"
    if "fft" in op:
        return "fft (fbank)"
    if any(k in op for k in NORM_OPS):
        return "norm/activation (+backward)"
    if op in ELEMENTWISE_OPS:
        return "elementwise/reduction"
    if op in COPY_OPS:
        return "copies/gathers/layout"
    return "other"


def matmul_flops(name: str, shapes: list) -> tuple | None:
    """(operand shapes, FLOPs) of an aten mm / addmm / bmm event from its recorded input shapes,
    or None for another operator (addmm's first input is the bias)."""
    if name == "aten::addmm":
        shapes = shapes[1:]
    elif name not in ("aten::mm", "aten::bmm"):
        return None
    a, b = shapes[0], shapes[1]
    if len(a) == 3:  # bmm: (n, i, k) @ (n, k, j)
        return (tuple(a), tuple(b)), 2 * a[0] * a[1] * a[2] * b[2]
    return (tuple(a), tuple(b)), 2 * a[0] * a[1] * b[1]


def check_matmul_flops() -> None:
    """--check-matmul-flops: what ``matmul_flops`` reads from the profiler's recorded shapes for a few
    known products (a linear layer's addmm (7, 24) @ (24, 40), an mm (7, 24) @ (24, 7), a bmm
    (3, 7, 24) @ (3, 24, 5) and a relu, which is none), beside torch's own FlopCounterMode count of
    the same products: one JSON line."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    linear, a, b = torch.nn.Linear(24, 40), torch.randn(7, 24), torch.randn(3, 24, 5)

    def products():
        linear(a)
        a @ a.t()
        torch.bmm(a.expand(3, 7, 24), b)
        a.relu()

    with FlopCounterMode(display=False) as count:  # apart: the mode's dispatch would show in the profile
        products()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        products()
    found = [matmul_flops(e.name, e.input_shapes) for e in prof.events()]
    products_found = [[list(a), list(b), flop] for (a, b), flop in (f for f in found if f is not None)]
    print(json.dumps({"products": products_found, "flop_counter": count.get_total_flops()}))


def matmul_shapes(events, self_time, sustained: float, top: int) -> None:
    """Print the step's matrix products by (operator, shapes): calls, seconds, GFLOP, and the rate
    reached inside the step as % of the sustained rate; then the ceiling of the whole step."""
    table = defaultdict(lambda: [0, 0.0, 0.0])  # (op, shapes) -> calls, seconds, FLOPs
    for e in events:
        found = matmul_flops(e.name, e.input_shapes)
        if found is not None:
            row = table[(e.name[6:], *found[0])]
            row[0] += 1
            row[1] += self_time(e) / 1e6
            row[2] += found[1]
    seconds = sum(r[1] for r in table.values())
    total = sum(r[2] for r in table.values())
    if not seconds:
        return
    print(f"\nmatrix products inside the step, by shape (sustained matmul rate around it {sustained:.1f} GFLOP/s); "
          f"top {top} by time:")
    print(f"  {'op':6s} {'A':>18s} {'B':>18s} {'calls':>6s} {'s':>7s} {'GFLOP':>8s} {'GFLOP/s':>8s} {'% sust':>7s}")
    for (op, a, b), (calls, t, f) in sorted(table.items(), key=lambda kv: -kv[1][1])[:top]:
        rate = f / t / 1e9 if t else 0.0
        print(f"  {op:6s} {str(a):>18s} {str(b):>18s} {calls:6d} {t:7.3f} {f / 1e9:8.2f} {rate:8.1f} "
              f"{100 * rate / sustained:6.1f}%")
    rate = total / seconds / 1e9
    print(f"  ceiling: all matrix products {total / 1e9:.1f} GFLOP in {seconds:.3f} s = {rate:.1f} GFLOP/s = "
          f"{100 * rate / sustained:.1f}% of the sustained rate: the step cannot exceed this while its matmuls "
          f"run as they do")


FORWARD_PARTS = ["fwd fbank", "fwd patch_embed", "fwd encoder blocks", "fwd decoder", "fwd head",
                 "fwd teacher targets", "fwd cls branch"]
BACKWARD_PARTS = ["bwd encoder blocks", "bwd decoder", "bwd head", "bwd cls branch"]
RECIPE_OPTIMIZER = "optimizer.step (the recipes' supmam_adamw, fused)"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--variant", default="supmam_clap", choices=VARIANTS)
    parser.add_argument("--size", default="vitb", choices=list(common.SIZES))
    parser.add_argument("--teacher", default="cached", choices=["cached", "online"])
    parser.add_argument("--batch", type=int, default=0, help="clips per step (default: 2 on CPU, 32 on GPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps with stage timers")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--num-classes", type=int, default=527)
    parser.add_argument("--top", type=int, default=20, help="operators listed from the profiler")
    parser.add_argument("--no-profiler", action="store_true", help="skip the torch.profiler pass")
    parser.add_argument("--check-matmul-flops", action="store_true",
                        help="check the FLOPs read from the profiler's shapes against torch's FlopCounterMode on "
                             "a few known products, print both (JSON) and stop")
    common.add_peak_size_arg(parser)
    return parser.parse_args()


def add_stage_timers(timer: StageTimer, model) -> None:
    """Timers around the model's own modules (forward, and backward where it has one)."""
    model.teacher_targets = timer.wrap(model.teacher_targets, "fwd teacher targets")
    timer.add_module(model.encoder.patch_embed, "patch_embed", backward=False)
    for block in model.encoder.blocks:
        timer.add_module(block, "encoder blocks")
    timer.add_module(model.encoder.norm, "encoder blocks")
    timer.add_module(model.decoder, "decoder")
    timer.add_module(model.head, "head")
    if model.cls_branch is not None:
        timer.add_module(model.cls_branch, "cls branch")
    model.register_forward_pre_hook(lambda m, i: timer.start("model forward"))
    model.register_forward_hook(lambda m, i, o: timer.stop("model forward"))


def timed_stages(timer: StageTimer, config, device, dtype: str) -> dict:
    """One step with the parts of the step timed around it: {stage: seconds}, the timers' too."""
    model, criterion, optimizer, sample = config.model, config.criterion, config.optimizer, config.sample
    timer.totals.clear()
    common.sync(device)
    t0 = time.perf_counter()
    with common.autocast(device, dtype):
        loss, _, _ = criterion(model, sample)
    common.sync(device)
    t1 = time.perf_counter()
    loss.backward()
    common.sync(device)
    t2 = time.perf_counter()
    optimizer.step()
    common.sync(device)
    t3 = time.perf_counter()
    optimizer.zero_grad()
    common.sync(device)
    t4 = time.perf_counter()
    record = dict(timer.totals)
    record["criterion forward"] = t1 - t0
    record["backward"] = t2 - t1
    record["optimizer.step"] = t3 - t2
    record["zero_grad"] = t4 - t3
    record["step"] = t4 - t0
    return record


def stage_medians(config, device, args) -> dict:
    """Median over --steps steps of each stage's time; fbank is timed where supmam_model calls it."""
    from supmam_plugin.models import supmam_model

    timer = StageTimer(device)
    original_fbank = supmam_model.model_input_fbank
    supmam_model.model_input_fbank = timer.wrap(original_fbank, "fwd fbank")
    add_stage_timers(timer, config.model)
    totals = defaultdict(list)
    for _ in range(args.steps):
        for k, v in timed_stages(timer, config, device, args.dtype).items():
            totals[k].append(v)
    supmam_model.model_input_fbank = original_fbank
    return {k: statistics.median(v) for k, v in totals.items()}


def print_stage_times(med: dict, steps: int) -> None:
    step_time = med["step"]
    known_forward = sum(med.get(k, 0.0) for k in FORWARD_PARTS)
    rows = [(k[4:], med[k]) for k in FORWARD_PARTS if k in med]
    rows.append(("masking, gathers, norm_pix target, other model code", med["model forward"] - known_forward))
    rows.append(("loss (criterion outside the model)", med["criterion forward"] - med["model forward"]))
    for k in BACKWARD_PARTS:
        if k in med:
            rows.append(("backward: " + k[4:], med[k]))
    rows.append(("backward: rest (patch_embed, loss, gathers, grad accumulation)",
                 med["backward"] - sum(med.get(k, 0.0) for k in BACKWARD_PARTS)))
    rows.append((RECIPE_OPTIMIZER, med["optimizer.step"]))
    rows.append(("zero_grad", med["zero_grad"]))
    print(f"\nstage times, median of {steps} steps (step {step_time:.3f} s):")
    print(f"  {'stage':62s} {'seconds':>8s} {'share':>7s}")
    for label, seconds in rows:
        print(f"  {label:62s} {seconds:8.3f} {100 * seconds / step_time:6.1f}%")
    print(f"  {'= forward (criterion) / backward / optimizer+zero_grad':62s} "
          f"{med['criterion forward']:.3f} / {med['backward']:.3f} / {med['optimizer.step'] + med['zero_grad']:.3f}")


def print_stage_rates(med: dict, config, device, args) -> None:
    """FLOP-weighted view: which stage runs far below the matmul rate."""
    target_dim = config.model.head[0].out_features
    num_samples = config.sample["net_input"]["source"].size(1)
    parts = flops.step_flops(config.cfg, args.batch, num_samples, args.num_classes, target_dim)
    peak = common.matmul_peak(device, args.peak_size, dtype=common.peak_dtype(args.dtype))
    enc_f = sum(parts[k][0] for k in ("encoder linear", "encoder attention"))
    dec_f = sum(parts[k][0] for k in ("decoder linear", "decoder attention", "decoder embed"))
    enc_b = sum(parts[k][1] for k in ("encoder linear", "encoder attention"))
    dec_b = sum(parts[k][1] for k in ("decoder linear", "decoder attention", "decoder embed"))
    print(f"\nachieved rate per stage (analytic FLOPs / stage time; matmul peak now {peak:.1f} GFLOP/s):")
    for label, f, key in (("encoder forward", enc_f, "fwd encoder blocks"), ("decoder forward", dec_f, "fwd decoder"),
                          ("encoder backward", enc_b, "bwd encoder blocks"), ("decoder backward", dec_b, "bwd decoder"),
                          ("head forward", parts["head"][0], "fwd head")):
        if med.get(key):
            rate = f / med[key] / 1e9
            print(f"  {label:18s} {f / 1e9:8.2f} GFLOP in {med[key]:.3f} s = {rate:7.1f} GFLOP/s ({100 * rate / peak:5.1f}% of peak)")


def print_operators(events, title: str, self_time, top: int) -> None:
    """The top operators of a profile by self time, and the time of each operator group."""
    total = sum(self_time(e) for e in events)
    print(f"\ntorch.profiler, {title}: top {top} operators by self time (total {total / 1e6:.3f} s)")
    print(f"  {'operator':58s} {'calls':>6s} {'self s':>8s} {'share':>7s}  group")
    for e in sorted(events, key=self_time, reverse=True)[:top]:
        print(f"  {e.key[:58]:58s} {e.count:6d} {self_time(e) / 1e6:8.3f} {100 * self_time(e) / total:6.1f}%  "
              f"{op_group(e.key)}")
    groups = defaultdict(float)
    for e in events:
        groups[op_group(e.key)] += self_time(e)
    print(f"  groups ({title}):")
    for g, t in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"    {g:32s} {t / 1e6:8.3f} s {100 * t / total:6.1f}%")


def profile_step(config, device, args) -> None:
    """torch.profiler over forward + backward (operators, groups, matrix products by shape against
    the sustained rate around it), then over the optimizer's step."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"

    def self_time(e):
        return getattr(e, key, 0.0) or 0.0

    def sustained_rate():
        return common.matmul_sustained(device, args.peak_size, seconds=1.5, dtype=common.peak_dtype(args.dtype))

    sustained_before = sustained_rate()
    with profile(activities=activities, record_shapes=True) as prof:
        with common.autocast(device, args.dtype):
            loss, _, _ = config.criterion(config.model, config.sample)
        loss.backward()
    print_operators(prof.key_averages(), "forward + backward", self_time, args.top)
    matmul_shapes(prof.events(), self_time, (sustained_before + sustained_rate()) / 2, args.top)
    with profile(activities=activities) as prof:
        config.optimizer.step()
    print_operators(prof.key_averages(), RECIPE_OPTIMIZER, self_time, args.top)
    config.optimizer.zero_grad()


def median_step_seconds(optimizer, model, grads, device) -> float:
    """Median of 5 timed optimizer steps (one untimed first), the same gradients set before each."""
    times = []
    for _ in range(6):
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        times.append(common.timed(optimizer.step, device))
    return statistics.median(times[1:])


def compare_optimizers(model, device) -> None:
    """Optimizer implementations on the same model's parameters (AdamW, same hyper-parameters)."""
    print("\noptimizer.step alone, median of 5 (same parameters and gradients):")
    grads = [torch.randn_like(p) * 1e-3 for p in model.parameters()]
    candidates = [("torch AdamW default (per-tensor loop on CPU)", dict()),
                  ("torch AdamW foreach=True", dict(foreach=True)),
                  ("torch AdamW fused=True", dict(fused=True))]
    for label, extra in candidates:
        try:
            opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.95), weight_decay=0.05, **extra)
            print(f"  {label:48s} {median_step_seconds(opt, model, grads, device):.3f} s")
        except Exception as e:  # an implementation missing on this device
            print(f"  {label:48s} unavailable ({type(e).__name__}: {e})")
    try:
        from fairseq.optim.adam import Adam as FairseqAdamImpl

        opt = FairseqAdamImpl(model.parameters(), lr=2e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.05)
        seconds = median_step_seconds(opt, model, grads, device)
        print(f"  {'fairseq optimizer=adam (the recipes; fairseq.optim.adam.Adam)':48s} {seconds:.3f} s")
    except Exception as e:
        print(f"  fairseq adam: unavailable ({type(e).__name__}: {e})")


def main():
    args = parse_args()
    if args.check_matmul_flops:
        check_matmul_flops()
        return
    args.batch = common.default_batch(args.batch, args.device)
    device = common.begin(args)
    # the recipes' optimizer: fused AdamW with AudioMAE's decay groups
    config = single_config(args.variant, args.size, args.teacher, args.batch, args.num_classes,
                           "supmam_adamw-fused", device)
    name = args.variant + (f" ({config.teacher_mode})" if config.teacher_mode else "")
    print(f"{name}, size {args.size}, batch {args.batch}, {args.dtype}")
    for _ in range(args.warmup):
        train_step(config, device, args.dtype)
    med = stage_medians(config, device, args)
    print_stage_times(med, args.steps)
    print_stage_rates(med, config, device, args)
    if args.no_profiler:
        return
    profile_step(config, device, args)
    compare_optimizers(config.model, device)
    config.optimizer.zero_grad()


if __name__ == "__main__":
    main()
