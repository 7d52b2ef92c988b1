"""Helpers shared by the manifest builders: find audio files, count their samples, log progress."""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence, TypeVar

from supmam_plugin.core.audio import AudioFileError, audio_info

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus")
PROGRESS_EVERY = 10000

logger = logging.getLogger(__name__)
T = TypeVar("T")


def progress(items: Iterable[T], what: str, total: int | None = None, every: int = PROGRESS_EVERY) -> Iterator[T]:
    """Yield ``items``, logging ``what: n [/ total]`` every ``every`` items (and at the end)."""
    count = 0
    for count, item in enumerate(items, start=1):
        if every and count % every == 0:
            logger.info("%s: %d%s", what, count, f" / {total}" if total is not None else "")
        yield item
    if every and count >= every and count % every:
        logger.info("%s: %d%s done", what, count, f" / {total}" if total is not None else "")


def index_audio_files(
    folder: str,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
    every: int = PROGRESS_EVERY,
) -> dict[str, str]:
    """Map each audio file's stem (name without extension) to its path relative to ``folder``.

    Searches recursively, in sorted order; extensions match case-insensitively. When two files
    share a stem the first one found is kept and the clash is logged.
    """
    if not os.path.isdir(folder):
        raise AudioFileError(f"{folder}: audio folder not found")
    wanted = tuple(e.lower() for e in extensions)
    index: dict[str, str] = {}
    clashes = 0

    def walk() -> Iterator[str]:
        for directory, subdirs, files in os.walk(folder, followlinks=True):
            subdirs.sort()
            for name in sorted(files):
                if name.lower().endswith(wanted) and not name.startswith("."):
                    yield os.path.relpath(os.path.join(directory, name), folder)

    for relative_path in progress(walk(), f"indexing {folder}", every=every):
        stem = os.path.splitext(os.path.basename(relative_path))[0]
        if stem in index:
            clashes += 1
            if clashes <= 5:
                logger.warning("%s and %s share the name %r; keeping the first", index[stem], relative_path, stem)
            continue
        index[stem] = relative_path
    if clashes:
        logger.warning("%s: %d files shared a name with an earlier file and were ignored", folder, clashes)
    return index


def num_samples(path: str) -> int:
    """Number of samples (frames, at the file's own rate) of an audio file, via ``soundfile.info``."""
    frames = audio_info(path).frames
    if frames <= 0:
        raise AudioFileError(f"{path}: the audio file holds no samples")
    return int(frames)


def measure_files(
    root: str,
    relative_paths: Sequence[str],
    workers: int = 8,
    what: str = "reading audio headers",
    every: int = PROGRESS_EVERY,
) -> dict[str, int | AudioFileError]:
    """``num_samples`` of each ``root/relative_path``, with ``workers`` threads.

    Returns relative path -> sample count, or the ``AudioFileError`` of a file that failed.
    """

    def measure(relative_path: str) -> int | AudioFileError:
        try:
            return num_samples(os.path.join(root, relative_path))
        except AudioFileError as error:
            return error

    unique = list(dict.fromkeys(relative_paths))
    if workers > 1 and len(unique) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(progress(pool.map(measure, unique), what, len(unique), every))
    else:
        results = list(progress(map(measure, unique), what, len(unique), every))
    return dict(zip(unique, results))


def setup_logging() -> None:
    """Progress and warnings to stderr, for the command-line entry points."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
