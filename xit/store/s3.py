"""A store in an S3 bucket, or any S3-compatible service (MinIO, Ceph, moto): ``s3://bucket/prefix``.

Objects are ``<prefix>/<key>``; `check_key` keeps every key inside the prefix.

Credentials come from the standard boto3 chain (environment, profile, container or pod role).
The endpoint is ``$XIT_S3_ENDPOINT`` when set (path-style addressing, for MinIO and moto), else
whatever boto3 resolves itself (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, AWS).

Robustness:

* retries: botocore retries each request ("standard" mode: throttling, 5xx, connection errors);
  around that, every store operation is retried with exponential backoff while the error stays
  transient, until ``retry_seconds`` (30 s by default) have passed. This also covers what botocore
  does not retry: a response body cut off while it is read, a multipart upload failing half way.
  Each request's connect and read timeouts are capped at retry_seconds / (2 × max_attempts), so an
  endpoint that accepts connections but never answers gives up after about retry_seconds too; the
  error counts every request sent ("N tries") and is a failure during work (exit 1);
* checksums: every object written carries its sha256 in ``x-amz-meta-sha256``; reads and the
  cache verify it, a mismatch is an `XitError` naming the object;
* big files go up as multipart uploads (``multipart_threshold``, 64 MiB by default);
* `local_dir` mirrors a prefix into a cache (``$XIT_CACHE``, default ``~/.cache/xit``, under
  ``s3/<bucket>/<prefix>/``): an object whose ETag is unchanged is not fetched again, objects
  deleted remotely disappear, a download lands by rename so a killed process never leaves a
  partial file that counts as cached;
* `write_bytes_if_absent` is a conditional put (``If-None-Match: *``), atomic on the server.

boto3 is imported lazily: ``import xit.store`` works without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from xit.errors import WorkError, XitError
from xit.files import atomic_write, sha256_file
from xit.store.base import ChecksumError, Store, check_key

T = TypeVar("T")

MiB = 1 << 20
MIN_PART = 5 * MiB  # S3's smallest part (all but the last)
_URL = re.compile(r"s3://([^/]*)(?:/(.*))?")
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_SHA_META = "sha256"  # stored as x-amz-meta-sha256
_WRITER_META = "xit-writer"  # who created an object with write_bytes_if_absent
_TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "SlowDown",
    "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded", "RequestThrottled",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalError",
    "ServiceUnavailable", "OperationAborted",
})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CREDENTIAL_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                               "TokenRefreshRequired"})


def _one_line(e: BaseException | str) -> str:
    return " ".join(str(e).split())


def _code(e: Any) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _status(e: Any) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _transient(e: BaseException | None) -> bool:
    """Worth trying again: throttling, 5xx, a connection refused/reset/timed out, a body cut short."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
        SSLError,
    )

    while e is not None:
        if isinstance(e, XitError | SSLError):
            return False
        if isinstance(e, ConnectionError | HTTPClientError | IncompleteReadError):
            return True
        if isinstance(e, ClientError):
            status = _status(e)
            return (status >= 500 and status != 501) or status == 429 or _code(e) in _TRANSIENT_CODES
        e = e.__cause__
    return False


def _is_sdk_error(e: BaseException) -> bool:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(e, BotoCoreError | ClientError | Boto3Error)


class S3Store(Store):
    """A store at ``s3://bucket/prefix``.

    Args:
        url: ``s3://bucket`` or ``s3://bucket/prefix``.
        multipart_threshold: files at least this big are uploaded in parts (at least 5 MiB).
        multipart_chunksize: the part size (default: the threshold).
        max_attempts: attempts botocore makes per request (its "standard" retry mode).
        retry_seconds: how long a store operation keeps retrying transient errors in all.
        connect_timeout, read_timeout: per request, in seconds.
        cache_dir: where `local_dir` mirrors objects (default ``$XIT_CACHE`` or ``~/.cache/xit``).
        max_concurrency: parallel part uploads / file downloads.
    """

    def __init__(
        self,
        url: str,
        *,
        multipart_threshold: int = 64 * MiB,
        multipart_chunksize: int | None = None,
        max_attempts: int = 3,
        retry_seconds: float = 30.0,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        cache_dir: str | Path | None = None,
        max_concurrency: int = 8,
    ):
        m = _URL.fullmatch(url)
        bucket = m.group(1) if m else ""
        prefix = (m.group(2) or "").rstrip("/") if m else ""
        if not bucket or not _BUCKET.fullmatch(bucket):
            raise XitError(f"store {url!r}: not a valid S3 URL (expected s3://bucket or s3://bucket/prefix)")
        if prefix:
            try:
                check_key(prefix)
            except XitError:
                raise XitError(f"store {url!r}: invalid prefix {prefix!r} (no empty, '.' or '..' parts)") from None
        chunksize = multipart_chunksize or multipart_threshold
        if multipart_threshold < MIN_PART or chunksize < MIN_PART:
            raise XitError(f"store {url}: multipart threshold and part size must be at least 5 MiB")
        try:
            import boto3.session
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError:
            raise XitError(f"store {url}: S3 stores need boto3 (pip install boto3)") from None

        self.bucket, self.prefix = bucket, prefix
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.retry_seconds = float(retry_seconds)
        self.max_concurrency = max(1, int(max_concurrency))
        self.backoff_base, self.backoff_max = 0.2, 5.0
        endpoint = os.environ.get("XIT_S3_ENDPOINT") or None
        # Each request is bounded so that botocore's own attempts fit in half the retry budget: an endpoint that
        # accepts connections and never answers costs retry_seconds and a few seconds more, not minutes.
        attempts = max(1, int(max_attempts))
        per_request = max(1.0, self.retry_seconds / (2 * attempts))
        self.connect_timeout, self.read_timeout = min(connect_timeout, per_request), min(read_timeout, per_request)
        config = Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=max(10, 2 * self.max_concurrency),
            s3={"addressing_style": "path"} if endpoint else None,
            user_agent_extra="xit",
        )
        try:
            self.client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
        except Exception as e:  # an unknown AWS_PROFILE, a malformed endpoint URL, a broken config file
            raise XitError(f"store {self.url}: cannot set up the S3 client: {_one_line(e)}") from e
        # Every HTTP request sent (botocore's retries included) is counted per thread: an error names real tries.
        self._sent = threading.local()
        self.client.meta.events.register("before-send.s3", self._count_request)
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=chunksize,
            max_concurrency=self.max_concurrency, preferred_transfer_client="classic",
        )
        base = Path(cache_dir or os.environ.get("XIT_CACHE") or "~/.cache/xit").expanduser()
        self.cache_base = base
        self.cache_root = base.joinpath("s3", bucket, *prefix.split("/") if prefix else ())
        self._meta_root = base / "s3-meta" / bucket  # sidecars, named by a hash of the object key
        self._tmp_root = base / "tmp"

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    # --- naming

    def _key(self, key: str) -> str:
        """The full object key of a store key."""
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _full(self, rel: str) -> str:
        """The full object key of a key as listed (not checked: a listed object may have any key)."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def s3_url(self, key: str) -> str:
        """The s3:// URL of a store key."""
        return f"{self.url}/{key}"

    # --- retries and errors

    def _count_request(self, **kwargs: Any) -> None:
        self._sent.n = getattr(self._sent, "n", 0) + 1  # returns None: the request is sent as usual

    def _call(self, what: str, key: str, fn: Callable[[], T]) -> T:
        """Run fn, retrying transient errors with exponential backoff for up to retry_seconds; errors → XitError.

        Each try is one boto3 call, which botocore may itself retry (max_attempts, a few seconds of
        backoff at most), so an operation gives up at most a few seconds after retry_seconds.
        Errors that are not transient (missing object, access denied, checksum) are not retried.
        """
        start = time.monotonic()
        deadline, delay, attempts = start + self.retry_seconds, self.backoff_base, 0
        self._sent.n = 0
        while True:
            attempts += 1
            try:
                return fn()
            except Exception as e:
                left = deadline - time.monotonic()
                if _transient(e) and left > 0:
                    time.sleep(min(left, delay * random.uniform(0.5, 1.0)))
                    delay = min(2 * delay, self.backoff_max)
                    continue
                if isinstance(e, XitError) or not _is_sdk_error(e):
                    raise
                tries = max(attempts, getattr(self._sent, "n", 0))
                raise self._error(what, key, e, tries, time.monotonic() - start) from e

    def _error(self, what: str, key: str, e: Exception, attempts: int, seconds: float) -> XitError:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        where = self.s3_url(key) if key else self.url
        if isinstance(e, NoCredentialsError | PartialCredentialsError):
            return XitError(f"store {self.url}: no usable AWS credentials to {what} {where} ({_one_line(e)}); set "
                            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or run with an IAM role")
        if isinstance(e, ClientError):
            code, msg = _code(e), _one_line(e.response.get("Error", {}).get("Message", "") or "")
            if code in _MISSING_CODES:
                return XitError(f"store {self.url}: no object {where}")
            if code == "NoSuchBucket":
                return XitError(f"store {self.url}: no bucket {self.bucket!r}")
            if code in _CREDENTIAL_CODES:
                return XitError(f"store {self.url}: the AWS credentials were rejected ({code}) to {what} {where}")
            if code in ("AccessDenied", "403", "Forbidden"):
                return XitError(f"store {self.url}: access denied to {what} {where}")
            tail = f" (gave up after {seconds:.1f}s, {attempts} tries)" if _transient(e) else ""
            return WorkError(f"store {self.url}: cannot {what} {where}{tail}: {code or _status(e)} {msg}".rstrip())
        # A failure during work (exit 1), not bad input: the endpoint went away or stopped answering.
        if _transient(e):
            return WorkError(f"store {self.url}: cannot reach the S3 endpoint {self.client.meta.endpoint_url} to "
                             f"{what} {where}; gave up after {seconds:.1f}s ({attempts} tries): {_one_line(e)}")
        return WorkError(f"store {self.url}: cannot {what} {where}: {_one_line(e)}")

    def _verify(self, key: str, meta: dict[str, str], digest: str) -> None:
        """Compare a downloaded object's sha256 with the one it was written with (objects without one pass)."""
        expected = meta.get(_SHA_META)
        if expected is not None and expected.lower() != digest:
            raise ChecksumError(f"checksum mismatch for {self.s3_url(key)}: stored sha256 {expected}, downloaded "
                                f"{digest} (the object changed outside xit or was corrupted)", key)

    # --- the interface

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        full = self._key(key)

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=full)
                return True
            except ClientError as e:
                if _status(e) == 404 or _code(e) in _MISSING_CODES:
                    return False
                raise

        return self._call("check", key, head)

    def read_bytes(self, key: str) -> bytes:
        full = self._key(key)

        def get() -> tuple[dict[str, Any], bytes]:
            resp = self.client.get_object(Bucket=self.bucket, Key=full)
            return resp, resp["Body"].read()

        resp, data = self._call("read", key, get)
        self._verify(key, resp.get("Metadata") or {}, hashlib.sha256(data).hexdigest())
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        full, meta = self._key(key), {_SHA_META: hashlib.sha256(data).hexdigest()}
        self._call("write", key, lambda: self.client.put_object(Bucket=self.bucket, Key=full, Body=data,
                                                                Metadata=meta))

    def write_bytes_if_absent(self, key: str, data: bytes) -> bool:
        """A conditional put (If-None-Match: *): True if this call created the object, False if one existed.

        A put whose response was lost and that is then retried gets 412 from its own success; the
        object carries a random writer token, so that case still answers True.
        """
        from botocore.exceptions import ClientError

        full, token = self._key(key), uuid.uuid4().hex
        meta = {_SHA_META: hashlib.sha256(data).hexdigest(), _WRITER_META: token}

        def put() -> bool:
            for conflict in range(6):
                try:
                    self.client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*", Metadata=meta)
                    return True
                except ClientError as e:
                    status, code = _status(e), _code(e)
                    if status == 412 or code == "PreconditionFailed":
                        return self._writer(full) == token
                    if status == 501 or code == "NotImplemented":
                        raise XitError(f"store {self.url}: this S3 service does not support conditional writes "
                                       f"(If-None-Match), which committing {self.s3_url(key)} needs") from e
                    if status != 409 and code != "ConditionalRequestConflict":
                        raise
                    # 409: another write to the key is in flight; S3 asks to try again, then 412 tells who won
                    time.sleep(0.1 * 2**conflict * random.uniform(0.5, 1.0))
            # Still conflicting: whoever wrote it won; with nothing there, nobody did, and "taken" would be a lie.
            writer = self._writer(full)
            if writer is None:
                raise XitError(f"store {self.url}: cannot create {self.s3_url(key)}: S3 answered 409 "
                               "(a conflicting write in flight) six times and nothing was written")
            return writer == token

        return self._call("create", key, put)

    def _writer(self, full: str) -> str | None:
        """The writer token of the object at `full` ("" if it has none), None if there is no object."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as e:
            if _status(e) == 404:
                return None
            raise
        return (head.get("Metadata") or {}).get(_WRITER_META, "")

    def put_file(self, src: Path, key: str) -> None:
        from boto3.s3.transfer import create_transfer_manager

        full, src = self._key(key), Path(src)
        extra = {"Metadata": {_SHA_META: sha256_file(src)}}

        def upload() -> None:
            with create_transfer_manager(self.client, self.transfer_config) as tm:
                tm.upload(str(src), self.bucket, full, extra_args=extra).result()

        self._call("upload", key, upload)

    def _objects(self, prefix: str) -> dict[str, tuple[str, int]]:
        """{key relative to the store: (etag, size)} of the objects under prefix/ (not folder markers)."""
        full = self._key(prefix) + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0

        def scan() -> dict[str, tuple[str, int]]:
            found = {}
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    if not obj["Key"].endswith("/"):
                        found[obj["Key"][cut:]] = (obj.get("ETag", ""), int(obj.get("Size", 0)))
            return found

        return self._call("list", prefix, scan)

    def list(self, prefix: str) -> list[str]:
        return sorted(self._objects(prefix))

    def sizes(self, prefix: str) -> dict[str, int]:
        cut = len(prefix) + 1
        return {k[cut:]: size for k, (_, size) in self._objects(prefix).items()}

    def digests(self, prefix: str, rels: list[str]) -> dict[str, str]:
        """The sha256 each cached file was verified with when downloaded (files touched since: left out)."""
        out = {}
        for rel in rels:
            full = f"{prefix}/{rel}"
            path = self.cache_root / full
            try:
                meta = json.loads(self._meta_path(full).read_text())
                st = path.stat()
            except (OSError, ValueError):
                continue
            if meta.get("size") == st.st_size and meta.get("mtime_ns") == st.st_mtime_ns and meta.get("sha256"):
                out[rel] = str(meta["sha256"])
        return out

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under prefix/, and an object named prefix itself."""
        keys = [self._full(k) for k in self._objects(prefix)] + [self._key(prefix)]
        for i in range(0, len(keys), 1000):
            batch = {"Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True}
            resp = self._call("delete", prefix, lambda b=batch: self.client.delete_objects(Bucket=self.bucket,
                                                                                            Delete=b))
            if resp.get("Errors"):
                err = resp["Errors"][0]
                cut = len(self.prefix) + 1 if self.prefix else 0
                raise XitError(f"store {self.url}: cannot delete {self.s3_url(err.get('Key', '')[cut:])}: "
                               f"{err.get('Code', '')} {_one_line(err.get('Message', ''))} "
                               f"({len(resp['Errors'])} object(s) not deleted)")

    # --- the cache

    def local_dir(self, prefix: str) -> Path:
        """Mirror the objects under prefix into the cache, verified, and return that directory.

        Unchanged objects (same ETag, cached file untouched) are not fetched again; cached files
        whose objects are gone are removed.
        """
        check_key(prefix)
        with self._lock(prefix):
            remote = self._objects(prefix)
            if not remote:
                self._forget(prefix)
                raise XitError(f"store {self.url}: no directory {prefix!r}")
            parents = {"/".join(k.split("/")[:i]) for k in remote for i in range(1, k.count("/") + 1)}
            for rel in sorted(remote):
                try:
                    check_key(rel)
                except XitError:
                    raise XitError(f"store {self.url}: object {self.s3_url(rel)} has a key that cannot be a "
                                   "local path") from None
                if rel in parents:
                    raise XitError(f"store {self.url}: {self.s3_url(rel)} is both an object and a prefix, "
                                   "so it cannot be mirrored into a directory")
            todo = [rel for rel, (etag, size) in sorted(remote.items()) if not self._cached(rel, etag, size)]
            for rel in todo:
                self._make_room(rel)
            if todo:
                self._tmp_root.mkdir(parents=True, exist_ok=True)
                self._clean_tmp()
                with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(todo))) as pool:
                    for f in [pool.submit(self._fetch, rel) for rel in todo]:
                        f.result()
            self._sweep(prefix, remote)
        return self.cache_root / prefix

    @contextlib.contextmanager
    def _lock(self, prefix: str) -> Iterator[None]:
        """One process at a time mirrors a prefix (two workers never download the same model twice)."""
        try:
            import fcntl
        except ImportError:  # not POSIX: downloads stay atomic, only duplicated work is possible
            yield
            return
        locks = self.cache_base / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(f"{self.bucket}/{self.prefix}/{prefix}".encode()).hexdigest()[:32]
        with open(locks / f"{name}.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _meta_path(self, rel: str) -> Path:
        """The sidecar of a cached object: its ETag, sha256, and the size and mtime of the cached file.

        Kept outside the mirrored tree (which holds only the objects' files), flat, so no key can clash with it.
        """
        h = hashlib.sha256(self._key(rel).encode()).hexdigest()
        return self._meta_root / h[:2] / f"{h}.json"

    def _cached(self, rel: str, etag: str, size: int) -> bool:
        """The cached file is this version of the object and nobody touched it since."""
        path = self.cache_root / rel
        try:
            meta = json.loads(self._meta_path(rel).read_text())
            st = path.stat()
        except (OSError, ValueError):
            return False
        return (path.is_file() and meta.get("etag") == etag and meta.get("size") == size == st.st_size
                and meta.get("mtime_ns") == st.st_mtime_ns)

    def _make_room(self, rel: str) -> None:
        """Clear what stands in the way of a file at rel: a file where a directory is needed, or the reverse."""
        path = self.cache_root / rel
        for i in range(1, rel.count("/") + 1):
            parent = "/".join(rel.split("/")[:i])
            if (self.cache_root / parent).is_file() or (self.cache_root / parent).is_symlink():
                (self.cache_root / parent).unlink()
                self._meta_path(parent).unlink(missing_ok=True)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)

    def _fetch(self, rel: str) -> None:
        """Download one object into the cache: to a temp file, verified, renamed into place, then its sidecar."""
        full, dst, sidecar = self._key(rel), self.cache_root / rel, self._meta_path(rel)

        def get() -> dict[str, Any]:
            fd, tmp = tempfile.mkstemp(dir=self._tmp_root, prefix="get-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    resp = self.client.get_object(Bucket=self.bucket, Key=full)
                    h = hashlib.sha256()
                    for chunk in resp["Body"].iter_chunks(MiB):
                        h.update(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                self._verify(rel, resp.get("Metadata") or {}, h.hexdigest())
                sidecar.unlink(missing_ok=True)  # no sidecar, not cached: a crash from here on refetches
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, dst)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return {"etag": resp.get("ETag", ""), "sha256": h.hexdigest()}

        info = self._call("download", rel, get)
        st = dst.stat()
        self._write_sidecar(sidecar, {**info, "size": st.st_size, "mtime_ns": st.st_mtime_ns})

    def _write_sidecar(self, path: Path, info: dict[str, Any]) -> None:
        atomic_write(path, lambda f: f.write(json.dumps(info).encode()))

    def _sweep(self, prefix: str, remote: dict[str, tuple[str, int]]) -> None:
        """Remove cached files (and their sidecars) under prefix whose objects are gone, then empty directories."""
        base = self.cache_root / prefix
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base, topdown=False):
            d = Path(dirpath)
            for name in filenames:
                rel = (d / name).relative_to(self.cache_root).as_posix()
                if rel not in remote:
                    (d / name).unlink(missing_ok=True)
                    with contextlib.suppress(XitError):  # a stray file whose name is no key has no sidecar
                        self._meta_path(rel).unlink(missing_ok=True)
            for name in dirnames:
                with contextlib.suppress(OSError):
                    (d / name).rmdir()  # only if empty

    def _forget(self, prefix: str) -> None:
        """Drop the cached copy of a prefix that no longer exists remotely."""
        self._sweep(prefix, {})
        with contextlib.suppress(OSError):
            (self.cache_root / prefix).rmdir()

    def _clean_tmp(self, max_age: float = 86400.0) -> None:
        """Remove downloads that a killed process left in the temp folder a day or more ago."""
        with contextlib.suppress(OSError):
            for p in self._tmp_root.glob("get-*.part"):
                with contextlib.suppress(OSError):
                    if time.time() - p.stat().st_mtime > max_age:
                        p.unlink()
