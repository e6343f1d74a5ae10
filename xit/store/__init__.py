"""Stores: where stage outputs live. One interface, backends per URL scheme.

`open_store("./xit-runs")` or `open_store("file:///data/xit")` gives a `LocalStore`;
`open_store("s3://bucket/prefix")` an `S3Store` (xit.store.s3, needs boto3).
Keys are relative POSIX paths inside the store; they can never escape it.
"""

from __future__ import annotations

from xit.errors import XitError
from xit.store.base import ChecksumError, Store, check_key
from xit.store.local import LocalStore

__all__ = ["ChecksumError", "LocalStore", "Store", "check_key", "open_store"]


def open_store(url: str) -> Store:
    if url.startswith("file://"):
        return LocalStore(url[len("file://"):])
    if url.startswith("s3://"):
        from xit.store.s3 import S3Store

        return S3Store(url)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise XitError(f"store {url!r}: unsupported scheme {scheme!r} (use a local directory or s3://bucket/prefix)")
    return LocalStore(url)
