# xit, CPU: the slim image for the plan and report steps of a sweep (and for CPU-only stages).
#
# Build from the repository root (`make images` does):
#   docker build --network host -f images/cpu.Dockerfile \
#     --build-arg XIT_GIT_REVISION=$(git rev-parse --short=12 HEAD) -t xit-cpu .
#
# BASE_IMAGE is any Debian/Ubuntu-like image with python3 >= 3.11 and its venv module (or apt-get to
# install them): the default python:3.11-slim-bookworm, or a bare Debian 12 rootfs with python3 and
# python3-venv, which is what the tests build.
#
# Optional local build inputs, in images/wheels/ (git-ignored; see images/README.md): wheels pip takes
# before the index (torch's CPU wheel: the index's torch 2.13.0 is the CUDA build, GBs of it), and a
# pip.conf for the build only (a private index, the CA bundle of a TLS-intercepting proxy). They are
# read in the build stages; the final image gets the virtual environment and nothing else from them.

# The base, pinned by digest: python:3.11-slim-bookworm as its registry served it when this was written (the
# digest is not re-checked here: no registry is reachable where the tests run). To move to a newer build
# of the tag, or another base: docker buildx imagetools inspect <name:tag>, then
# make images CPU_BASE_IMAGE=<name:tag>@sha256:<digest> (or --build-arg BASE_IMAGE=...).
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# --- python: the base image with python3, venv and the unprivileged user (shared by the stages) -----
FROM ${BASE_IMAGE} AS python
# The base must be pinned by digest (one tag, one image): refused otherwise, unless the build says
# ALLOW_UNPINNED_BASE=1 (a local base such as the tests' Debian rootfs, which has no registry digest).
ARG BASE_IMAGE
ARG ALLOW_UNPINNED_BASE=""
RUN case "${BASE_IMAGE}" in *@sha256:*) ;; *) [ "${ALLOW_UNPINNED_BASE}" = 1 ] || { echo "BASE_IMAGE ${BASE_IMAGE} is not pinned by digest: give name:tag@sha256:<digest> (docker buildx imagetools inspect name:tag prints it), or ALLOW_UNPINNED_BASE=1" >&2; exit 1; } ;; esac
RUN set -eu; \
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    python3 -c 'import sys; assert sys.version_info >= (3, 11), f"xit needs python >= 3.11, not {sys.version}"'; \
    groupadd --gid 10001 xit; \
    useradd --uid 10001 --gid 10001 --home-dir /home/xit --create-home --shell /usr/sbin/nologin xit; \
    mkdir -p /cache/hf /cache/xit; \
    chown -R 10001:10001 /cache

# --- deps: a virtual environment with torch (pinned, first) and xit's dependencies -----------------
FROM python AS deps
ENV PIP_CONFIG_FILE=/build/wheels/pip.conf \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
RUN python3 -m venv /opt/xit
# images/ holds only wheels/ in the build context (.dockerignore), so this works without it too.
COPY images/ /build/
# Exact versions from constraints.txt (one tag, one set of packages).
COPY constraints.txt /build/constraints.txt
# torch alone and first, at its pinned version, and a CPU build: the local CPU wheel when there is one,
# else from TORCH_INDEX_URL (PyTorch's CPU wheel index); the default index's torch is the CUDA build
# (GBs of it), which the check below refuses.
ARG TORCH_INDEX_URL=""
RUN version="$(awk -F '==' '$1 == "torch" {print $2}' /build/constraints.txt)"; \
    if [ -z "${TORCH_INDEX_URL}" ] && ! ls /build/wheels/torch-"${version}"[+-]*.whl >/dev/null 2>&1; then \
        echo "the CPU image needs torch ${version}'s CPU build: put its wheel in images/wheels/ or pass TORCH_INDEX_URL (PyTorch's CPU wheel index)" >&2; \
        exit 1; \
    fi
RUN /opt/xit/bin/pip install --no-cache-dir --find-links /build/wheels -c /build/constraints.txt \
        ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch \
 && /opt/xit/bin/python -c 'import torch, sys; sys.exit(None if torch.version.cuda is None else \
"the CPU image got a CUDA build of torch: put its CPU wheel in images/wheels/ or pass TORCH_INDEX_URL")'
# Dependencies before the source, so that editing xit does not reinstall them: read from pyproject.toml.
COPY pyproject.toml /build/src/
RUN /opt/xit/bin/python -c 'import tomllib; p = tomllib.load(open("/build/src/pyproject.toml", "rb")); \
print("\n".join(p["project"]["dependencies"]))' > /build/requirements.txt \
 && /opt/xit/bin/pip install --no-cache-dir --use-pep517 --find-links /build/wheels -c /build/constraints.txt \
    -r /build/requirements.txt

# --- xit: xit's wheel, built and installed in a small environment of its own ----------------------------
# Built apart from the 2 GB of dependencies, so that an edit of xit rebuilds little: the wheel is
# installed under /staging into a venv at the same path as the image's, and copied over it below.
FROM python AS xit
ENV PIP_CONFIG_FILE=/build/wheels/pip.conf \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
COPY images/ /build/
COPY pyproject.toml /build/src/
RUN python3 -m venv /opt/xit \
 && /opt/xit/bin/python -c 'import tomllib; \
print("\n".join(tomllib.load(open("/build/src/pyproject.toml", "rb"))["build-system"]["requires"]))' \
    > /build/build-requirements.txt \
 && /opt/xit/bin/pip install --no-cache-dir -r /build/build-requirements.txt
COPY README.md /build/src/
COPY xit/ /build/src/xit/
RUN /opt/xit/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /build/dist /build/src \
 && /opt/xit/bin/pip install --no-cache-dir --no-index --no-deps --no-warn-script-location --root /staging \
    /build/dist/xit-*.whl

# --- the image -------------------------------------------------------------------------------------------
FROM python
ARG BASE_IMAGE
# HF_HOME and XIT_CACHE (the S3 store's local mirror) live in /cache: mount a volume there to keep
# downloads between runs. Credentials are never baked in: give them at run time (environment, pod role).
ENV PATH="/opt/xit/bin:${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}" \
    HF_HOME=/cache/hf \
    XIT_CACHE=/cache/xit \
    PYTHONUNBUFFERED=1
VOLUME /cache
WORKDIR /home/xit
USER 10001:10001
ENTRYPOINT ["xit"]
CMD ["--help"]
# Then from the largest and most stable layer to the smallest and most changing: the dependencies, the
# build's metadata (each instruction after the big layer costs a full copy on storage drivers without
# layering, such as vfs, so there are few), xit itself.
COPY --from=deps /opt/xit /opt/xit
ARG XIT_VERSION=dev
ARG XIT_GIT_REVISION=unknown
LABEL org.opencontainers.image.title="xit-cpu" \
      org.opencontainers.image.description="xit (CPU): plan and report steps of intermediate-task transfer sweeps" \
      org.opencontainers.image.version="${XIT_VERSION}" \
      org.opencontainers.image.revision="${XIT_GIT_REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
ENV XIT_GIT_REVISION="${XIT_GIT_REVISION}"
COPY --from=xit /staging/ /
