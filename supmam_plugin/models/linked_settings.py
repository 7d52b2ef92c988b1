"""Settings with one owner: a model or task field that only repeats another key follows it by
fairseq's ``II`` link (omegaconf's interpolation), as fairseq's own tasks take ``seed: II("common.seed")``.

* the clip length in fbank frames is ``task.target_frames``: ``model.input_frames`` follows it
  (``supmam``, ``supmam_classifier``, ``clap``);
* the seed is ``common.seed``: ``task.seed`` (every task) and ``model.seed`` (``supmam``) follow it.

A follower given a value of its own that differs from its owner's is refused when the task builds
the model (:func:`refuse_conflicts`), naming both keys: the same number set twice would otherwise
let one of them win unnoticed (a model of 512 frames fed clips of 1024 pads or crops every clip).

Under fairseq the links resolve against the whole config. A config made in Python outside one has
no owner to follow: built through a task, it follows that task (:func:`follow_task`); built alone,
it takes the owner's default (:func:`settle_alone`: 1024 frames, AudioMAE's 10.24 s; seed 1,
fairseq's ``common.seed`` default).
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from omegaconf import OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    field: str  # the follower's field, in the model or task config
    owner: str  # the key that owns the setting
    meaning: str  # what the one setting is
    default: int  # the owner's default (a config with no owner to follow)


CLIP_LENGTH = Link("input_frames", "task.target_frames", "the clip length in fbank frames", 1024)
SEED = Link("seed", "common.seed", "the seed of the run", 1)
MODEL_LINKS = (CLIP_LENGTH, SEED)
TASK_LINKS = (SEED,)


def link_help(link: Link, what: str) -> str:
    """The ``help`` of a follower field: what it is and whom it follows."""
    return (f"{what}: follows {link.owner} (one setting, {link.meaning}): set {link.owner}; another value "
            f"here is refused. A config built in Python with no {link.owner.split('.')[0]} to follow: {link.default}")


def _has_field(cfg, name: str) -> bool:
    if OmegaConf.is_config(cfg):
        return name in cfg
    return dataclasses.is_dataclass(cfg) and name in {f.name for f in dataclasses.fields(cfg)}


def own_value(cfg, name: str):
    """The value ``cfg`` gives ``name``: its number, or what its link resolves to; None when absent
    or when the link has nothing to resolve against (a config outside a fairseq config)."""
    if cfg is None or not _has_field(cfg, name):
        return None
    if OmegaConf.is_config(cfg):
        try:
            return cfg[name]
        except InterpolationResolutionError:
            return None
    value = getattr(cfg, name, None)
    if isinstance(value, str) and value.startswith("${"):  # a plain dataclass keeps its II default as text
        return None
    return value


def _set(cfg, name: str, value) -> None:
    if OmegaConf.is_config(cfg):
        with open_dict(cfg):
            cfg[name] = value
    else:
        setattr(cfg, name, value)


def _root(cfg):
    return cfg._get_root() if OmegaConf.is_config(cfg) else None


def owners(task) -> dict:
    """{owner key: (the key that stands for it here, its value)} for ``task``: ``task.target_frames``
    from the task; ``common.seed`` from the whole config the task's config belongs to or, for a task
    config made alone (no common node), the task's own seed, named ``task.seed``."""
    root = _root(task.cfg)
    seed = OmegaConf.select(root, SEED.owner, default=None) if root is not None else None
    return {CLIP_LENGTH.owner: (CLIP_LENGTH.owner, task.cfg.target_frames),
            SEED.owner: (SEED.owner, seed) if seed is not None else ("task.seed", own_value(task.cfg, "seed"))}


def conflict_message(follower: str, value, owner: str, owner_value, link: Link) -> str:
    return (f"{follower}={value} disagrees with {owner}={owner_value}: they are one setting, {link.meaning}; "
            f"set {owner} only")


def refuse_conflicts(model_cfg, task) -> None:
    """Raise ValueError if ``model_cfg`` (or the task's config) gives a linked field a value other
    than its owner's, one line per conflict, naming both keys and the fix."""
    found = owners(task)
    conflicts = []
    seed_key, seed = found[SEED.owner]
    if seed_key == SEED.owner:  # a task config inside a whole config: its seed follows common.seed
        value = own_value(task.cfg, "seed")
        if value is not None and value != seed:
            conflicts.append(conflict_message("task.seed", value, seed_key, seed, SEED))
    for link in MODEL_LINKS:
        owner, owner_value = found[link.owner]
        value = own_value(model_cfg, link.field)
        if value is not None and owner_value is not None and value != owner_value:
            conflicts.append(conflict_message(f"model.{link.field}", value, owner, owner_value, link))
    if conflicts:
        raise ValueError("\n".join(conflicts))


def follow_task(model_cfg, task) -> None:
    """A linked field of ``model_cfg`` with nothing to resolve against (a model config made in
    Python, handed to a task or to ``build_model`` with one) takes ``task``'s value; a field that
    resolves, or holds its own number, is left as it is."""
    found = owners(task)
    for link in MODEL_LINKS:
        if _has_field(model_cfg, link.field) and own_value(model_cfg, link.field) is None:
            _, value = found[link.owner]
            _set(model_cfg, link.field, link.default if value is None else value)


def settle_alone(cfg, links=MODEL_LINKS) -> None:
    """A linked field of a config built alone (no task, no common node) takes its owner's default."""
    for link in links:
        if _has_field(cfg, link.field) and own_value(cfg, link.field) is None:
            _set(cfg, link.field, link.default)


def task_clip_length_wins(model_cfg, task) -> None:
    """Loading a checkpoint of a model that always took the task's clip length (``supmam_classifier``
    and ``clap``, whose ``build_model`` set ``input_frames`` from ``task.target_frames`` before the
    link): it is built for the task's ``target_frames`` whatever its recorded ``model.input_frames``."""
    recorded = own_value(model_cfg, CLIP_LENGTH.field)
    frames = task.cfg.target_frames
    if recorded is not None and recorded != frames:
        logger.info(f"model.input_frames = task.target_frames = {frames} (the checkpoint's config recorded {recorded})")
        _set(model_cfg, CLIP_LENGTH.field, frames)
