"""Models: importing this package registers them with fairseq."""
from . import classifier, supmam_model  # noqa: F401
