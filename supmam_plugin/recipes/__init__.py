"""The hydra recipes, installed with the package: ``pretraining/`` and ``finetuning/``.

In a checkout they are also reachable as ``examples/supmam`` (a link to this folder). After
``pip install``, ``supmam-recipes pretraining`` prints the folder to give ``fairseq-hydra-train``::

    fairseq-hydra-train --config-dir "$(supmam-recipes pretraining)" --config-name supmam_clap ...

Each family has a ``base.yaml`` with everything its recipes share; a recipe lists
``defaults: [_self_, base]`` and only the keys it sets itself (fairseq validates a recipe against
a schema of its own name whose defaults sit at ``_self_``, so a base listed before ``_self_`` would
be overwritten by them).
"""
from __future__ import annotations

import argparse
import os

RECIPES = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ("pretraining", "finetuning", "clap")


def recipe_dir(family: str) -> str:
    """The installed folder of a recipe family, for ``fairseq-hydra-train --config-dir``."""
    if family not in FAMILIES:
        raise ValueError(f"recipe family {family!r}: one of {FAMILIES}")
    return os.path.join(RECIPES, family)


def recipe_names(family: str) -> list[str]:
    """The runnable recipes of a family (every yaml but base.yaml)."""
    return sorted(f[:-5] for f in os.listdir(recipe_dir(family)) if f.endswith(".yaml") and f != "base.yaml")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="supmam-recipes", description="Print the folder of the installed hydra recipes (for --config-dir).")
    parser.add_argument("family", nargs="?", choices=FAMILIES, help="a recipe family (default: the parent folder)")
    parser.add_argument("--list", action="store_true", help="list the family's recipe names instead")
    args = parser.parse_args(argv)
    if args.list:
        for family in [args.family] if args.family else FAMILIES:
            print(family + ": " + " ".join(recipe_names(family)))
    else:
        print(recipe_dir(args.family) if args.family else RECIPES)


if __name__ == "__main__":
    main()
