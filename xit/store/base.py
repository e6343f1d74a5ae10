"""The store interface every backend implements."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from xit.errors import WorkError, XitError


class ChecksumError(WorkError):
    """An object's bytes do not match the checksum it was written with."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


def check_key(key: str) -> str:
    """Reject keys that could leave the store: absolute paths, '..', empty parts, backslashes."""
    p = PurePosixPath(key)
    if not key or p.is_absolute() or "\\" in key or any(part in ("", ".", "..") for part in key.split("/")):
        raise XitError(f"invalid store key {key!r}: keys are relative paths without '.' or '..' parts")
    return key


class Store:
    url: str

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write atomically: readers see the old object or the new one, never a part."""
        raise NotImplementedError

    def write_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """Create the object only if no object has that key (atomically); False if one exists.

        This is how a stage commits its manifest: two runners racing on one stage cannot
        both commit.
        """
        raise NotImplementedError

    def put_file(self, src: Path, key: str) -> None:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        """Keys under prefix (a "directory"), sorted."""
        raise NotImplementedError

    def children(self, prefix: str) -> list[str]:
        """The names directly under prefix/ (files and "folders"), temporary ``.part`` files included."""
        return sorted({k[len(prefix) + 1:].split("/", 1)[0] for k in self.list(prefix)})

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under prefix/ and a key named prefix; idempotent, and safe when
        another process deletes the same keys at the same time."""
        raise NotImplementedError

    def local_dir(self, prefix: str) -> Path:
        """A local directory with the files under prefix (in place, or fetched into a cache)."""
        raise NotImplementedError

    def sizes(self, prefix: str) -> dict[str, int]:
        """{path relative to prefix: size} of every file under prefix/ (cheap: a listing, no content read)."""
        raise NotImplementedError

    # Whether `digests` is cheap (files at hand, hashes cached) or needs every object downloaded first.
    local_digests = False

    def remember_digests(self, prefix: str, digests: dict[str, str]) -> None:
        """Note the sha256 of files just written under prefix, where the backend caches digests (else nothing)."""

    def digests(self, prefix: str, rels: list[str]) -> dict[str, str]:
        """{rel: sha256} of the files under prefix/ as `local_dir(prefix)` gave them (call it first), for the
        rels there are. Local store: hashed, cached by file identity; S3: what each verified download hashed."""
        raise NotImplementedError

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode()

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode())
