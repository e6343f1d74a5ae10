"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in tiny XLM-R-style model (tokenizer + random-init encoder), built once per session."""
    from xit.modeling import build_tiny

    return build_tiny(tmp_path_factory.mktemp("xit-tiny") / "model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir: Path) -> Any:
    from xit.modeling import load_tokenizer

    return load_tokenizer(tiny_model_dir)
