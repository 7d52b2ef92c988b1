"""The recipes composed exactly as ``fairseq-hydra-train`` composes them (the experiments library,
benchmarks and tests): what a recipe sets is read from it, not restated elsewhere.

A recipe may set only keys its ``base.yaml`` leaves out: fairseq validates a recipe against a
schema of its own name whose defaults sit at the recipe's ``_self_`` position, so a key set in
both would be silently overruled by the base (``check_recipe`` enforces it).
"""
from __future__ import annotations

import functools
import os
import warnings

from omegaconf import DictConfig, OmegaConf

from . import recipe_dir


def compose_recipe(family: str, name: str, overrides: list[str] | tuple = (), resolve: bool = False) -> DictConfig:
    """The config fairseq-hydra-train builds for ``--config-dir examples/supmam/{family}
    --config-name {name} OVERRIDES`` (before fairseq adds the registered dataclasses' defaults).
    ``resolve`` resolves interpolations such as ``${checkpoint.save_dir}``."""
    from fairseq.dataclass.initialize import hydra_init
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with warnings.catch_warnings():  # hydra's notes on fairseq's schema-by-name and version_base 1.1
        warnings.filterwarnings("ignore", message="(?s).*validated against ConfigStore schema")
        warnings.filterwarnings("ignore", message="(?s).*version_base")
        hydra_init(name)  # the schema fairseq-hydra-train registers under the recipe's name
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=recipe_dir(family), version_base="1.1"):
            cfg = compose(config_name=name, overrides=list(overrides))
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=resolve))
    cfg.pop("hydra", None)
    return cfg


def check_recipe(family: str, name: str) -> None:
    """A recipe that sets a key its base also sets would be silently overruled: raise, naming the keys."""
    base = _leaf_keys(OmegaConf.load(os.path.join(recipe_dir(family), "base.yaml")))
    own = OmegaConf.load(os.path.join(recipe_dir(family), f"{name}.yaml"))
    clashes = sorted(k for k in _leaf_keys(own) if k in base and not k.startswith("defaults"))
    if clashes:
        raise ValueError(f"examples/supmam/{family}/{name}.yaml sets {clashes}, which base.yaml also sets: "
                         "base.yaml would win; move the key out of base.yaml into every recipe")


def _leaf_keys(node, prefix: str = "") -> set[str]:
    if isinstance(node, DictConfig):
        keys = set()
        for key in node.keys():
            keys |= _leaf_keys(node._get_node(key), f"{prefix}{key}.")
        return keys
    return {prefix.rstrip(".")}


@functools.lru_cache(maxsize=None)
def method_facts(method: str) -> dict:
    """What pretraining recipe ``method`` is, read from the composed recipe: {"clap_target": its
    decoder predicts a teacher's features (``model.target=teacher``), "cls_branch": it reads labels
    while pretraining (``model.cls_branch``), "teacher": its ``model.teacher``}."""
    model = compose_recipe("pretraining", method).model
    return {"clap_target": model.target == "teacher", "cls_branch": bool(model.cls_branch), "teacher": model.teacher}
