"""``supmam-plot-curves``: loss and accuracy curves from fairseq training logs.

    supmam-plot-curves LOG_OR_DIR [LOG_OR_DIR ...] --out FILE.png

Each argument is a log file, or a folder: its ``hydra_train.log`` files (searched recursively;
fairseq-hydra-train writes one per run), else any ``*.log`` in it. Reads both of fairseq's
``common.log_format`` styles, as fairseq-hydra-train and fairseq-train write them:

    [2024-01-01 10:00:00,000][train_inner][INFO] - {"epoch": 1, "loss": "1.23", "num_updates": "25"}
    [2024-01-01 10:00:00,000][train_inner][INFO] - epoch 002:      1 / 1 loss=4.1495, ..., num_updates=2
    [2024-01-01 10:00:00,000][valid][INFO] - epoch 002 | valid on 'valid' subset | loss 1.09 | num_updates 4
    [2024-01-01 10:00:00,000][valid][INFO] - {"epoch": 1, "valid_loss": "0.69", "valid_num_updates": "2"}
    2024-01-01 10:00:00 | INFO | valid | epoch 001 | valid on 'valid' subset | loss 1.09 | num_updates 2

Validation records are those of any tag other than ``train_inner`` / ``train`` (``valid``, or the
subset's name, e.g. ``eval``). One PNG: every loss term found (loss, target_loss, masked_loss,
visible_loss, cls_loss, ...) against num_updates in one panel; accuracy, cls_accuracy and mAP
(train and validation) in a second. Each log file gets its own line style, named in the legend.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

TRAIN_TAGS = ("train_inner", "train")
ACCURACY_KEYS = ("accuracy", "cls_accuracy", "mAP")
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 2)))

_HYDRA_LINE = re.compile(r"^\[(?P<time>[^\]]*)\]\[(?P<tag>[^\]]+)\]\[(?P<level>[A-Z]+)\] - (?P<msg>.*)$")
_PLAIN_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d+)? \| (?P<level>[A-Z]+) \| (?P<tag>[^|]+?) \| (?P<msg>.*)$"
)
_EPOCH = re.compile(r"^epoch\s+(?P<epoch>\d+)\s*(?::|\||$)")


class UsageError(ValueError):
    pass


def _value(text):
    """A number if the text is one (fairseq's json logs quote numbers), else the text."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(str(text).strip())
    except ValueError:
        return text


def _parse_json(msg: str, tag: str) -> dict | None:
    try:
        record = json.loads(msg)
    except ValueError:
        return None
    if not isinstance(record, dict) or not record:
        return None
    prefix = f"{tag}_"
    return {(k[len(prefix):] if k.startswith(prefix) else k): _value(v) for k, v in record.items()}


def _parse_simple(msg: str) -> dict | None:
    """``epoch 002:   1 / 13 k=v, k=v`` (train_inner) or ``epoch 002 | ... | k v | k v`` (epoch summary)."""
    match = _EPOCH.match(msg)
    if not match:
        return None
    record = {"epoch": float(match.group("epoch"))}
    rest = msg[match.end():]
    if "=" in rest and "|" not in rest:
        for part in rest.split(","):
            if "=" in part:
                key, _, value = part.partition("=")
                key = key.strip().split()[-1] if key.strip() else ""
                if key:
                    record[key] = _value(value)
    else:
        for part in rest.split("|"):
            words = part.strip().split()
            if len(words) == 2 and re.fullmatch(r"[A-Za-z_][\w]*", words[0]):
                record[words[0]] = _value(words[1])
    return record if len(record) > 1 else None


def parse_fairseq_log(text: str) -> dict[str, list[dict]]:
    """{tag: [record, ...]} of the metric lines of a fairseq log, in file order.

    tag: the logger tag of the line (``train_inner``, ``train``, ``valid``, a subset name ...);
    record: {metric: float (or str)}, with json's ``{tag}_`` key prefixes removed (so a json
    ``valid_loss`` is ``loss``), and ``epoch`` when the line has one. Lines that are not metric
    records (config dumps, model printouts, messages) are skipped."""
    records: dict[str, list[dict]] = {}
    for line in text.splitlines():
        line = line.rstrip()
        match = _HYDRA_LINE.match(line) or _PLAIN_LINE.match(line)
        if not match:
            continue
        tag, msg = match.group("tag").strip(), match.group("msg").strip()
        if msg.startswith("{"):
            record = _parse_json(msg, tag)
        else:
            record = _parse_simple(msg)
        if record:
            records.setdefault(tag, []).append(record)
    return records


def find_logs(path: str) -> list[str]:
    """A log file, or the ``hydra_train.log`` files under a folder (else its ``*.log`` files)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise UsageError(f"{path}: no such log file or folder")
    hydra_logs, other_logs = [], []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            if name == "hydra_train.log":
                hydra_logs.append(os.path.join(root, name))
            elif name.endswith(".log"):
                other_logs.append(os.path.join(root, name))
    logs = hydra_logs or other_logs
    if not logs:
        raise UsageError(f"{path}: folder holds no hydra_train.log and no *.log file")
    return logs


def _names(paths: list[str]) -> list[str]:
    """Short legend names: the file name, with parent folders added until they are unique."""
    depth = 2 if any(os.path.basename(p) == "hydra_train.log" for p in paths) else 1
    while True:
        names = [os.path.join(*os.path.abspath(p).split(os.sep)[-depth:]) for p in paths]
        if len(set(names)) == len(names) or depth > 8:
            return names
        depth += 1


def _is_loss(key: str) -> bool:
    return (key == "loss" or key.endswith("_loss")) and not key.startswith("best_")


def _series(records: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in records:
        x, y = r.get("num_updates"), r.get(key)
        if isinstance(x, float) and isinstance(y, float):
            xs.append(x)
            ys.append(y)
    return xs, ys


def curves_of(parsed: dict[str, list[dict]]) -> dict[str, dict[str, list[dict]]]:
    """{split label: records}: train (train_inner, else the per-epoch train lines) and each
    validation tag (records with num_updates only)."""
    splits = {}
    train = parsed.get("train_inner") or parsed.get("train") or []
    train = [r for r in train if isinstance(r.get("num_updates"), float)]
    if train:
        splits["train"] = train
    for tag, records in parsed.items():
        if tag in TRAIN_TAGS:
            continue
        records = [r for r in records if isinstance(r.get("num_updates"), float)]
        if records:
            splits[tag] = records
    return splits


def _labels(paths: list[str], logs_by_arg: list[list[str]]) -> list[str]:
    """Legend names: a log found in a folder argument is named by its path from that folder's
    parent (``run1/hydra_train.log``), a log given as a file by its file name; parent folders
    are added where names clash."""
    labels = []
    for arg, logs in zip(paths, logs_by_arg):
        if os.path.isdir(arg):
            base = os.path.dirname(os.path.abspath(arg))
            labels.extend(os.path.relpath(os.path.abspath(log), base) for log in logs)
        else:
            labels.extend(os.path.basename(log) for log in logs)
    if len(set(labels)) == len(labels):
        return labels
    return _names([log for logs in logs_by_arg for log in logs])


def plot_curves(paths: list[str], out_png: str) -> str:
    logs_by_arg = [find_logs(path) for path in paths]
    logs = [log for found in logs_by_arg for log in found]
    parsed_logs = []
    for log in logs:
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            raise UsageError(f"{log}: cannot read ({e})") from None
        splits = curves_of(parse_fairseq_log(text))
        if not splits:
            raise UsageError(
                f"{log}: no training or validation metrics with num_updates found (expected fairseq "
                "train_inner / valid lines in json or simple log_format)"
            )
        parsed_logs.append(splits)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = _labels(paths, logs_by_arg)
    loss_keys, acc_keys = [], []
    for splits in parsed_logs:
        for records in splits.values():
            for r in records:
                for k, v in r.items():
                    if not isinstance(v, float):
                        continue
                    if _is_loss(k) and k not in loss_keys:
                        loss_keys.append(k)
                    elif k in ACCURACY_KEYS and k not in acc_keys:
                        acc_keys.append(k)
    order = {k: i for i, k in enumerate(["loss", "target_loss", "masked_loss", "visible_loss", "cls_loss"])}
    loss_keys.sort(key=lambda k: (order.get(k, len(order)), k))
    acc_keys.sort(key=ACCURACY_KEYS.index)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    split_names = []
    for splits in parsed_logs:
        split_names += [s for s in splits if s not in split_names]

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(14, 5.5))
    for i, (name, splits) in enumerate(zip(names, parsed_logs)):
        style = LINE_STYLES[i % len(LINE_STYLES)]
        for split, records in splits.items():
            marker = None if split == "train" else "o"
            for ax, keys in ((loss_ax, loss_keys), (acc_ax, acc_keys)):
                for k in keys:
                    xs, ys = _series(records, k)
                    if not xs:
                        continue
                    colour_index = keys.index(k) * max(1, len(split_names)) + split_names.index(split)
                    ax.plot(xs, ys, linestyle=style, marker=marker or ("." if len(xs) == 1 else None),
                            markersize=3 if marker or len(xs) > 1 else 6, linewidth=1.3,
                            color=colours[colour_index % len(colours)], label=f"{name}: {split} {k}")
    loss_ax.set_title("losses")
    loss_ax.set_xlabel("num_updates")
    loss_ax.set_ylabel("loss")
    acc_ax.set_title("accuracy / cls_accuracy / mAP")
    acc_ax.set_xlabel("num_updates")
    acc_ax.set_ylabel("%")
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="best", framealpha=0.7)
    if not acc_ax.lines:
        acc_ax.text(0.5, 0.5, "no accuracy / cls_accuracy / mAP in the logs", ha="center", va="center",
                    transform=acc_ax.transAxes)
    fig.suptitle("fairseq training curves: " + ", ".join(names) + "  (line style = log file; o = validation)",
                 fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="supmam-plot-curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("logs", nargs="+", metavar="LOG_OR_DIR", help="fairseq log files or run folders")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        path = plot_curves(args.logs, args.out)
    except UsageError as e:
        print(f"supmam-plot-curves: error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
