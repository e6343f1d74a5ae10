"""A store in a local directory (the embedded default, ./xit-runs)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from xit.errors import XitError
from xit.store.base import Store, check_key


def check_writable_dir(path: Path, what: str) -> None:
    """A directory xit can write into (it may not exist yet): a one-line XitError before any work if not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise XitError(f"{what}: exists and is not a directory")
    existing = path
    while not existing.exists():
        if existing.is_symlink():  # a dangling link or a loop
            raise XitError(f"{what}: {existing} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise XitError(f"{what}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise XitError(f"{what}: {existing} is not writable")


class LocalStore(Store):
    def __init__(self, root: str | Path):
        if not str(root).strip():
            raise XitError(f"store {str(root)!r}: empty; give a directory or s3://bucket/prefix")
        self.root = Path(root).expanduser().resolve()
        check_writable_dir(self.root, f"store {root}")
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise XitError(f"store {self.url}: no object {key!r}") from None

    def _atomic(self, key: str, write) -> None:  # noqa: ANN001 - write(fileobj)
        dst = self._path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dst)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def write_bytes(self, key: str, data: bytes) -> None:
        self._atomic(key, lambda f: f.write(data))

    def write_bytes_if_absent(self, key: str, data: bytes) -> bool:
        dst = self._path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, dst)  # fails if dst exists: the complete file appears at once, or not at all
            return True
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)

    def put_file(self, src: Path, key: str) -> None:
        def copy(f) -> None:  # noqa: ANN001
            with open(src, "rb") as s:
                shutil.copyfileobj(s, f, 1 << 20)

        self._atomic(key, copy)

    def list(self, prefix: str) -> list[str]:
        """Every key under prefix/. A folder another process removes meanwhile is skipped, not an error
        (`Path.rglob` would raise); any other error to read a folder is raised."""

        def gone_only(e: OSError) -> None:
            if not isinstance(e, FileNotFoundError | NotADirectoryError):  # prefix names a key, not a folder
                raise e

        keys = []
        for folder, _, files in os.walk(self._path(prefix), onerror=gone_only):
            rel = Path(folder).relative_to(self.root).as_posix()
            keys += [f"{rel}/{f}" for f in files if not f.endswith(".part")]
        return sorted(keys)

    def children(self, prefix: str) -> list[str]:
        try:
            return sorted(os.listdir(self._path(prefix)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete_prefix(self, prefix: str) -> None:
        """Remove a key or a folder. What another process removes meanwhile is not an error.

        Two runners racing on a stage can delete the same attempt folder at once (the loser
        its own, the winner every attempt but its own); `shutil.rmtree` stops at the first
        file already gone, so it is run again on what is left until nothing is.
        """
        p = self._path(prefix)
        while True:
            try:
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
                return
            except FileNotFoundError:
                continue

    def local_dir(self, prefix: str) -> Path:
        p = self._path(prefix)
        if not p.is_dir():
            raise XitError(f"store {self.url}: no directory {prefix!r}")
        return p

    def sizes(self, prefix: str) -> dict[str, int]:
        base = self._path(prefix)
        out = {}
        for folder, _, files in os.walk(base):
            for f in files:
                p = Path(folder) / f
                try:
                    out[p.relative_to(base).as_posix()] = p.stat().st_size
                except FileNotFoundError:
                    continue
        return out

    local_digests = True

    def digests(self, prefix: str, rels: list[str]) -> dict[str, str]:
        """sha256 of files under prefix, each hashed once per file identity (device, inode, size, mtime, ctime):
        the identities and digests of a prefix are kept in ``<store>/.xit/digests/``, so a committed stage is
        hashed the first time it is read and again only if one of its files is touched (an edit changes the
        ctime, which nothing can set back)."""
        base = self._path(prefix)
        cache = self._digest_cache(prefix)
        out, changed = {}, False
        for rel in rels:
            p = base / check_key(rel)
            try:
                st = p.stat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            ident = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
            hit = cache.get(rel)
            if isinstance(hit, list) and hit[:5] == ident and len(hit) == 6:
                out[rel] = hit[5]
                continue
            out[rel] = _sha256(p)
            cache[rel] = [*ident, out[rel]]
            changed = True
        if changed:
            self._save_digest_cache(prefix, cache)
        return out

    def remember_digests(self, prefix: str, digests: dict[str, str]) -> None:
        """Record the sha256 of files just written under prefix (hashed before they were copied in), so the
        first read of a fresh commit does not hash gigabytes of model again."""
        cache = self._digest_cache(prefix)
        for rel, digest in digests.items():
            try:
                st = (self._path(prefix) / check_key(rel)).stat()
            except OSError:
                continue
            cache[rel] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest]
        self._save_digest_cache(prefix, cache)

    def _digest_cache_key(self, prefix: str) -> str:
        return f".xit/digests/{hashlib.sha256(prefix.encode()).hexdigest()[:32]}.json"

    def _digest_cache(self, prefix: str) -> dict:
        try:
            cache = json.loads(self._path(self._digest_cache_key(prefix)).read_text())
        except (OSError, ValueError):
            return {}
        return cache if isinstance(cache, dict) else {}

    def _save_digest_cache(self, prefix: str, cache: dict) -> None:
        try:
            self._atomic(self._digest_cache_key(prefix), lambda f: f.write(json.dumps(cache).encode()))
        except OSError:  # only a cache: next time hashes again
            pass


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
