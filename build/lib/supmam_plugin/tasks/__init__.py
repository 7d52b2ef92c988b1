"""Tasks: importing this package registers them with fairseq."""
from . import audio_classification, pretraining  # noqa: F401
