"""Base-model names and identity, without torch: what the spec check and the plan need.

`xit validate` and `xit plan` read a spec and compute stage keys; importing torch for that cost seconds.
The model code (`xit.modeling`) builds and loads the encoders and re-exports these names.
"""

from __future__ import annotations

from pathlib import Path

TINY_MODEL = "xit-tiny"
# Bumped whenever build_tiny's output changes, so stage keys built on the old tiny model are not reused.
TINY_VERSION = "2"


def is_local_path(model: str) -> bool:
    """A model given as a local directory rather than a Hugging Face id."""
    return model.startswith((".", "/", "~")) or Path(model).exists()
