"""Models: importing this package registers them with fairseq."""
from . import supmam_model  # noqa: F401
