"""Criterions: importing this package registers them with fairseq."""
from . import clap_contrastive, classification_loss, supmam_loss  # noqa: F401
