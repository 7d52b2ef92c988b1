"""Shared set-up of the benchmarks: the start of a run (device, threads, seed, the machine and the
command line printed first), a benchmark run again in a fresh process, machine facts, the matmul
peak, memory, the four pretraining variants (read from the recipes) and real-looking audio.

The benchmarks run as ``python -m benchmarks.NAME`` from the repository root (see
``benchmarks/__init__.py``); ``supmam_plugin`` is the installed package (``make install``).
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from contextlib import nullcontext

import numpy as np
import torch

from supmam_plugin.recipes import recipe_names

# the repository's root: where ``python -m benchmarks.NAME`` finds this package (a benchmark's own
# subprocess runs there) and where the recipes and data/demo lie
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)

RECIPES = os.path.join(REPO, "examples", "supmam", "pretraining")
VARIANTS = tuple(recipe_names("pretraining"))  # the pretraining recipes: audiomae, mam_clap, supmam, supmam_clap
# Model sizes: ViT-B as in the recipes; "tiny" as the tests' CPU model (tests/conftest.py).
SIZES = {
    "vitb": {},
    "tiny": dict(encoder_layers=2, encoder_embed_dim=192, encoder_heads=3, decoder_embed_dim=128,
                 decoder_heads=4, cls_hidden_dim=64),
}
CLIP_SECONDS = 10.0  # an AudioSet clip; the model pads it to 1024 frames (10.24 s)
SAMPLE_RATE = 16000
TEACHER_RATE = 48000


# ----------------------------------------------------------------------------- machine

def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                keep = [f for f in flags if f.startswith(("avx512f", "avx512_bf16", "amx", "avx2", "fma"))]
                return " ".join(sorted(set(keep)))
    except OSError:
        pass
    return ""


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "n/a"


def machine_summary(device: torch.device) -> str:
    lines = [
        f"cpu: {cpu_model()} | logical cores: {os.cpu_count()} | flags: {cpu_flags()}",
        f"torch {torch.__version__} | threads {torch.get_num_threads()} | interop {torch.get_num_interop_threads()}"
        f" | python {platform.python_version()} | load average {load_average()}",
    ]
    if device.type == "cuda":
        lines.append(f"gpu: {torch.cuda.get_device_name(device)}")
    return "\n".join(lines)


def add_common_args(parser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                        help="bf16: torch.autocast(bfloat16) around forward and loss")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--host-memory", default="keep", choices=["keep", "glibc"],
                        help="keep: freed host memory kept for reuse, as the tasks do (task.keep_freed_memory); "
                             "glibc: the C allocator's defaults")


def add_peak_size_arg(parser) -> None:
    parser.add_argument("--peak-size", type=int, default=2048,
                        help="side of the square matmul for the peak (small: a quick run, a rougher peak)")


def default_batch(batch: int, device) -> int:
    """--batch as given, else the benchmarks' default: 32 clips on a GPU, 2 on the CPU (``device``:
    a torch.device or its name)."""
    return batch or (32 if str(device).startswith("cuda") else 2)


def setup(args) -> torch.device:
    if getattr(args, "host_memory", "glibc") == "keep":
        from supmam_plugin.core.host_memory import keep_freed_memory

        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def command_line(argv: list[str] | None = None) -> str:
    """How this run was started, as a user types it: ``python -m benchmarks.NAME ARGS``."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    name = spec.name if spec is not None else sys.argv[0]
    return " ".join(["python -m", name, *(sys.argv[1:] if argv is None else argv)])


def begin(args, seed: int | None = 0, command: bool = True) -> torch.device:
    """The start of a benchmark's run: ``setup(args)``, torch's seed (``None``: left unseeded), then
    the machine's summary and (``command``) the command line printed first. Returns the device."""
    device = setup(args)
    if seed is not None:
        torch.manual_seed(seed)
    print(machine_summary(device))
    if command:
        print(f"command: {command_line()}")
    return device


def module_command(module: str, args: list[str]) -> list[str]:
    """``python -m MODULE ARGS`` with this interpreter: a benchmark run again in a fresh process (to
    measure its memory, its allocator, a compile that may hang). Run it with ``cwd=REPO``, where
    the package imports. ``module``: the benchmark's ``__spec__.name``."""
    return [sys.executable, "-m", module, *args]


def run_module(module: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` of ``module_command(module, args)`` from the repository's root."""
    return subprocess.run(module_command(module, args), cwd=REPO, **kwargs)


def autocast(device: torch.device, dtype: str):
    if dtype == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def peak_dtype(dtype: str) -> torch.dtype:
    """The matmul dtype that --dtype trains in: fp32, or bf16 under autocast."""
    return torch.bfloat16 if dtype == "bf16" else torch.float32


def square_operands(device: torch.device, size: int, dtype) -> tuple:
    """(a, b, out) for ``torch.mm(a, b, out=out)``, (size x size) each, after one untimed product."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    return a, b, out


def matmul_peak(device: torch.device, size: int = 2048, reps: int = 5, dtype=torch.float32) -> float:
    """Practical matmul peak in GFLOP/s: the best of ``reps`` (size x size) @ (size x size) products
    (one untimed first), in ``dtype`` (``peak_dtype(--dtype)``: fp32, or bf16 for bf16 runs). On
    the GPU fp32 runs with TF32 allowed, as the training step does."""
    a, b, out = square_operands(device, size, dtype)
    best = min(timed(lambda: torch.mm(a, b, out=out), device) for _ in range(reps))
    return 2.0 * size ** 3 / best / 1e9


def matmul_sustained(device: torch.device, size: int = 2048, seconds: float = 3.0, dtype=torch.float32) -> float:
    """Sustained matmul rate in GFLOP/s: (size x size) @ (size x size) products back to back for
    ``seconds``, total FLOPs / total time. A training step keeps the cores busy for seconds; a CPU
    (boost clocks) or a shared host gives a short burst more than that, so ``matmul_peak`` over-
    states what a multi-second step can reach. Compare a step with this, measured beside it."""
    a, b, out = square_operands(device, size, dtype)
    sync(device)
    count, start = 0, time.perf_counter()
    while True:
        torch.mm(a, b, out=out)
        count += 1
        if count % 4 == 0 or device.type != "cuda":
            sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return 2.0 * size ** 3 * count / elapsed / 1e9


def summary(times: list[float]) -> dict:
    return {"best": min(times), "median": statistics.median(times), "mean": statistics.fmean(times), "n": len(times)}


# ----------------------------------------------------------------------------- memory

def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; else 0)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process: Linux >= 4.0, writing 5 to
    /proc/self/clear_refs. Returns False where that is impossible (then peak = ru_maxrss, a
    process-lifetime maximum)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak memory of a stretch of code. CPU: peak RSS (VmHWM, reset at enter) minus the RSS at
    enter, i.e. what the stretch added at its high point (psutil is not needed). GPU:
    torch.cuda.max_memory_allocated (reset at enter), and the same minus allocated at enter."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = self.added = 0

    def __enter__(self):
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            reset_peak_rss()
            self.start = rss_bytes()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            sync(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = peak_rss_bytes()
        self.added = max(0, self.peak - self.start)
        return False


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def training_state_bytes(model, optimizer) -> int:
    """Bytes of parameters, their gradients and the optimizer's state tensors (a torch optimizer,
    or a fairseq one: its torch optimizer's state)."""
    params = [p for p in model.parameters()]
    grads = [p.grad for p in params if p.grad is not None]
    torch_optimizer = getattr(optimizer, "optimizer", optimizer)  # fairseq's FairseqOptimizer wraps one
    states = [v for s in torch_optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return tensor_bytes(params) + tensor_bytes(grads) + tensor_bytes(states)


# ----------------------------------------------------------------------------- audio

def synthetic_clip(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """A real-looking (non-stationary, broadband) mono clip: a harmonic tone with vibrato and a
    syllable-like envelope, a chirp, noise bursts and background noise; float32 in [-1, 1].
    The same seed gives the same sound at any rate (it is a function of time)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate)), dtype=np.float64) / sample_rate
    f0 = rng.uniform(110, 330)
    vibrato = 1.0 + 0.02 * np.sin(2 * np.pi * rng.uniform(3, 7) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sample_rate
    harmonic = sum((0.5 / k) * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
    chirp = 0.2 * np.sin(2 * np.pi * (300 * t + rng.uniform(50, 300) * t ** 2))
    # the noise is drawn at a fixed 8 kHz grid and held, so it does not depend on the rate
    noise_grid = np.random.default_rng(seed + 1).standard_normal(int(seconds * 8000) + 1)
    noise = noise_grid[np.minimum((t * 8000).astype(np.int64), len(noise_grid) - 1)]
    bursts = (np.sin(2 * np.pi * 0.7 * t + seed) > 0.8).astype(np.float64)
    wave = 0.5 * harmonic * syllables + chirp * (1 - syllables) + 0.3 * noise * bursts + 0.01 * noise
    wave = 0.9 * wave / np.max(np.abs(wave))
    return wave.astype(np.float32)


def synthetic_batch(batch: int, seconds: float = CLIP_SECONDS, sample_rate: int = SAMPLE_RATE, seed: int = 0):
    return torch.from_numpy(np.stack([synthetic_clip(seconds, sample_rate, seed + i) for i in range(batch)]))


# ----------------------------------------------------------------------------- variants

def recipe(variant: str) -> tuple[dict, dict]:
    """(model settings, criterion settings) of examples/supmam/pretraining/{variant}.yaml, composed
    with its base as fairseq-hydra-train composes it."""
    from omegaconf import OmegaConf

    from supmam_plugin.recipes.compose import compose_recipe

    resolved = OmegaConf.to_container(compose_recipe("pretraining", variant), resolve=False)
    model = dict(resolved["model"])
    model.pop("_name", None)
    model["input_frames"] = int(resolved["task"]["target_frames"])
    model["seed"] = int(resolved["common"]["seed"])
    criterion = dict(resolved["criterion"])
    criterion.pop("_name", None)
    return model, criterion


def build_variant(variant: str, size: str, num_classes: int = 527, overrides: dict | None = None):
    """(SupmamModel, SupmamCriterion, model settings dict, lambda_cls) of a recipe at a size,
    with a random CLAP teacher for the CLAP targets."""
    from supmam_plugin.criterions.supmam_loss import SupmamCriterion, SupmamCriterionConfig
    from supmam_plugin.models.supmam_model import SupmamConfig, SupmamModel

    model_settings, criterion_settings = recipe(variant)
    model_settings.update(SIZES[size])
    if model_settings["target"] == "teacher":
        model_settings["teacher_checkpoint"] = "random"
    model_settings.update(overrides or {})
    cfg = SupmamConfig(**model_settings)
    model = SupmamModel(cfg, num_classes=num_classes if cfg.cls_branch else 0)
    criterion = SupmamCriterion(SupmamCriterionConfig(**criterion_settings), task=None)
    return model, criterion, cfg, float(criterion_settings.get("lambda_cls", 0.0))


def training_step(model, criterion, optimizer, sample, device: torch.device, dtype: str) -> None:
    """One whole step: criterion forward (under ``autocast`` for bf16), backward, optimizer step, zero_grad."""
    with autocast(device, dtype):
        loss, _, _ = criterion(model, sample)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters())
