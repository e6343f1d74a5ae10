# xit, GPU: the training image (intermediate, target, evaluate and retrieval stages on GPU nodes).
#
# Build from the repository root (`make images` does):
#   docker build --network host -f images/gpu.Dockerfile \
#     --build-arg XIT_GIT_REVISION=$(git rev-parse --short=12 HEAD) -t xit-gpu .
#
# The base needs no CUDA of its own: torch 2.13.0's wheels bring the CUDA 13.0 runtime, cuDNN and NCCL
# as pip packages. nvidia/cuda's "base" flavour adds what the NVIDIA container toolkit reads
# (NVIDIA_VISIBLE_DEVICES, NVIDIA_DRIVER_CAPABILITIES, NVIDIA_REQUIRE_CUDA: a driver of the 580 series
# or newer) at a fraction of the size of the runtime/cudnn flavours, whose libraries torch would not use.
# Any Debian/Ubuntu-like BASE_IMAGE works: python3 (>= 3.11) and its venv module are installed with
# apt-get when missing (Ubuntu 24.04: python 3.12).
#
# Optional local build inputs, in images/wheels/ (git-ignored; see images/README.md): a pip.conf for the
# build only (a private index, the CA bundle of a TLS-intercepting proxy, find-links). Unlike the CPU
# image, this one does not take the wheels there by itself: a CPU torch wheel left there would shadow
# the CUDA build. Nothing from images/wheels/ reaches the final image.

# The base, pinned by digest: nvidia/cuda:13.0.2-base-ubuntu24.04 as its registry served it when this was written (the
# digest is not re-checked here: no registry is reachable where the tests run). To move to a newer build
# of the tag, or another base: docker buildx imagetools inspect <name:tag>, then
# make images GPU_BASE_IMAGE=<name:tag>@sha256:<digest> (or --build-arg BASE_IMAGE=...).
ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04@sha256:2ab6381d970b211fb93853796dc6707eb8a72575a375c422b17cf4d8b2641701

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
# torch alone and first, at its pinned version: the CUDA 13.0 build from the index (checked).
RUN /opt/xit/bin/pip install --no-cache-dir -c /build/constraints.txt torch \
 && /opt/xit/bin/python -c 'import torch, sys; sys.exit(None if (torch.version.cuda or "").startswith("13.") else \
f"the GPU image needs torch built for CUDA 13, got {torch.version.cuda}")'
# Dependencies before the source, so that editing xit does not reinstall them: read from pyproject.toml.
COPY pyproject.toml /build/src/
RUN /opt/xit/bin/python -c 'import tomllib; p = tomllib.load(open("/build/src/pyproject.toml", "rb")); \
print("\n".join(p["project"]["dependencies"]))' > /build/requirements.txt \
 && /opt/xit/bin/pip install --no-cache-dir --use-pep517 -c /build/constraints.txt -r /build/requirements.txt

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
LABEL org.opencontainers.image.title="xit-gpu" \
      org.opencontainers.image.description="xit (GPU): training and evaluation stages of intermediate-task transfer sweeps" \
      org.opencontainers.image.version="${XIT_VERSION}" \
      org.opencontainers.image.revision="${XIT_GIT_REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      dev.xit.nvidia-driver-min="580"
ENV XIT_GIT_REVISION="${XIT_GIT_REVISION}"
COPY --from=xit /staging/ /
