"""Files on local disk, written and hashed one way everywhere.

`atomic_write` writes through a temporary file in the destination's folder and renames it into place, so a
reader (another runner, a pod, a user) sees the old file or the whole new one, never a part; a crash leaves
at most a ``.<name>.*.part`` file, which the store's clean-up knows. `sha256_file` is the one file hash (the
manifests', the S3 objects' tags, the data fingerprints').
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

CHUNK = 1 << 20


def atomic_write(path: Path, write: Callable[[IO[bytes]], object], *, durable: bool = False,
                 mode: int | None = None) -> None:
    """Write `path` with `write(handle)` through a temporary file renamed into place.

    ``durable``: fsync before the rename (store objects: a commit must not point at bytes still in a page
    cache). ``mode``: the file's permissions (temporary files are created 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_copy(src: Path, dst: Path, *, mode: int | None = None) -> None:
    """Copy `src` to `dst` so that `dst` appears whole or not at all."""
    import shutil

    def write(handle: IO[bytes]) -> None:
        with open(src, "rb") as f:
            shutil.copyfileobj(f, handle, CHUNK)

    atomic_write(dst, write, mode=mode)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
