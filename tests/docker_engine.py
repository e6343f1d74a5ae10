"""A real Docker engine for the image tests, a base image made without a registry, and image builds.

* `find_or_start_engine`: the Docker engine that answers ``docker info``; if none does and this is root
  with Debian's ``dockerd`` installed, one started here (``--iptables=false --storage-driver=vfs``, its own
  log file), which `DockerEngine.stop` stops again at the end of the session. Containers use the host's
  network (``--network host``): with ``--iptables=false`` the bridge network reaches nothing.
* `ensure_base_image`: no registry is reachable, so the base image is a Debian 12 rootfs made with
  ``debootstrap`` (minbase, python3, python3-venv, ca-certificates) and ``docker import``-ed; made once
  and kept in the engine for later sessions.
* `prepare_build_inputs`: images/wheels/ (git-ignored), the images' optional local build inputs: the CPU
  torch wheel of this machine (hard-linked) and a pip.conf with what pip on this host needs to reach the
  package index, taken from the host's own pip settings (the CA bundle; http(s) indexes). Nothing of it
  is committed, and the images' final stage copies none of it.

Whatever is missing skips the tests with the reason and the fix; under ``CI=true`` they fail instead.
``scripts/install-test-deps.sh`` installs docker.io and debootstrap.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import filecmp
import functools
import glob
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from servers import stop_process, unavailable

ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / "images" / "wheels"
BASE_IMAGE = "xit-test-base:bookworm"
# Inside the build stages images/wheels/ is /build/wheels (images/*.Dockerfile).
BUILD_WHEELS = "/build/wheels"
INSTALL_HINT = "run scripts/install-test-deps.sh as root (on Debian: apt-get install docker.io debootstrap)"
# One session at a time starts an engine, makes the base image or builds: other sessions wait here.
LOCK_FILE = Path(tempfile.gettempdir()) / "xit-docker-tests.lock"


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """Hold the lock the image tests of concurrent sessions share (engine start, base image, builds)."""
    with LOCK_FILE.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class DockerEngine:
    """The ``docker`` client and the engine it talks to; ``proc`` is set when this session started it."""

    client: str
    env: dict[str, str]
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def docker(self, *args: str, check: bool = True, timeout: float = 300,
               stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS``; with ``check`` a failure raises with the command's output."""
        r = subprocess.run([self.client, *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                           stdin=stdin if stdin is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited with {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def has_image(self, ref: str) -> bool:
        return self.image_id(ref) is not None

    def build(self, dockerfile: Path, tag: str, build_args: dict[str, str], log_path: Path,
              timeout: float = 3600) -> None:
        """``docker build --network host`` from the repository root; fail the test with the log's tail."""
        argv = [self.client, "build", "--network", "host", "-f", str(dockerfile), "-t", tag]
        for k, v in build_args.items():
            argv += ["--build-arg", f"{k}={v}"]
        argv.append(str(ROOT))
        with log_path.open("w") as log:
            log.write(" ".join(argv) + "\n")
            log.flush()
            try:
                r = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                                   timeout=timeout)
            except subprocess.TimeoutExpired:
                pytest.fail(f"docker build of {tag} took over {timeout:.0f} s; log {log_path}:\n{tail(log_path)}")
        if r.returncode != 0:
            pytest.fail(f"docker build of {tag} failed ({r.returncode}); log {log_path}:\n{tail(log_path)}")

    def image_id(self, ref: str) -> str | None:
        r = self.docker("image", "inspect", "--format", "{{.Id}}", ref, check=False, timeout=60)
        return r.stdout.strip() if r.returncode == 0 else None

    def remove_dangling(self, labels: dict[str, str]) -> None:
        """Remove the untagged images with these labels (earlier builds' images, replaced since), unless in use.

        On the vfs storage driver every layer is a full copy, so each replaced image holds GBs. Only images
        carrying ``labels`` are touched: `docker image prune` would also take the build stages' images,
        which are the build cache.
        """
        argv = ["images", "-q", "--no-trunc", "--filter", "dangling=true"]
        for k, v in labels.items():
            argv += ["--filter", f"label={k}={v}"]
        for image in sorted(set(self.docker(*argv, timeout=60).stdout.split())):
            self.docker("image", "rm", image, check=False, timeout=600)

    def stop(self) -> None:
        """Stop the engine if this session started it (SIGTERM, SIGKILL after 60 s); else leave it alone."""
        stop_process(self.proc, 60)


def _client_env(client: str) -> dict[str, str]:
    env = dict(os.environ)
    # The legacy builder where BuildKit is not there: docker >= 23 builds with BuildKit through the buildx
    # plugin, which Debian's docker.io (20.10) and a bare static client lack.
    if subprocess.run([client, "buildx", "version"], capture_output=True, env=env, timeout=60).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"
    return env


def _engine_answers(client: str, env: dict[str, str]) -> bool:
    try:
        return subprocess.run([client, "info"], capture_output=True, env=env, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def find_or_start_engine(workdir: Path) -> DockerEngine:
    """The running Docker engine, or one started here; skip (fail under CI=true) when neither can be had."""
    client = shutil.which("docker")
    if client is None:
        unavailable(f"the docker client is not installed; {INSTALL_HINT}")
    env = _client_env(client)
    with exclusive():
        if _engine_answers(client, env):
            return DockerEngine(client, env)
        dockerd = shutil.which("dockerd") or next((p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd")
                                                    if os.access(p, os.X_OK)), None)
        if dockerd is None:
            unavailable(f"no Docker engine answers `docker info` and dockerd is not installed; {INSTALL_HINT}")
        if os.geteuid() != 0:
            unavailable("no Docker engine answers `docker info`, and starting dockerd needs root")
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "dockerd.log"
        # The default socket and data root, so that the base image and the build cache outlive the session.
        argv = [dockerd, "--iptables=false", "--storage-driver=vfs"]
        with log_path.open("ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        engine = DockerEngine(client, env, log_path, proc)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                unavailable(f"dockerd exited with {proc.returncode} on start; log {log_path}:\n{tail(log_path)}")
            if _engine_answers(client, env):
                return engine
            time.sleep(0.5)
        engine.stop()
        unavailable(f"dockerd did not answer `docker info` within 90 s; log {log_path}:\n{tail(log_path)}")


def debian_mirror() -> str | None:
    """The Debian mirror this host's apt uses (None: not a Debian host, or none found; debootstrap's default).

    Read from deb822 sources (``/etc/apt/sources.list.d/*.sources``) or one-line ``sources.list`` entries:
    the first ``deb`` source of a release suite (not only -updates, -backports, -security) outside the
    security archive.
    """
    try:
        os_release = Path("/etc/os-release").read_text()
    except OSError:
        return None
    if not re.search(r"^ID=\"?debian\"?$", os_release, re.M):
        return None
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", Path(path).read_text()):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            suites = fields.get("Suites", "").split()
            if "deb" not in fields.get("Types", "").split() or not suites:
                continue
            if fields.get("Enabled", "yes").lower() == "no" or all("-" in s for s in suites):
                continue
            for uri in fields.get("URIs", "").split():
                if "security" not in uri:
                    return uri
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line.strip())
            if m and "security" not in m.group(1) and "-" not in m.group(2):
                return m.group(1)
    return None


def ensure_base_image(engine: DockerEngine, workdir: Path) -> str:
    """``xit-test-base:bookworm``: a bare Debian 12 rootfs with python3 and python3-venv (made once)."""
    with exclusive():
        if engine.has_image(BASE_IMAGE):
            return BASE_IMAGE
        debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap"
                                                      if os.access("/usr/sbin/debootstrap", os.X_OK) else None)
        if debootstrap is None:
            unavailable(f"debootstrap is not installed (it makes the images' base without a registry); {INSTALL_HINT}")
        if os.geteuid() != 0:
            unavailable("debootstrap needs root to make the images' base image")
        workdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=workdir))
        rootfs = tmp / "rootfs"  # 0755: a mkdtemp folder (0700) as the image's / would shut out the user
        rootfs.mkdir(mode=0o755)
        rootfs.chmod(0o755)
        log_path = workdir / "debootstrap.log"
        argv = [debootstrap, "--variant=minbase", "--include=python3,python3-venv,ca-certificates", "bookworm",
                str(rootfs)]
        mirror = debian_mirror()
        if mirror:
            argv.append(mirror)
        try:
            with log_path.open("w") as log:
                r = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=1800)
            if r.returncode != 0:
                unavailable(f"debootstrap failed ({r.returncode}); log {log_path}:\n{tail(log_path)}")
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
            assert tar.stdout is not None
            try:
                engine.docker("import", "-", BASE_IMAGE, stdin=tar.stdout.fileno(), timeout=900)
            finally:
                tar.stdout.close()
                tar.wait(timeout=60)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return BASE_IMAGE


def local_torch_wheel(python_tag: str = "cp311") -> Path | None:
    """This machine's torch 2.13.0 CPU wheel for ``python_tag``: in pip's find-links (config, environment)
    or /opt/wheels."""
    dirs = os.environ.get("PIP_FIND_LINKS", "").split()
    for key, value in host_pip_config().items():
        if key.endswith(".find-links"):
            dirs += value.split()
    dirs.append("/opt/wheels")
    for d in dirs:
        d = d.removeprefix("file://")
        hits = sorted(glob.glob(os.path.join(d, f"torch-2.13.0+cpu-{python_tag}-{python_tag}-*x86_64.whl")))
        if hits:
            return Path(hits[-1])
    return None


@functools.cache
def host_pip_config() -> dict[str, str]:
    """``pip config list`` of this host's pip: {"global.cert": ..., ":env:.cert": ...} (read once; do not
    modify)."""
    r = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60)
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^([^=]+)='(.*)'$", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def build_pip_conf() -> tuple[str, Path | None]:
    """The pip.conf a build needs to reach the package index the way this host does, and the CA bundle it names.

    From the host's pip settings (environment first, then its config files): ``cert`` (else the host's
    CA bundle; copied beside the pip.conf, so a TLS-intercepting proxy's CA reaches the build), ``index-url``,
    ``extra-index-url`` and ``trusted-host`` where they are http(s) URLs (file:// indexes are host paths),
    ``timeout``. Nothing else: no find-links (the torch wheel is passed on its own), no client certificates.
    """
    config = host_pip_config()

    def setting(name: str) -> str | None:
        names = [name, *({"timeout": ["default-timeout"]}.get(name, []))]
        for scope in (":env:", "global", "install", "user", "site"):
            for n in names:
                if f"{scope}.{n}" in config:
                    return config[f"{scope}.{n}"]
        return None

    parser = configparser.ConfigParser(interpolation=None)
    parser["global"] = {}
    # pip's own setting, else what this host trusts (newer pips use the system store; the build's may not).
    candidates = [setting("cert"), os.environ.get("REQUESTS_CA_BUNDLE"), os.environ.get("SSL_CERT_FILE"),
                  "/etc/ssl/certs/ca-certificates.crt"]
    cert_path = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
    if cert_path is not None:
        parser["global"]["cert"] = f"{BUILD_WHEELS}/ca-certificates.crt"
    for name in ("index-url", "extra-index-url"):
        urls = [u for u in (setting(name) or "").split() if u.startswith(("http://", "https://"))]
        if urls:
            parser["global"][name] = " ".join(urls)
    for name in ("trusted-host", "timeout"):
        value = setting(name)
        if value:
            parser["global"][name] = value
    text = io.StringIO("# Written by tests/docker_engine.py from this host's pip settings, for image builds only.\n")
    text.seek(0, io.SEEK_END)
    parser.write(text)
    return text.getvalue(), cert_path


def _put(dest: Path, data: bytes | None = None, link_from: Path | None = None) -> None:
    """Write ``dest`` (atomically; left alone when it already holds the same bytes, to keep the build cache)."""
    if data is not None:
        if dest.is_file() and dest.read_bytes() == data:
            return
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, dest)
        return
    assert link_from is not None
    if dest.is_file() and (os.path.samefile(dest, link_from) or filecmp.cmp(dest, link_from, shallow=False)):
        return
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    try:
        os.link(link_from, tmp)
    except OSError:
        shutil.copy2(link_from, tmp)
    os.replace(tmp, dest)


def prepare_build_inputs() -> None:
    """Fill images/wheels/ for a CPU image build on this machine: the torch CPU wheel and a pip.conf."""
    wheel = local_torch_wheel()
    if wheel is None:
        unavailable("no local torch 2.13.0 CPU wheel for python 3.11 (looked in pip's find-links and /opt/wheels); "
                    "the index's torch==2.13.0 is the CUDA build, GBs the CPU image must not pull")
    WHEELS.mkdir(parents=True, exist_ok=True)
    _put(WHEELS / wheel.name, link_from=wheel)
    conf, cert = build_pip_conf()
    if cert is not None:
        _put(WHEELS / "ca-certificates.crt", cert.read_bytes())
    _put(WHEELS / "pip.conf", conf.encode())


def proxy_build_args() -> dict[str, str]:
    """The host's proxy settings, as docker's predefined build arguments (not kept in the image's history)."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    return {n: os.environ[n] for n in names if os.environ.get(n)}
