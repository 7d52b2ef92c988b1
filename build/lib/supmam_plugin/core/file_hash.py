"""The SHA-256 of a file, read in 4 MiB blocks (caches and exports record what made them)."""
import hashlib


def file_sha256(path: str) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            sha.update(block)
    return sha.hexdigest()
