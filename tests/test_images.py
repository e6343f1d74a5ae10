"""The images' build rules, run as the build runs them (pinned bases, the CPU image's torch), and the CPU image
built for real and run for real (slow tier): version, user, no credentials, a stage against an S3 API
(a moto server, not AWS).

The image is images/cpu.Dockerfile built on a bare Debian 12 rootfs (debootstrap, `docker import`: no
registry is reachable), with this machine's torch CPU wheel and its pip settings as local build inputs
(tests/docker_engine.py). The container runs one stage of a sweep planned on the host into a moto S3
server on the host, as an Argo pod would, and the host checks what it committed.

The first session here takes minutes (debootstrap, the dependencies); later ones reuse the engine's
base image and build cache, and rebuild only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_engine import (
    BASE_IMAGE,
    ROOT,
    DockerEngine,
    ensure_base_image,
    find_or_start_engine,
    prepare_build_inputs,
    proxy_build_args,
)
from docker_engine import exclusive as build_lock
from fakes import one_line
from servers import TEST_AWS_ENV, MotoS3

import xit

TAG = "xit-cpu:test"
# What the build passes as XIT_GIT_REVISION: fixed, so that a new commit does not rebuild the metadata layers.
REVISION = "0123456789ab"
BUCKET = "xit-images"
PREFIX = "runs"
CREDENTIALS = {k: TEST_AWS_ENV[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}


DOCKERFILES = {name: ROOT / "images" / f"{name}.Dockerfile" for name in ("cpu", "gpu")}
PINNED = re.compile(r"^[a-z0-9./_-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


def run_instructions(dockerfile: Path) -> list[str]:
    """The shell commands of a Dockerfile's RUN instructions, continuation lines joined as docker joins them."""
    out, current = [], None
    for line in dockerfile.read_text().splitlines():
        if current is None:
            if not line.startswith("RUN "):
                continue
            current, line = "", line[4:]
        elif line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
        else:
            out.append(current + line)
            current = None
    return out


def run_as_built(command: str, build: Path, **args: str) -> subprocess.CompletedProcess[str]:
    """One RUN command under /bin/sh as docker's default shell runs it, with the build's ARGs in its environment
    and /build/ (where the Dockerfiles copy their inputs) at `build`."""
    return subprocess.run(["/bin/sh", "-c", command.replace("/build/", f"{build}/")], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], **args})


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_base_images_are_pinned_by_digest_and_an_unpinned_one_is_refused(name: str, tmp_path: Path) -> None:
    text = DOCKERFILES[name].read_text()
    (default,) = re.findall(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert PINNED.match(default), default
    assert text.index("ARG BASE_IMAGE=") < text.index("FROM ${BASE_IMAGE} AS python")
    (check,) = [c for c in run_instructions(DOCKERFILES[name]) if "ALLOW_UNPINNED_BASE" in c]
    # The check is the first instruction of the stage every other stage starts from.
    at = text.index(check.split(";")[0][:40])
    assert text.index("FROM ${BASE_IMAGE} AS python") < at < text.index("\nRUN set -eu")
    assert run_as_built(check, tmp_path, BASE_IMAGE=default).returncode == 0
    tag = default.split("@")[0]
    for unpinned in (tag, tag.split(":")[0], "localhost:5000/base:1"):
        r = run_as_built(check, tmp_path, BASE_IMAGE=unpinned)
        assert r.returncode != 0 and f"BASE_IMAGE {unpinned} is not pinned by digest" in one_line(r.stdout + r.stderr)
        assert run_as_built(check, tmp_path, BASE_IMAGE=unpinned, ALLOW_UNPINNED_BASE="1").returncode == 0
        assert run_as_built(check, tmp_path, BASE_IMAGE=unpinned, ALLOW_UNPINNED_BASE="yes").returncode != 0
    # `make images` passes a base only when one is given, so the pinned defaults hold.
    make = (ROOT / "Makefile").read_text()
    assert re.search(rf"^{name.upper()}_BASE_IMAGE \?=\s*$", make, re.M)
    assert f"$(if $({name.upper()}_BASE_IMAGE),--build-arg BASE_IMAGE=$({name.upper()}_BASE_IMAGE))" in make


def test_the_cpu_image_gets_torch_from_local_wheels_or_the_given_index_only(tmp_path: Path) -> None:
    """Without a local CPU wheel of the pinned torch and without TORCH_INDEX_URL the build stops at once with one
    line, before pip could fetch the index's CUDA torch; either input lets it through to the install, whose
    result is checked to be a CPU build."""
    (check,) = [c for c in run_instructions(DOCKERFILES["cpu"]) if "TORCH_INDEX_URL" in c and "exit 1" in c]
    (install,) = [c for c in run_instructions(DOCKERFILES["cpu"]) if "pip install" in c and " torch" in c]
    assert "--find-links /build/wheels" in install and "torch.version.cuda is None" in install
    text = DOCKERFILES["cpu"].read_text()
    assert text.index(check.split(";")[0][:40]) < text.index(install[:40])
    (version,) = re.findall(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    build = tmp_path / "build"
    (build / "wheels").mkdir(parents=True)
    (build / "constraints.txt").write_text(f"numpy==2.0.0\ntorch=={version}\n")
    r = run_as_built(check, build, TORCH_INDEX_URL="")
    assert r.returncode != 0
    assert one_line(r.stdout + r.stderr) == (f"the CPU image needs torch {version}'s CPU build: put its wheel in "
                                             "images/wheels/ or pass TORCH_INDEX_URL (PyTorch's CPU wheel index)")
    (build / "wheels" / "torch-2.0.1+cpu-cp311-cp311-linux_x86_64.whl").write_bytes(b"")  # not the pinned version
    assert run_as_built(check, build, TORCH_INDEX_URL="").returncode != 0
    assert run_as_built(check, build, TORCH_INDEX_URL="https://example.invalid/cpu").returncode == 0
    (build / "wheels" / f"torch-{version}+cpu-cp311-cp311-linux_x86_64.whl").write_bytes(b"")
    assert run_as_built(check, build, TORCH_INDEX_URL="").returncode == 0
    # The GPU image takes torch from the index on purpose (the CUDA build) and checks that it got CUDA 13.
    gpu = DOCKERFILES["gpu"].read_text()
    assert "--find-links" not in gpu and 'startswith("13.")' in gpu


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A running Docker engine: the one already running, or one started (and at the end stopped) here."""
    engine = find_or_start_engine(tmp_path_factory.mktemp("dockerd"))
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def cpu_image(docker: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """images/cpu.Dockerfile built on the Debian 12 base as ``xit-cpu:test`` (once a session, from the cache)."""
    workdir = tmp_path_factory.mktemp("images")
    base = ensure_base_image(docker, workdir)
    with build_lock():
        prepare_build_inputs()
        # The Debian rootfs has no registry digest: the explicit override of the pinned-base check.
        build_args = {"BASE_IMAGE": base, "ALLOW_UNPINNED_BASE": "1", "XIT_GIT_REVISION": REVISION,
                      "XIT_VERSION": xit.__version__, **proxy_build_args()}
        docker.build(ROOT / "images" / "cpu.Dockerfile", TAG, build_args, workdir / "build-cpu.log")
        docker.remove_dangling({"org.opencontainers.image.title": "xit-cpu",
                                "org.opencontainers.image.base.name": base})
    return TAG


@pytest.fixture(scope="module")
def container(docker: DockerEngine, cpu_image: str) -> Iterator[str]:
    """One container of the image, as it starts (its user, its environment), idle, for `docker exec`.

    Each container costs a full copy of the image's 2 GB on the vfs storage driver, so the checks that
    only look inside share this one; the stage runs below are `docker run`s of their own.
    """
    name = f"xit-images-test-{os.getpid()}"
    docker.docker("run", "-d", "--rm", "--name", name, "--entrypoint", "sleep", cpu_image, "infinity", timeout=600)
    try:
        yield name
    finally:
        docker.docker("rm", "-f", name, check=False, timeout=600)


def inspect(docker: DockerEngine, ref: str) -> dict[str, Any]:
    return json.loads(docker.docker("image", "inspect", ref).stdout)[0]


@pytest.mark.slow
def test_version_names_the_revision_built_in(docker: DockerEngine, cpu_image: str, container: str) -> None:
    out = docker.docker("exec", container, "xit", "--version").stdout.strip()
    assert out == f"xit {xit.__version__} (git {REVISION})"
    labels = inspect(docker, cpu_image)["Config"]["Labels"]
    assert labels["org.opencontainers.image.revision"] == REVISION
    assert labels["org.opencontainers.image.version"] == xit.__version__
    assert labels["org.opencontainers.image.title"] == "xit-cpu"
    assert labels["org.opencontainers.image.base.name"] == BASE_IMAGE


@pytest.mark.slow
def test_runs_unprivileged_with_no_credentials_or_build_inputs_inside(docker: DockerEngine, cpu_image: str,
                                                                     container: str) -> None:
    config = inspect(docker, cpu_image)["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["xit"]
    assert "/cache" in (config.get("Volumes") or {})
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["HF_HOME"] == "/cache/hf" and env["XIT_CACHE"].startswith("/cache/")
    secretive = [k for k in env if k.startswith("AWS_") or any(w in k for w in ("SECRET", "TOKEN", "PASSWORD"))]
    assert secretive == []

    as_user = "id -u; id -g; env | cut -d= -f1; touch /cache/hf/probe /cache/xit/probe && echo cache-writable"
    out = docker.docker("exec", container, "sh", "-c", as_user).stdout.splitlines()
    assert out[:2] == ["10001", "10001"]
    assert out[-1] == "cache-writable"
    assert [name for name in out[2:-1] if name.startswith("AWS_")] == []

    # Everywhere, as root (to see /root too): nothing that holds credentials, and nothing of the build's
    # inputs (/build: the wheels, the pip.conf, the CA bundle). Debian's own wheels for ensurepip are fine.
    scan = ("find / -xdev \\( -path /proc -o -path /sys \\) -prune -o \\( -name .aws -o -name credentials "
            "-o -name .netrc -o -name .git-credentials -o -name .pypirc -o -name .docker -o -name pip.conf "
            "-o -name 'torch-*.whl' -o -path /build -o -path /staging \\) -print")
    found = docker.docker("exec", "--user", "0", container, "sh", "-c", scan).stdout.split()
    assert found == []


# --- a stage of a sweep, run in the container against S3 -----------------------------------------------

@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """A moto S3 server on the host (127.0.0.1, a free port) with an empty bucket: (endpoint, boto3 client)."""
    server = MotoS3().start()
    try:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        yield server.endpoint, client
    finally:
        server.stop()


def _s3_env(endpoint: str) -> dict[str, str]:
    return {"XIT_S3_ENDPOINT": endpoint, **CREDENTIALS}


@pytest.mark.slow
def test_stage_run_in_the_container_commits_to_a_moto_s3_server(docker: DockerEngine, cpu_image: str,
                                                  s3: tuple[str, Any], tmp_path: Path) -> None:
    endpoint, client = s3
    store = f"s3://{BUCKET}/{PREFIX}"
    outputs = tmp_path / "outputs"

    # The plan step, on the host: the plan goes into the store, the fan-out values into files.
    host_env = {k: v for k, v in os.environ.items()
                if not k.startswith("AWS_") and k not in ("XIT_S3_ENDPOINT", "XIT_CACHE")}
    host_env |= _s3_env(endpoint) | {"AWS_EC2_METADATA_DISABLED": "true", "XIT_CACHE": str(tmp_path / "cache")}
    plan = subprocess.run([sys.executable, "-m", "xit.cli", "stage", "plan", str(ROOT / "examples" / "demo.yaml"),
                           "--store", store, "--outputs", str(outputs)],
                          capture_output=True, text=True, env=host_env, timeout=300, cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    sweep = (outputs / "sweep").read_text().strip()
    key = (outputs / "base").read_text().strip()
    assert sweep and key

    # The stage, in the container: what an Argo pod runs, credentials given at run time only.
    argv = ["run", "--rm", "--network", "host"]
    for k, v in _s3_env(endpoint).items():
        argv += ["-e", f"{k}={v}"]
    argv += [cpu_image, "stage", "run", "--sweep", sweep, "--key", key, "--store", store, "--no-progress"]
    first = docker.docker(*argv, check=False, timeout=900)
    assert first.returncode == 0, f"docker {shlex.join(argv)}\n{first.stdout}\n{first.stderr}"
    assert f"({key})" in first.stdout and "skipped" not in first.stdout

    # Committed: the manifest, and every file it lists, with the sha256 and size it lists.
    stage = f"{PREFIX}/stages/{key}"
    manifest = json.loads(client.get_object(Bucket=BUCKET, Key=f"{stage}/MANIFEST.json")["Body"].read())
    assert manifest["key"] == key and manifest["xit_version"] == xit.__version__
    assert manifest["files"], manifest
    for rel, meta in manifest["files"].items():
        body = client.get_object(Bucket=BUCKET, Key=f"{stage}/{manifest['attempt']}/{rel}")["Body"].read()
        assert (hashlib.sha256(body).hexdigest(), len(body)) == (meta["sha256"], meta["size"]), rel

    # Run again: committed, so skipped at once.
    again = docker.docker(*argv, check=False, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.strip().startswith("skipped"), again.stdout
