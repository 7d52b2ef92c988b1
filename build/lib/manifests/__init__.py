"""Manifest builders: turn AudioSet, ESC-50 and Speech Commands folders into fairseq manifests.

Each builder writes ``{split}.tsv`` / ``{split}.label`` / ``dict.label.txt`` in the format of
``supmam_plugin.core.manifest`` and runs as ``python -m manifests.<builder> --help``.
"""
