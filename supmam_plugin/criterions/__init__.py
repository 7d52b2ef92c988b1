"""Criterions: importing this package registers them with fairseq."""
from . import supmam_loss  # noqa: F401
