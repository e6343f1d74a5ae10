"""Real servers for tests: a Prometheus Pushgateway and a Prometheus scraping it, as subprocesses.

Each server listens on 127.0.0.1 only, on a free port, keeps its state in a temporary folder, and
is stopped by the test (or fixture) that started it. `require_binary` skips a test whose server is
not installed, with the reason and the fix; under ``CI=true`` the test fails instead, so a CI
machine that lost its servers cannot pass by skipping. ``scripts/install-test-deps.sh`` installs them.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

INSTALL_HINT = (
    "run scripts/install-test-deps.sh as root (on Debian/Ubuntu: apt-get install prometheus prometheus-pushgateway "
    "shellcheck)"
)

# Debian's package names the Pushgateway binary prometheus-pushgateway; upstream's release calls it pushgateway.
BINARY_NAMES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "prometheus-pushgateway": ("prometheus-pushgateway", "pushgateway"),
}


def unavailable(reason: str, *, module_level: bool = False) -> NoReturn:
    """Skip the test for ``reason``, or fail it under ``CI=true``, where a skip would hide it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)


def require_binary(name: str) -> str:
    """The path of server binary ``name``; skip the test if it is missing, or fail it when ``CI=true``."""
    for candidate in BINARY_NAMES.get(name, (name,)):
        path = shutil.which(candidate)
        if path:
            return path
    unavailable(f"{name} is not installed (not on PATH); {INSTALL_HINT}")


def require_module(name: str, *, module_level: bool = False) -> Any:
    """Import a test dependency (a dev extra): skip without it, or fail when ``CI=true``."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        unavailable(f"{name} is not installed (pip install -e '.[dev]'): {e}", module_level=module_level)


def stop_process(proc: subprocess.Popen | None, timeout: float) -> None:
    """Stop a server process: SIGTERM, then SIGKILL after ``timeout`` seconds; wait for it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a client of moto's S3 needs in its environment (moto accepts any credentials), and what must not leak in
# from the developer's own AWS setup.
TEST_AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true"}
AWS_ENV_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


class MotoS3:
    """moto's S3 server on 127.0.0.1 at a free port; restartable on the same port (moto keeps its state in the
    process across restarts). Skips without moto, or fails under CI=true."""

    def __init__(self) -> None:
        self._server_cls = require_module("moto.server").ThreadedMotoServer
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: Any = None

    def start(self) -> MotoS3:
        self.server = self._server_cls(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self) -> Any:
        """A boto3 S3 client of this server, with the test credentials."""
        return require_module("boto3").client(
            "s3", endpoint_url=self.endpoint, region_name=TEST_AWS_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id=TEST_AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=TEST_AWS_ENV["AWS_SECRET_ACCESS_KEY"])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``: (status, body); HTTP errors are returned, connection errors raise `OSError`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Server:
    """A server subprocess listening on ``127.0.0.1:port``."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout_s: float = 30.0) -> Server:
        """Start the process and wait until ``/-/ready`` answers 200; fail with the server's log if it does not."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} on start:\n{self.log_tail()}")
            try:
                if http_get(f"{self.url}/-/ready", timeout=1.0)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {ready_timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        stop_process(self.proc, 10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _start_on_free_port(make: Any, tries: int = 3) -> Server:
    """Start ``make(port)`` on a free port, trying another port if the first was taken meanwhile."""
    error: Exception | None = None
    for _ in range(tries):
        server = make(free_port())
        try:
            return server.start()
        except RuntimeError as exc:
            if "address already in use" not in str(exc):
                raise
            error = exc
    raise RuntimeError(f"no free port after {tries} tries: {error}")


def start_pushgateway(workdir: Path, port: int | None = None) -> Server:
    """Start a Pushgateway on 127.0.0.1 (``port``, or a free one), its metrics in memory only.

    ``--persistence.file=`` matters: Debian's build defaults it to /var/lib/prometheus/pushgateway.data,
    which would share state between runs (and with a system Pushgateway).
    """
    binary = require_binary("prometheus-pushgateway")
    workdir.mkdir(parents=True, exist_ok=True)

    def make(p: int) -> Server:
        argv = [binary, f"--web.listen-address=127.0.0.1:{p}", "--persistence.file=", "--log.level=warn"]
        return Server("prometheus-pushgateway", argv, p, workdir / "pushgateway.log")

    return make(port).start() if port is not None else _start_on_free_port(make)


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["{target}"]
"""


def start_prometheus(workdir: Path, pushgateway: Server) -> Server:
    """Start a Prometheus on 127.0.0.1 that scrapes ``pushgateway`` every second with ``honor_labels: true``."""
    binary = require_binary("prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(target=f"127.0.0.1:{pushgateway.port}"))

    def make(p: int) -> Server:
        argv = [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{p}",
            "--log.level=warn",
        ]
        return Server("prometheus", argv, p, workdir / "prometheus.log")

    return _start_on_free_port(make)


def prometheus_query(prometheus: Server, query: str) -> list[dict[str, Any]]:
    """The result vector of an instant query against Prometheus' HTTP API."""
    status, body = http_get(f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
    answer = json.loads(body)
    if status != 200 or answer.get("status") != "success":
        raise RuntimeError(f"query {query!r} failed ({status}): {body[:500]!r}")
    return answer["data"]["result"]


def wait_for_series(prometheus: Server, query: str, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Poll ``query`` until it returns at least one series; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = prometheus_query(prometheus, query)
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"no series for {query!r} in Prometheus after {timeout_s:.0f} s:\n{prometheus.log_tail()}")
        time.sleep(0.25)
