"""Content hashes of files: the evidence that names a run's inputs and an import's part files.

One implementation, so a store file hashed at import and again in a replay's run.json gives
the same text. Imports nothing of ours, so any layer may use it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

#: Read size: bounded memory for files of any size.
HASH_CHUNK_BYTES: Final = 1 << 20


def file_sha256(path: Path) -> str:
    """SHA-256 of a file as lowercase hex, read in bounded chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
