"""Training curves from fairseq's logs (json or simple format): parsed, grouped into panels, drawn
(``supmam-plot-curves``)."""
from __future__ import annotations

import json
import os
import re

TRAIN_TAGS = ("train_inner", "train")

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
    are added where names clash. ``/hydra_train.log`` and ``.log`` are then dropped (``run1``)."""
    labels = []
    for arg, logs in zip(paths, logs_by_arg):
        if os.path.isdir(arg):
            base = os.path.dirname(os.path.abspath(arg))
            labels.extend(os.path.relpath(os.path.abspath(log), base) for log in logs)
        else:
            labels.extend(os.path.basename(log) for log in logs)
    if len(set(labels)) != len(labels):
        labels = _names([log for logs in logs_by_arg for log in logs])
    short = [_short(label) for label in labels]
    return short if len(set(short)) == len(short) else labels


def _short(label: str) -> str:
    if label.endswith(os.sep + "hydra_train.log"):
        return label[: -len(os.sep + "hydra_train.log")]
    return label[:-4] if label.endswith(".log") and len(label) > 4 else label


PRETRAINING, FINETUNING = "pretraining", "fine-tuning"
PRETRAINING_KEYS = ("target_loss", "masked_loss", "visible_loss", "cls_loss", "cls_accuracy")
# (panel title, metric keys drawn in it, in line-style order): a row of panels per run group holds
# the families its runs log, in this order (pretraining runs: the first four; fine-tuning runs:
# loss, accuracy, mAP).
FAMILIES = (
    ("loss", ("loss",)),
    ("target loss", ("target_loss", "masked_loss", "visible_loss")),
    ("classification branch: cls_loss", ("cls_loss",)),
    ("classification branch: cls_accuracy (%)", ("cls_accuracy",)),
    ("accuracy (%)", ("accuracy",)),
    ("mAP (%)", ("mAP",)),
)
KEY_STYLES = ("-", "--", ":", "-.")


def run_group(splits: dict[str, list[dict]]) -> str:
    """PRETRAINING when a run logs a pretraining metric (target / masked / visible / cls loss,
    cls_accuracy), else FINETUNING."""
    for records in splits.values():
        if any(k in r for r in records for k in PRETRAINING_KEYS):
            return PRETRAINING
    return FINETUNING


def _keys(splits: dict[str, list[dict]]) -> set[str]:
    return {k for records in splits.values() for r in records for k, v in r.items()
            if isinstance(v, float) and _series(records, k)[0]}


def panel_layout(parsed_logs: list[dict[str, list[dict]]]) -> list[tuple[str, list[tuple[str, tuple[str, ...]]]]]:
    """[(group, [(panel title, keys), ...]), ...]: the rows of the figure (pretraining first), each
    with its panels: the FAMILIES that some run of the group logs, then one "other losses" panel
    for the remaining ``*_loss`` keys."""
    rows = []
    for group in (PRETRAINING, FINETUNING):
        found = set()
        for splits in parsed_logs:
            if run_group(splits) == group:
                found |= _keys(splits)
        if not found:
            continue
        panels, used = [], set()
        for title, keys in FAMILIES:
            if found & set(keys):
                panels.append((title, tuple(k for k in keys if k in found)))
                used |= set(keys)
        other = tuple(sorted(k for k in found if _is_loss(k) and k not in used))
        if other:
            panels.append(("other losses", other))
        if panels:
            rows.append((group, panels))
    return rows


def _run_colours(count: int) -> list:
    """``count`` distinct colours: tab10, then tab20's lighter shades (its dark ones are tab10's)."""
    import matplotlib

    tab10, tab20 = matplotlib.colormaps["tab10"], matplotlib.colormaps["tab20"]
    palette = [tab10(i) for i in range(10)] + [tab20(2 * i + 1) for i in range(10)]
    return [palette[i % len(palette)] for i in range(count)]


def draw_curves(names: list[str], parsed_logs: list[dict[str, list[dict]]]):
    """The matplotlib Figure of the curves (see the module docstring); names: one per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows = panel_layout(parsed_logs)
    columns = max(len(panels) for _, panels in rows)
    groups = [run_group(splits) for splits in parsed_logs]
    colours = [None] * len(names)  # each row's runs take the palette from its start
    for group in set(groups):
        members = [i for i, g in enumerate(groups) if g == group]
        for i, colour in zip(members, _run_colours(len(members))):
            colours[i] = colour
    fig, axes = plt.subplots(len(rows), columns, figsize=(4.3 * columns + 2.6, 3.9 * len(rows)),
                             squeeze=False, layout="constrained")
    for row, (group, panels) in enumerate(rows):
        for column, (title, keys) in enumerate(panels):
            ax = axes[row][column]
            styles = {}  # (key, split kind) -> legend handle
            for run, (splits, colour) in enumerate(zip(parsed_logs, colours)):
                if groups[run] != group:
                    continue
                for split, records in splits.items():
                    validation = split != "train"
                    for k, key in enumerate(keys):
                        xs, ys = _series(records, key)
                        if not xs:
                            continue
                        linestyle = KEY_STYLES[k % len(KEY_STYLES)] if len(keys) > 1 else ("--" if validation else "-")
                        marker = "o" if validation else ("." if len(xs) == 1 else None)
                        ax.plot(xs, ys, color=colour, linestyle=linestyle, marker=marker, markersize=3.5,
                                linewidth=1.3, alpha=0.9)
                        label = f"{key}, {split}" if validation else f"{key}, train"
                        styles.setdefault(label, Line2D([], [], color="0.25", linestyle=linestyle, marker=marker,
                                                        markersize=3.5, linewidth=1.3))
            ax.set_title(f"{group}: {title}", fontsize=10)
            ax.set_xlabel("num_updates", fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(True, alpha=0.3)
            if len(styles) > 1:
                ax.legend(styles.values(), styles.keys(), fontsize=7, loc="upper center",
                          bbox_to_anchor=(0.5, -0.2), ncol=min(2, len(styles)), frameon=False)
        for column in range(len(panels), columns):
            axes[row][column].set_axis_off()
        handles = [Line2D([], [], color=colours[i], linewidth=2.5) for i in range(len(names)) if groups[i] == group]
        labels = [names[i] for i in range(len(names)) if groups[i] == group]
        if len(panels) < columns:  # in the row's first empty slot
            holder, anchor = axes[row][len(panels)], (0.0, 1.0)
        else:  # right of the row's last panel
            holder, anchor = axes[row][-1], (1.02, 1.0)
        holder.legend(handles, labels, fontsize=7.5, loc="upper left", bbox_to_anchor=anchor,
                      title=f"{group} runs", title_fontsize=8, frameon=False)
    fig.suptitle("fairseq training curves (colour = run; o = validation)", fontsize=11)
    return fig


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
    if not panel_layout(parsed_logs):
        raise UsageError(f"{', '.join(logs)}: no loss, accuracy or mAP to draw")

    import matplotlib.pyplot as plt

    fig = draw_curves(_labels(paths, logs_by_arg), parsed_logs)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
