"""SupMAM-CLAP as a fairseq user-dir plugin.

Importing this package registers the tasks, models, criterions and optimizer with fairseq
(``common.user_dir=/path/to/supmam_plugin`` or ``--user-dir``). It never touches the network.
Where fairseq cannot be imported, nothing is registered and only the fairseq-free parts work:
``supmam_plugin.inference.export`` (exported encoders) and what it uses.
"""
import logging as _logging

_root_level = _logging.getLogger().level
try:
    import fairseq as _fairseq  # noqa: F401
except ImportError:  # the portable runtime, without fairseq
    _fairseq = None
if _fairseq is not None:
    from . import criterions, models, optim, tasks  # noqa: E402,F401

# fairseq.models.wav2vec.wav2vec2_classification calls logging.basicConfig(level=DEBUG) when
# fairseq.models is imported; undo that so numba/h5py do not flood the log (and slow start-up).
if _logging.getLogger().level == _logging.DEBUG and _root_level != _logging.DEBUG:
    _logging.getLogger().setLevel(_root_level)
