"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from servers import unavailable


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in tiny XLM-R-style model (tokenizer + random-init encoder, not pretrained), built once per
    session."""
    from xit.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("xit-tiny") / "model", pretrain=False)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> Any:
    from xit.modeling import load_tokenizer

    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark samples beside the repository (../shared/data or $XIT_SHARED_DATA).

    Without them the tests that read them skip, naming the reason; under CI=true they fail.
    """
    d = Path(os.environ.get("XIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if not d.is_dir():
        unavailable(f"shared benchmark samples not found at {d} (set XIT_SHARED_DATA to their directory)")
    return d


@pytest.fixture
def restore_registry() -> Any:
    """Tasks a test registers (YAML descriptors) do not outlive it: the registry is process-wide."""
    from xit.tasks import custom, registry

    registry.all_tasks()
    before, before_custom = dict(registry._REGISTRY), dict(custom._CUSTOM)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)
    custom._CUSTOM.clear()
    custom._CUSTOM.update(before_custom)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """examples/demo.yaml (what `make demo` runs) through the real CLI into a fresh store, once per session:
    (store, report directory, the finished process). Every test that needs the demo's results shares it."""
    root = Path(__file__).resolve().parents[1]
    tmp = tmp_path_factory.mktemp("demo")
    store, out = tmp / "store", tmp / "out"
    r = subprocess.run([sys.executable, "-m", "xit.cli", "run", str(root / "examples" / "demo.yaml"), "--store",
                        str(store), "--out", str(out), "--no-progress"], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr[-3000:]
    return store, out, r
