"""Running fairseq's own command-line tools from the experiments and commands (ESC-50 folds, the demo,
studies): the one place that builds their command lines, find them in this Python environment, log their output, and
read what fairseq prints (fairseq-validate's summary, JSON log records, the training time)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

from ..recipes import recipe_dir

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# fairseq-validate's summary line: "valid | valid on 'valid' subset | loss 1.0937 | accuracy 42.857 | ..."
SUMMARY = re.compile(r"valid on '(?P<subset>[^']+)' subset \| (?P<stats>.*)$")
STAT = re.compile(r"(\w+) (-?[\d.]+(?:e[-+]?\d+)?)(?: \||$)")
TRAIN_PROGRESS = re.compile(r"\[valid\]|valid on '|done training|Stopping training|Loaded checkpoint")


class RunError(RuntimeError):
    """A fairseq command failed; the message names its log."""


def console_script(name: str) -> str:
    """``name`` from the environment running this command (beside sys.executable), else PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(beside) and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found:
        return found
    raise RunError(f"{name} not found beside {sys.executable} nor on PATH: install fairseq in this environment")


def hydra_train_command(config_dir: str, recipe: str, save_dir: str, overrides: list[str] = ()) -> list[str]:
    """``fairseq-hydra-train`` of ``recipe`` in ``config_dir`` (a recipe family, "pretraining" or
    "finetuning", or a folder) into ``save_dir`` (hydra's own files too), with this plugin as the
    user dir unless ``overrides`` name one."""
    if not os.path.isdir(config_dir):
        config_dir = recipe_dir(config_dir)
    cmd = [console_script("fairseq-hydra-train"), "--config-dir", config_dir, "--config-name", recipe,
           f"checkpoint.save_dir={save_dir}"]
    if override_value(overrides, "common.user_dir") is None:
        cmd.append(f"common.user_dir={PLUGIN_DIR}")
    if override_value(overrides, "hydra.run.dir") is None:
        cmd.append(f"hydra.run.dir={os.path.join(save_dir, 'hydra')}")
    return cmd + list(overrides)


def validate_command(data: str, checkpoint: str, subset: str, batch_size: int, cpu: bool,
                     task: str = "supmam_audio_classification", model_overrides: dict | None = None) -> list[str]:
    """``fairseq-validate`` of ``checkpoint`` on ``subset`` of the manifest folder ``data``
    (``model_overrides``: fairseq's --model-overrides, a dict of the saved config's keys)."""
    return [console_script("fairseq-validate"), data, "--user-dir", PLUGIN_DIR, "--path", checkpoint, "--task", task,
            "--valid-subset", subset, "--batch-size", str(batch_size)] + (["--cpu"] if cpu else []) \
        + (["--model-overrides", repr(model_overrides)] if model_overrides is not None else [])


def training_seconds(output: str) -> float:
    """fairseq's "done training in X seconds" (0 when absent)."""
    match = re.search(r"done training in ([\d.]+) seconds", output)
    return float(match.group(1)) if match else 0.0


def log_records(output: str, tag: str = "train_inner") -> list[dict]:
    """The JSON records fairseq logs under ``tag`` (``common.log_format=json``)."""
    import json

    return [json.loads(line[line.index("{"):]) for line in output.splitlines() if f"[{tag}]" in line and "{" in line]


def override_value(overrides: list[str], key: str) -> str | None:
    """The last value given to ``key`` (with or without a leading + / ++)."""
    value = None
    for override in overrides:
        name, _, rest = override.partition("=")
        if name.lstrip("+") == key:
            value = rest
    return value


def uses_cpu(overrides: list[str]) -> bool:
    return (override_value(overrides, "common.cpu") or "").strip().lower() in ("true", "1", "yes")


def parse_validate_output(text: str, subset: str = "valid") -> dict[str, float]:
    """Numbers of fairseq-validate's last summary line for ``subset``."""
    stats = None
    for line in text.splitlines():
        match = SUMMARY.search(line)
        if match and match.group("subset") == subset:
            stats = {k: float(v) for k, v in STAT.findall(match.group("stats"))}
    if stats is None:
        raise ValueError(f"no \"valid on '{subset}' subset\" line in fairseq-validate's output")
    return stats


PER_CLASS_AP = re.compile(r"AP_per_class (\{[^{}]*\})")


def parse_per_class_ap(text: str, subset: str = "valid") -> dict[str, float]:
    """{class: AP %} of fairseq-validate's last summary line for ``subset`` (criterion
    ``supmam_classification``, multi-label); {} when it logs none."""
    import ast

    found = {}
    for line in text.splitlines():
        match = SUMMARY.search(line)
        if match and match.group("subset") == subset:
            per_class = PER_CLASS_AP.search(match.group("stats"))
            found = ast.literal_eval(per_class.group(1)) if per_class else {}
    return found


SUCCESS = "# exited 0\n"  # run_logged's last line of a log whose command succeeded


def finished_output(cmd: list[str], log_path: str) -> str | None:
    """The output logged by an earlier successful run of exactly ``cmd`` into ``log_path``, else None."""
    try:
        with open(log_path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    first, _, rest = text.partition("\n")
    if first != "$ " + " ".join(cmd) or not rest.endswith(SUCCESS):
        return None
    return rest[: -len(SUCCESS)]


def empty_run_folder(save_dir: str) -> None:
    """Remove a training run's folder before a fresh run: fairseq would resume its checkpoint_last.pt."""
    if os.path.isdir(save_dir):
        shutil.rmtree(save_dir)


def run_logged(cmd: list[str], log_path: str, label: str, verbose: bool, reuse: bool = False) -> str:
    """Run ``cmd``, writing its output (stdout and stderr) to ``log_path`` and echoing progress;
    returns the output. Raises RunError (with the log's tail) when it fails. ``reuse``: when the log
    holds a successful run of the same command, return its output without running it again (the
    caller says whether that is safe: the command's inputs must be unchanged)."""
    if reuse:
        output = finished_output(cmd, log_path)
        if output is not None:
            print(f"  {label} | reused: {log_path} holds a finished run of the same command", flush=True)
            return output
    lines = []
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
        for line in process.stdout:
            log.write(line)
            lines.append(line)
            if verbose or TRAIN_PROGRESS.search(line):
                print(f"  {label} | {line.rstrip()[-200:]}", flush=True)
        code = process.wait()
        if code == 0:
            log.write(SUCCESS)
    output = "".join(lines)
    if code != 0:
        tail = "\n".join(output.rstrip().splitlines()[-25:])
        reason = error_line(output)
        raise RunError(f"{label}: {os.path.basename(cmd[0])} exited with code {code}"
                       f"{': ' + reason if reason else ''}; log: {log_path}\n{tail}")
    return output


ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception): .+")


def error_line(output: str) -> str | None:
    """The last ``SomeError: message`` line of a run's output: why it failed (hydra prints only a
    hint about HYDRA_FULL_ERROR after it), or None."""
    found = [line.strip() for line in output.splitlines() if ERROR_LINE.match(line.strip())]
    return found[-1][:500] if found else None
