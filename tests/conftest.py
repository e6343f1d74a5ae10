"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from servers import unavailable


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in tiny XLM-R-style model (tokenizer + random-init encoder), built once per session."""
    from xit.modeling import build_tiny

    return build_tiny(tmp_path_factory.mktemp("xit-tiny") / "model")


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
