"""The hydra recipes in ``examples/supmam``, composed exactly as ``fairseq-hydra-train`` composes them.

Each family (``pretraining``, ``finetuning``) has a ``base.yaml`` with everything its recipes
share; a recipe lists ``defaults: [_self_, base]`` and only the keys it sets itself. The order is
forced by fairseq: ``fairseq-hydra-train --config-name NAME`` validates the recipe against a
schema of the same name (``hydra_init(NAME)``) whose defaults sit at the recipe's own ``_self_``
position, so a base listed BEFORE ``_self_`` would be overwritten by the schema's defaults. Hence a
recipe may set only keys its base leaves out (``check_recipe`` enforces it); command-line
overrides still win over both.
"""
from __future__ import annotations

import os
import warnings

from omegaconf import DictConfig, OmegaConf

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "supmam")
FAMILIES = ("pretraining", "finetuning")


def recipe_dir(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"recipe family {family!r}: one of {FAMILIES}")
    return os.path.join(EXAMPLES, family)


def recipe_names(family: str) -> list[str]:
    """The runnable recipes of a family (every yaml but base.yaml)."""
    return sorted(f[:-5] for f in os.listdir(recipe_dir(family)) if f.endswith(".yaml") and f != "base.yaml")


def compose_recipe(family: str, name: str, overrides: list[str] | tuple = (), resolve: bool = False) -> DictConfig:
    """The config fairseq-hydra-train builds for ``--config-dir examples/supmam/{family}
    --config-name {name} OVERRIDES`` (before fairseq adds the registered dataclasses' defaults).
    ``resolve`` resolves interpolations such as ``${task.target_frames}``."""
    from fairseq.dataclass.initialize import hydra_init
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    hydra_init(name)  # the schema fairseq-hydra-train registers under the recipe's name
    GlobalHydra.instance().clear()
    with warnings.catch_warnings(), initialize_config_dir(config_dir=recipe_dir(family), version_base="1.1"):
        warnings.filterwarnings("ignore", message=".*validated against ConfigStore schema.*")
        cfg = compose(config_name=name, overrides=list(overrides))
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=resolve))
    cfg.pop("hydra", None)
    return cfg


def check_recipe(family: str, name: str) -> None:
    """A recipe that sets a key its base also sets would be silently overruled (see the module
    docstring): raise, naming the keys."""
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
