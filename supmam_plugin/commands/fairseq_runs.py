"""Running fairseq's own command-line tools from our commands (ESC-50 folds, the demo):
find them in this Python environment, log their output, and read fairseq-validate's summary."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

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
        raise RunError(f"{label}: {os.path.basename(cmd[0])} exited with code {code}; log: {log_path}\n{tail}")
    return output
