"""SupMAM-CLAP as a fairseq user-dir plugin.

Importing this package registers the tasks, models and criterions with fairseq
(``common.user_dir=/path/to/supmam_plugin`` or ``--user-dir``). It never touches the network.
"""
from . import tasks  # noqa: F401
