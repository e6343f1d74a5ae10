"""The S3 store against moto in server mode: a real S3 HTTP API on localhost, stopped and restarted at will."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import AWS_ENV_UNSET, TEST_AWS_ENV, MotoS3, require_module

from xit.errors import WorkError, XitError
from xit.store import open_store
from xit.store.s3 import MiB, S3Store

boto3 = require_module("boto3", module_level=True)
botocore_exceptions = require_module("botocore.exceptions", module_level=True)

BUCKET = "xit-test"


class Moto(MotoS3):
    """The shared moto server, plus a restart in the background (moto keeps its state across restarts)."""

    def restart_later(self, seconds: float) -> threading.Thread:
        def later() -> None:
            time.sleep(seconds)
            self.start()

        t = threading.Thread(target=later, daemon=True)
        t.start()
        return t


@pytest.fixture(scope="module")
def moto() -> Iterator[Moto]:
    with pytest.MonkeyPatch.context() as mp:
        for var in AWS_ENV_UNSET:
            mp.delenv(var, raising=False)
        for var, value in TEST_AWS_ENV.items():
            mp.setenv(var, value)
        m = Moto()
        mp.setenv("XIT_S3_ENDPOINT", m.endpoint)
        m.start()
        try:
            raw_client().create_bucket(Bucket=BUCKET)
            yield m
        finally:
            m.stop()


@pytest.fixture
def url(moto: Moto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix in the bucket, and a fresh cache."""
    monkeypatch.setenv("XIT_CACHE", str(tmp_path / "cache"))
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:8]}"


def raw_client() -> Any:
    return boto3.session.Session().client("s3", endpoint_url=os.environ["XIT_S3_ENDPOINT"])


def full_key(url: str, key: str) -> str:
    return f"{url.removeprefix(f's3://{BUCKET}/')}/{key}"


def count_gets(store: S3Store) -> list[str]:
    """Record the key of every GetObject call the store's client makes."""
    gets: list[str] = []
    store.client.meta.events.register("before-parameter-build.s3.GetObject",
                                      lambda params, **kw: gets.append(params["Key"]))
    return gets


# --- URLs and keys


def test_urls(moto: Moto) -> None:
    s = open_store(f"s3://{BUCKET}/runs/a/")
    assert isinstance(s, S3Store) and s.url == f"s3://{BUCKET}/runs/a" and s.prefix == "runs/a"
    assert open_store(f"s3://{BUCKET}").url == f"s3://{BUCKET}"
    for bad in ("s3://", "s3:///runs", "s3://b/x"):
        with pytest.raises(XitError, match="not a valid S3 URL") as e:
            open_store(bad)
        assert "\n" not in str(e.value)
    for bad in (f"s3://{BUCKET}/../x", f"s3://{BUCKET}//x", f"s3://{BUCKET}/a/./b"):
        with pytest.raises(XitError, match="invalid prefix"):
            open_store(bad)


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "a/."])
def test_keys_cannot_escape_the_prefix(url: str, key: str) -> None:
    s = open_store(url)
    for op in (lambda: s.write_bytes(key, b"x"), lambda: s.read_bytes(key), lambda: s.exists(key),
               lambda: s.write_bytes_if_absent(key, b"x"), lambda: s.list(key), lambda: s.local_dir(key)):
        with pytest.raises(XitError, match="invalid store key"):
            op()


# --- the interface, as the local store does it


def test_roundtrip_listing_and_errors(url: str) -> None:
    s = open_store(url)
    s.write_text("stages/a/metrics.json", "{}")
    s.put_file(Path(__file__), "stages/a/model/t.py")
    s.write_bytes("stages/ab/other", b"not under stages/a")
    assert s.list("stages/a") == ["stages/a/metrics.json", "stages/a/model/t.py"]
    assert s.list("stages") == ["stages/a/metrics.json", "stages/a/model/t.py", "stages/ab/other"]
    assert s.list("nothing") == [] and s.list("stages/a/metrics.json") == []
    assert s.read_bytes("stages/a/model/t.py") == Path(__file__).read_bytes()
    assert s.read_text("stages/a/metrics.json") == "{}"
    assert s.exists("stages/a/metrics.json") and not s.exists("stages/a") and not s.exists("stages/a/nope")
    head = raw_client().head_object(Bucket=BUCKET, Key=full_key(url, "stages/a/model/t.py"))
    assert head["Metadata"]["sha256"] == hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

    s.delete_prefix("stages/a")
    assert s.list("stages/a") == [] and not s.exists("stages/a/metrics.json")
    assert s.list("stages") == ["stages/ab/other"]
    s.delete_prefix("stages/ab/other")  # a single object, like a file
    assert s.list("stages") == []
    with pytest.raises(XitError, match=rf"no object {url}/stages/a/metrics.json$") as e:
        s.read_text("stages/a/metrics.json")
    assert "\n" not in str(e.value)
    with pytest.raises(XitError, match="no directory"):
        s.local_dir("stages/a")


def test_multipart_upload_of_a_big_file(url: str, tmp_path: Path) -> None:
    s = S3Store(url, multipart_threshold=5 * MiB)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(11 * MiB))
    s.put_file(big, "model/big.bin")
    s.put_file(Path(__file__), "model/small.py")
    raw = raw_client()
    head = raw.head_object(Bucket=BUCKET, Key=full_key(url, "model/big.bin"))
    assert head["ETag"].endswith('-3"')  # 5 + 5 + 1 MiB parts
    assert head["Metadata"]["sha256"] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert "-" not in raw.head_object(Bucket=BUCKET, Key=full_key(url, "model/small.py"))["ETag"]
    assert s.read_bytes("model/big.bin") == big.read_bytes()
    assert (s.local_dir("model") / "big.bin").read_bytes() == big.read_bytes()


def test_checksum_mismatch_names_the_object(url: str) -> None:
    s = open_store(url)
    s.write_bytes("a/x.bin", b"the real bytes")
    raw, key = raw_client(), full_key(url, "a/x.bin")
    meta = raw.head_object(Bucket=BUCKET, Key=key)["Metadata"]
    raw.put_object(Bucket=BUCKET, Key=key, Body=b"something else", Metadata=meta)  # corrupted, old sha256 kept
    with pytest.raises(XitError, match=rf"checksum mismatch for {url}/a/x.bin: ") as e:
        s.read_bytes("a/x.bin")
    assert "\n" not in str(e.value)
    with pytest.raises(XitError, match=rf"checksum mismatch for {url}/a/x.bin: "):
        s.local_dir("a")
    assert not (s.cache_root / "a" / "x.bin").exists()  # nothing unverified lands in the cache
    assert not any(s.cache_base.joinpath("tmp").iterdir())

    s.write_bytes("a/x.bin", b"rewritten properly")
    assert s.read_bytes("a/x.bin") == b"rewritten properly"
    assert (s.local_dir("a") / "x.bin").read_bytes() == b"rewritten properly"


# --- the cache


def test_local_dir_cache(url: str, tmp_path: Path) -> None:
    s = open_store(url)
    assert isinstance(s, S3Store)
    s.write_bytes("m/one.txt", b"1")
    s.write_bytes("m/sub/two.txt", b"2")
    s.write_bytes("mm/elsewhere.txt", b"not under m")
    gets = count_gets(s)
    d = s.local_dir("m")
    assert d == tmp_path / "cache" / "s3" / BUCKET / s.prefix / "m"  # $XIT_CACHE/s3/<bucket>/<prefix>/...
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()) == ["one.txt", "sub/two.txt"]
    assert (d / "one.txt").read_text() == "1" and (d / "sub" / "two.txt").read_text() == "2"
    assert len(gets) == 2

    gets.clear()
    assert s.local_dir("m") == d and gets == []  # unchanged: no download at all
    fresh = S3Store(url)  # another process with the same cache
    fresh_gets = count_gets(fresh)
    assert fresh.local_dir("m") == d and fresh_gets == []

    s.write_bytes("m/one.txt", b"1 changed")
    assert (s.local_dir("m") / "one.txt").read_text() == "1 changed"
    assert gets == [full_key(url, "m/one.txt")]  # only the changed object

    gets.clear()
    raw_client().delete_object(Bucket=BUCKET, Key=full_key(url, "m/sub/two.txt"))
    s.local_dir("m")
    assert not (d / "sub").exists() and (d / "one.txt").exists() and gets == []

    (d / "one.txt").write_text("edited locally")  # a cached file someone touched is fetched again
    assert (s.local_dir("m") / "one.txt").read_text() == "1 changed" and len(gets) == 1

    # what a process killed mid-download leaves: the file without its sidecar (written last) is not trusted
    (d / "one.txt").write_bytes(b"half")
    s._meta_path("m/one.txt").unlink()
    assert (s.local_dir("m") / "one.txt").read_text() == "1 changed" and len(gets) == 2
    assert not any((tmp_path / "cache" / "tmp").iterdir())

    # a file becomes a directory remotely (and the reverse): the mirror follows
    s.delete_prefix("m/one.txt")
    s.write_bytes("m/one.txt/inner", b"now a directory")
    s.write_bytes("m/sub", b"now a file")
    assert (s.local_dir("m") / "one.txt" / "inner").read_text() == "now a directory"
    s.delete_prefix("m/one.txt")
    s.write_bytes("m/one.txt", b"a file again")
    assert (s.local_dir("m") / "one.txt").read_text() == "a file again" and (d / "sub").read_text() == "now a file"

    s.delete_prefix("m")
    with pytest.raises(XitError, match="no directory 'm'"):
        s.local_dir("m")
    assert not d.exists()


# --- conditional put


def test_write_bytes_if_absent(url: str) -> None:
    s = open_store(url)
    assert s.write_bytes_if_absent("stages/k/MANIFEST.json", b"first") is True
    assert s.write_bytes_if_absent("stages/k/MANIFEST.json", b"second") is False
    assert s.read_bytes("stages/k/MANIFEST.json") == b"first"
    head = raw_client().head_object(Bucket=BUCKET, Key=full_key(url, "stages/k/MANIFEST.json"))
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"first").hexdigest()


def test_write_bytes_if_absent_race(url: str) -> None:
    s = open_store(url)
    for i in range(10):
        key, start, results = f"race/{i}", threading.Barrier(2), {}

        def commit(name: str, key: str = key, start: threading.Barrier = start, results: dict = results) -> None:
            start.wait()
            results[name] = s.write_bytes_if_absent(key, name.encode())

        threads = [threading.Thread(target=commit, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [False, True], results
        winner = next(n for n, won in results.items() if won)
        assert s.read_bytes(key) == winner.encode()


def test_write_bytes_if_absent_conflict_and_lost_response(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s = open_store(url)
    assert isinstance(s, S3Store)
    real_put = s.client.put_object
    calls: list[str] = []

    def conflict_once(**kw: Any) -> Any:  # 409: another conditional write in flight; S3 says try again
        calls.append("put")
        if len(calls) == 1:
            raise botocore_exceptions.ClientError(
                {"Error": {"Code": "ConditionalRequestConflict", "Message": "busy"},
                 "ResponseMetadata": {"HTTPStatusCode": 409}}, "PutObject")
        return real_put(**kw)

    monkeypatch.setattr(s.client, "put_object", conflict_once)
    assert s.write_bytes_if_absent("k1", b"x") is True and len(calls) == 2

    def response_lost(**kw: Any) -> Any:  # the put lands, the answer does not: the retry sees 412 from itself
        calls.append("put")
        real_put(**kw)
        if len(calls) == 3:
            raise botocore_exceptions.ConnectionClosedError(endpoint_url="http://x")
        return None

    monkeypatch.setattr(s.client, "put_object", response_lost)
    assert s.write_bytes_if_absent("k2", b"mine") is True and len(calls) == 4
    monkeypatch.setattr(s.client, "put_object", real_put)
    assert s.write_bytes_if_absent("k2", b"theirs") is False

    def always_conflict(**kw: Any) -> Any:
        calls.append("put")
        raise botocore_exceptions.ClientError(
            {"Error": {"Code": "ConditionalRequestConflict", "Message": "busy"},
             "ResponseMetadata": {"HTTPStatusCode": 409}}, "PutObject")

    monkeypatch.setattr(s.client, "put_object", always_conflict)
    monkeypatch.setattr("xit.store.s3.random.uniform", lambda a, b: 0.0)  # no back-off sleeps
    assert s.write_bytes_if_absent("k2", b"late") is False  # conflicting until the end, and k2 is someone's
    with pytest.raises(XitError, match=r"cannot create .*k3: S3 answered 409 .* nothing was written"):
        s.write_bytes_if_absent("k3", b"x")  # ... while nothing there is not "taken": no false skip
    assert not s.exists("k3")


# --- failures: credentials, an endpoint that goes away


def test_no_credentials(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(XitError, match="no usable AWS credentials") as e:
        open_store(url).exists("x")
    assert "\n" not in str(e.value)


def test_endpoint_down_briefly_is_retried(url: str, moto: Moto, tmp_path: Path) -> None:
    s = S3Store(url, retry_seconds=20, multipart_threshold=5 * MiB)
    s.write_bytes("before", b"written before the outage")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * MiB))

    def in_outage(op: Any) -> Any:
        """Run op with the endpoint down for its first ~2 seconds; it must retry through."""
        moto.stop()
        restart, started = moto.restart_later(2), time.monotonic()
        try:
            return op()
        finally:
            assert time.monotonic() - started > 1  # it really met the outage
            restart.join()

    in_outage(lambda: s.write_bytes("during", b"written during the outage"))
    # moto kept its state across the restarts: what went up before and during the outage is there
    assert s.read_bytes("before") == b"written before the outage"
    assert in_outage(lambda: s.read_bytes("during")) == b"written during the outage"
    in_outage(lambda: s.put_file(big, "dir/big.bin"))  # a multipart upload
    d = in_outage(lambda: s.local_dir("dir"))
    assert (d / "big.bin").read_bytes() == big.read_bytes()


def test_endpoint_down_too_long_is_one_line_error(url: str, moto: Moto) -> None:
    s = S3Store(url, retry_seconds=1.5, max_attempts=2, connect_timeout=1)
    moto.stop()
    try:
        started = time.monotonic()
        with pytest.raises(WorkError, match="cannot reach the S3 endpoint .* gave up after") as e:
            s.read_bytes("anything")  # a failure during work (exit 1), not bad input
        assert 1.4 < time.monotonic() - started < 10
        assert "\n" not in str(e.value) and f"{url}/anything" in str(e.value)
    finally:
        moto.start()
    with pytest.raises(XitError, match="no object"):  # back up: an ordinary answer again
        s.read_bytes("anything")


def test_objects_are_checked_against_the_stage_manifest_not_only_their_tag(url: str) -> None:
    """An object overwritten without the sha256 tag passes the tag check; the manifest's sha256 catches it."""
    import json

    from xit.stage import DamagedStage, check_commit, is_committed, output_dir, read_metrics

    s = open_store(url)
    key, attempt = "intermediate-0123456789abcdef0123", "attempt-20260101T000000-abcdef01"
    files = {"metrics.json": b'{"score": 79.8}', "model/encoder/w.bin": b"weights" * 100}
    for rel, data in files.items():
        s.write_bytes(f"stages/{key}/{attempt}/{rel}", data)
    manifest = {"key": key, "kind": "intermediate", "attempt": attempt,
                "files": {rel: {"sha256": hashlib.sha256(d).hexdigest(), "size": len(d)} for rel, d in files.items()}}
    s.write_bytes(f"stages/{key}/MANIFEST.json", json.dumps(manifest).encode())
    assert check_commit(s, key) is None
    assert read_metrics(s, key) == {"score": 79.8}
    assert (output_dir(s, key, "model/encoder") / "w.bin").read_bytes() == files["model/encoder/w.bin"]

    raw = raw_client()  # overwritten by something that does not tag its objects, same sizes
    raw.put_object(Bucket=BUCKET, Key=full_key(url, f"stages/{key}/{attempt}/model/encoder/w.bin"), Body=b"x" * 700)
    with pytest.raises(DamagedStage, match=r"checksum mismatch for .*model/encoder/w.bin") as e:
        output_dir(s, key, "model/encoder")
    assert "\n" not in str(e.value) and not is_committed(s, key)

    s.write_bytes(f"stages/{key}/MANIFEST.json", json.dumps(manifest).encode())
    raw.put_object(Bucket=BUCKET, Key=full_key(url, f"stages/{key}/{attempt}/metrics.json"), Body=b'{"score": 03.0}')
    with pytest.raises(DamagedStage, match=r"checksum mismatch for .*metrics.json"):
        read_metrics(s, key)
    assert not is_committed(s, key)

    s.write_bytes(f"stages/{key}/MANIFEST.json", json.dumps(manifest).encode())
    raw.put_object(Bucket=BUCKET, Key=full_key(url, f"stages/{key}/{attempt}/metrics.json"), Body=b"{}")
    assert "metrics.json has 2 bytes, its manifest says 15" in (check_commit(s, key) or "")


def test_an_endpoint_that_never_answers_gives_up_within_the_budget(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A listener that accepts connections and never answers: each request is bounded by the timeouts, so the
    operation ends about retry_seconds later (not minutes), the error names the real tries, and it is a
    failure during work (exit 1), not bad input."""
    import socket

    for var in AWS_ENV_UNSET:
        monkeypatch.delenv(var, raising=False)
    for var, value in TEST_AWS_ENV.items():
        monkeypatch.setenv(var, value)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes connections; nobody ever reads or answers
    monkeypatch.setenv("XIT_S3_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setenv("XIT_CACHE", str(tmp_path / "cache"))
    try:
        s = S3Store(f"s3://{BUCKET}/silent", retry_seconds=4, max_attempts=2)
        assert s.read_timeout <= 1.0 and s.connect_timeout <= 1.0
        started = time.monotonic()
        with pytest.raises(WorkError, match=r"gave up after .*\((\d+) tries\)") as e:
            s.read_bytes("anything")
        took = time.monotonic() - started
        assert 3.5 < took < 12
        tries = int(re.search(r"\((\d+) tries\)", str(e.value)).group(1))
        assert tries >= 4  # several of our tries, each with botocore's 2 attempts: all counted
    finally:
        silent.close()
