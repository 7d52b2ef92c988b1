"""Tasks: importing this package registers them with fairseq."""
from . import audio_classification, clap_pretraining, pretraining  # noqa: F401
