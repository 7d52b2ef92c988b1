"""Optimizers: importing this package registers them with fairseq."""
from . import adamw_no_decay  # noqa: F401
