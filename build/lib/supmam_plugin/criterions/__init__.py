"""Criterions: importing this package registers them with fairseq."""
from . import classification_loss, supmam_loss  # noqa: F401
