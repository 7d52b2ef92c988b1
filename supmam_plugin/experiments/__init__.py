"""The experiments library: everything that runs the plugin through fairseq's own command-line tools
(fairseq-hydra-train, fairseq-validate) and scores what they made. ``supmam-demo`` and the study scripts
are thin callers: they turn their flags into the typed settings of ``settings.py`` and call
``demo.run`` or ``claims.run``. Nothing here is imported by fairseq when it loads the plugin."""
