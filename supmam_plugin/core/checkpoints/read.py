"""Opening checkpoint files, safely, and loading weights into a module strictly.

Checkpoints come from the internet. :func:`read_checkpoint` is the one place the package calls
``torch.load``: with ``weights_only=True`` and an allowlist of what released checkpoints really
carry besides tensors and plain containers, so opening a file never runs code from it. A file that
needs anything else is refused unless the user says they trust it (``trust=True`` or the
environment variable :data:`TRUST_VARIABLE`), and then it is unpickled in full, with a warning.
"""
from __future__ import annotations

import logging
import os
import pickle

import torch

logger = logging.getLogger(__name__)

TRUST_VARIABLE = "SUPMAM_TRUST_CHECKPOINTS"
FAIRSEQ_MODELS = ("supmam", "supmam_classifier", "clap")  # the models whose checkpoints hold an encoder we read


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message names the file, the keys and the fix."""


def safe_globals() -> list:
    """The Python objects, besides tensors and plain containers, that ``torch.load`` may rebuild:
    AudioMAE's training script saves its ``args`` (an ``argparse.Namespace``); fairseq and other
    trainers keep numpy scalars (a best score) and may keep the config as an omegaconf container."""
    import argparse
    import collections
    import typing

    import numpy as np

    allowed = [argparse.Namespace, collections.defaultdict, typing.Any, dict, list, tuple, set, int, float, str,
               bool, np.dtype, np.ndarray, np.core.multiarray.scalar, np.core.multiarray._reconstruct]
    allowed += [getattr(np.dtypes, name) for name in dir(getattr(np, "dtypes", None)) if name.endswith("DType")]
    try:
        from omegaconf import DictConfig, ListConfig, nodes
        from omegaconf.base import ContainerMetadata, Metadata

        allowed += [DictConfig, ListConfig, ContainerMetadata, Metadata, nodes.AnyNode, nodes.StringNode,
                    nodes.IntegerNode, nodes.FloatNode, nodes.BooleanNode, nodes.EnumNode]
    except ImportError:  # the portable runtime has no omegaconf; nor do the files it reads
        pass
    return allowed


def trusted_by_environment() -> bool:
    return os.environ.get(TRUST_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def read_checkpoint(path: str, trust: bool | None = None):
    """``torch.load`` of ``path`` on the CPU, without running code from it.

    Args:
        trust: unpickle anything the file holds (it can run code: only for files you trust).
            None: as the environment variable ``SUPMAM_TRUST_CHECKPOINTS`` says (default no).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: an unreadable file, or one holding objects outside :func:`safe_globals`
            (the message names them and how to load it anyway).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    trust = trusted_by_environment() if trust is None else trust
    if trust:
        logger.warning(f"{path}: loaded with weights_only=False ({TRUST_VARIABLE}=1 or trust=True): "
                       "unpickling runs any code the file holds")
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({e})") from None
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message: its advice, then the unpickler's own words ("Unsupported global ...")
        detail = [line.strip() for line in str(e).splitlines() if line.strip().lower().startswith(("unsupported",
                  "trying to load unsupported"))] or [str(e).splitlines()[-1]]
        found = [line for line in detail if "global" in line.lower()]
        if not found:  # not a checkpoint at all (garbage, a truncated file)
            raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({detail[0]})") from None
        raise CheckpointError(
            f"{path}: holds Python objects other than weights and the usual checkpoint contents ({found[0]}), so it "
            f"was not opened: unpickling them can run code. If you trust this file, set {TRUST_VARIABLE}=1 to "
            "load it in full"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({e})") from None


def _plain(obj):
    """An omegaconf container as plain Python (fairseq stores cfg as a dict or a DictConfig)."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(obj, DictConfig):
            try:
                return OmegaConf.to_container(obj, resolve=True)
            except Exception:  # an interpolation that cannot resolve here (e.g. a missing env var)
                return OmegaConf.to_container(obj, resolve=False)
    except ImportError:  # pragma: no cover
        pass
    return obj


def is_fairseq_checkpoint(state) -> bool:
    return isinstance(state, dict) and "cfg" in state and "model" in state


def fairseq_configs(state, path: str, models=FAIRSEQ_MODELS) -> tuple[str, dict, dict]:
    """(model name, model cfg, task cfg) of a fairseq checkpoint whose model is one of ``models``."""
    cfg = _plain(state.get("cfg")) or {}
    model_cfg = _plain(cfg.get("model")) or {}
    name = model_cfg.get("_name") if isinstance(model_cfg, dict) else None
    if name not in models:
        raise CheckpointError(
            f"{path}: a fairseq checkpoint of model {name!r}, not one of {list(models)}; give a supmam "
            "pretraining, supmam_classifier fine-tuning or clap checkpoint, or an AudioMAE .pth"
        )
    return name, model_cfg, _plain(cfg.get("task")) or {}


def _number(value):
    """``value`` if a recorded number; None if absent or an unresolved link ("${task.target_frames}")."""
    return None if value is None or (isinstance(value, str) and value.startswith("${")) else value


def clip_frames(name: str, model_cfg: dict, task_cfg: dict) -> int:
    """The clip length (fbank frames) the model of a fairseq checkpoint was built for.

    ``model.input_frames`` follows ``task.target_frames`` (an ``II`` link); fairseq saves the config
    resolved, so a checkpoint records the task's number twice. A model config that does not record
    it (or holds the link unresolved, "${task.target_frames}") takes the task's. Checkpoints from
    before the link: ``supmam_classifier`` and ``clap`` models always took the task's number (their
    ``build_model`` set it, whatever the model config said); a ``supmam`` model used its own."""
    recorded, task = _number(model_cfg.get("input_frames")), _number(task_cfg.get("target_frames"))
    if task and (name in ("supmam_classifier", "clap") or not recorded):
        return int(task)
    return int(recorded or 1024)  # 1024: the default of both before either was recorded


def linked_fields(state, name: str, model_cfg: dict, task_cfg: dict) -> dict:
    """The model config fields of a fairseq checkpoint that follow other keys, as they were when it
    was saved: ``input_frames`` (:func:`clip_frames`) and ``seed`` (its own if recorded, else
    ``common.seed``)."""
    common = _plain((_plain(state.get("cfg")) or {}).get("common")) or {}
    seed = _number(model_cfg.get("seed"))
    seed = _number(common.get("seed")) if seed is None else seed
    return {"input_frames": clip_frames(name, model_cfg, task_cfg), "seed": int(1 if seed is None else seed)}


def load_strict(module: torch.nn.Module, weights: dict, path: str, what: str = "encoder",
                fix: str = "the size options (model.*) must match the checkpoint", error=CheckpointError) -> None:
    """``module.load_state_dict(weights)``; any missing, unexpected or differently shaped key is
    an ``error`` (a :class:`CheckpointError` by default) naming the file and up to 8 keys of each kind."""
    wanted = module.state_dict()
    missing = [k for k in wanted if k not in weights]
    unexpected = [k for k in weights if k not in wanted]
    mismatched = [f"{k}: checkpoint {tuple(weights[k].shape)} != model {tuple(wanted[k].shape)}"
                  for k in wanted if k in weights and weights[k].shape != wanted[k].shape]
    if missing or unexpected or mismatched:
        raise error(
            f"{path}: {what} weights do not fit the model: {len(missing)} missing {missing[:8]}, "
            f"{len(unexpected)} unexpected {unexpected[:8]}, {len(mismatched)} of another shape "
            f"{mismatched[:8]}; {fix}"
        )
    module.load_state_dict(weights)


def apply_architecture(cfg, architecture: dict, path: str) -> None:
    """Take the checkpoint's architecture fields into ``cfg`` (logging what changed)."""
    for name, value in architecture.items():
        if getattr(cfg, name) != value:
            logger.info(f"model.{name} = {value} (from {path}; the config said {getattr(cfg, name)})")
            setattr(cfg, name, value)
