"""Models: importing this package registers them with fairseq."""
from . import clap_model, classifier, supmam_model  # noqa: F401
