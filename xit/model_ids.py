"""Base-model names and identity, without torch: what the spec check and the plan need.

`xit validate` and `xit plan` read a spec and compute stage keys; importing torch for that cost seconds.
The model code (`xit.modeling`) builds and loads the encoders and re-exports these names.
"""

from __future__ import annotations

from pathlib import Path

TINY_MODEL = "xit-tiny"
# Bumped whenever build_tiny's output changes, so stage keys built on the old tiny model are not reused.
TINY_VERSION = "4"
# The tiny model's shape (xit.modeling builds it so; the spec check and the cost model read it without torch).
TINY_LAYERS = 4
TINY_HIDDEN = 64
TINY_HEADS = 4
TINY_FFN = 128


def is_local_path(model: str) -> bool:
    """A model given as a local directory rather than a Hugging Face id."""
    return model.startswith((".", "/", "~")) or Path(model).exists()


def model_depth(model: str) -> int | None:
    """The number of hidden layers of a base model, where it can be known without loading it: the tiny model,
    or a local directory's config.json. None for a hub id (known once the base stage has fetched it)."""
    import json

    if model == TINY_MODEL:
        return TINY_LAYERS
    if not is_local_path(model):
        return None
    try:
        cfg = json.loads((Path(model).expanduser() / "config.json").read_text()[: 1 << 20])
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    for k in ("num_hidden_layers", "num_layers", "n_layer"):
        if isinstance(cfg.get(k), int) and not isinstance(cfg.get(k), bool):
            return int(cfg[k])
    return None


def check_layer(layer: int | None, depth: int | None, model: str) -> str | None:
    """Why a retrieval layer cannot be pooled from a model of `depth` layers (None if it can, or is unknown).
    hidden_states holds depth + 1 entries: the embeddings (0), then each layer (1..depth)."""
    if layer is None or depth is None or layer <= depth:
        return None
    return f"layer {layer} is beyond the depth of {model} ({depth} layers: give 0..{depth})"
