"""Evaluation of frozen encoders: linear probes and the MFCC baseline (``supmam-linear-probe``).

Not imported by the plugin's ``__init__`` (fairseq does not need it)."""
