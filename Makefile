# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SPEC   ?= examples/demo.yaml

.PHONY: demo test test-fast test-deps lint bench install dev clean helm-lint images

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Exact versions from constraints.txt; torch first and alone (2.13.0: a local CPU wheel found through
# PIP_FIND_LINKS wins, being 2.13.0+cpu).
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt torch
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml constraints.txt $(VENV)/.installed
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed  ## install into .venv and run the demo sweep locally (offline, CPU)
	$(BIN)/xit run $(SPEC)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check xit tests bench

# Real servers and tools the tests use (Prometheus, Pushgateway, Docker engine, helm): installed on Debian as root, else those tests
# skip with the reason (and fail under CI=true).
test-deps:
	bash scripts/install-test-deps.sh
	bash scripts/install-helm.sh

# The chart with the real helm v4 (scripts/install-helm.sh puts it in .tools/bin), strict, for each values file.
helm-lint:
	bash scripts/install-helm.sh
	.tools/bin/helm lint --strict helm/xit
	for f in helm/xit/ci/*.yaml; do .tools/bin/helm lint --strict helm/xit -f $$f || exit 1; done

# Two tiers, the fast one first (unit, contract and server tests: a failure there shows in minutes), then the
# slow one (@pytest.mark.slow: end-to-end sweeps, the image build). `make test-fast` runs the first alone.
test: lint test-deps  ## install with dev extras, lint, install test servers, run the fast then the slow tests
	$(BIN)/python -m pytest -q -m "not slow"
	$(BIN)/python -m pytest -q -m slow

test-fast: lint test-deps  ## the fast tier only (not the README's test command: CI runs `make test`)
	$(BIN)/python -m pytest -q -m "not slow"

# Container images (images/README.md): the GPU training image and the slim CPU image for plan/report
# steps, tagged <version> and <version>-<git rev>. Local build inputs (wheels, a pip.conf) go in images/wheels/.
VERSION        ?= $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' xit/__init__.py)
GIT_REVISION   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DOCKER         ?= docker
# Base images: empty for the Dockerfiles' defaults (ARG BASE_IMAGE, pinned by digest); another base must be
# name:tag@sha256:<digest> too, unless ALLOW_UNPINNED_BASE=1 (the build refuses an unpinned one otherwise).
GPU_BASE_IMAGE ?=
CPU_BASE_IMAGE ?=
ALLOW_UNPINNED_BASE ?=
GPU_IMAGE      ?= xit-gpu
CPU_IMAGE      ?= xit-cpu
# PyTorch's CPU wheel index for the CPU image when images/wheels/ has no CPU torch wheel (see images/README.md).
TORCH_INDEX_URL ?=
IMAGE_BUILD     = $(DOCKER) build --network host --build-arg XIT_VERSION=$(VERSION) \
                  --build-arg XIT_GIT_REVISION=$(GIT_REVISION) \
                  $(if $(ALLOW_UNPINNED_BASE),--build-arg ALLOW_UNPINNED_BASE=$(ALLOW_UNPINNED_BASE))

images:  ## build the container images xit-gpu and xit-cpu
	$(IMAGE_BUILD) -f images/cpu.Dockerfile $(if $(CPU_BASE_IMAGE),--build-arg BASE_IMAGE=$(CPU_BASE_IMAGE)) \
		--build-arg TORCH_INDEX_URL=$(TORCH_INDEX_URL) \
		-t $(CPU_IMAGE):$(VERSION) -t $(CPU_IMAGE):$(VERSION)-$(GIT_REVISION) .
	$(IMAGE_BUILD) -f images/gpu.Dockerfile $(if $(GPU_BASE_IMAGE),--build-arg BASE_IMAGE=$(GPU_BASE_IMAGE)) \
		-t $(GPU_IMAGE):$(VERSION) -t $(GPU_IMAGE):$(VERSION)-$(GIT_REVISION) .

# Benchmarks, not tests (bench/README.md): ratios against a named peer measured in one run on this machine.
bench: $(VENV)/.installed-dev  ## vs HF Trainer (examples/s, dev score, padding); tokenise once, eval, plan/validate
	$(BIN)/python bench/train_throughput.py --threads 1
	$(BIN)/python bench/train_throughput.py --threads 1 --data demo-para --lr 1e-3 --epochs 3 --max-length 64 --batch-size 16 --repeats 3
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf xit-runs reports .pytest_cache .ruff_cache

# Local kind cluster with Argo, MinIO, Prometheus and the chart (infra/README.md); needs kind, kubectl, helm, docker.
.PHONY: kind-up kind-e2e kind-down
kind-up:  ## create the kind cluster, install Argo/MinIO/Prometheus/fake GPUs, load the images, install the chart
	bash infra/kind-up.sh
kind-e2e:  ## run pipelines/smoke.yaml on the kind cluster and check its report in MinIO
	bash infra/kind-e2e.sh
kind-down:  ## delete the kind cluster
	bash infra/kind-down.sh
