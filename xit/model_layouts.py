"""Base encoders that are the text tower of a larger model, read from that model's own checkpoint layout.

`xit.modeling.materialise_base` writes every base model as a plain Hugging Face encoder (safetensors) plus its
tokenizer; this module extracts the text encoder from layouts `AutoModel` cannot read without remote code:

* ``open_clip`` — LAION's open_clip with a Hugging Face text tower (e.g.
  laion/CLIP-ViT-H-14-frozen-xlm-roberta-large-laion5B-s13B-b90k): ``open_clip_config.json`` whose
  ``model_cfg.text_cfg.hf_model_name`` names the tower's architecture (XLM-R Large), weights in
  ``open_clip_model.safetensors`` (or ``open_clip_pytorch_model.bin``) under ``text.transformer.*`` (open_clip's
  ``HFTextEncoder.transformer``); the projection head ``text.proj`` and the vision tower are not used.
* ``mclip`` — M-CLIP's multilingual text encoders (e.g. M-CLIP/XLM-Roberta-Large-Vit-B-16Plus): ``config.json``
  with ``model_type: M-CLIP`` and ``modelBase`` naming the transformer's architecture; weights under
  ``transformer.*`` (FreddeFrallan/Multilingual-CLIP ``pt_multilingual_clip.py``, ``MultilingualCLIP``), the
  ``LinearTransformation`` into CLIP's space not used. Tokenizer files ship with the model.
* ``mblip`` — mBLIP (e.g. Gregor/mblip-mt0-xl): a BLIP-2 ``config.json`` whose ``text_config`` is an mT5/mT0;
  the multilingual text encoder is that language model's encoder, weights ``language_model.shared.*`` and
  ``language_model.encoder.*``, read into a ``T5EncoderModel``.
* ``hf`` — everything `AutoModel` reads (XLM-R, mBERT, mT5 — whose encoder `load_encoder` takes —, ...).

Weights are read from safetensors where the checkpoint has them; a ``.bin`` is read with
``torch.load(weights_only=True)`` (no pickled code runs); ``trust_remote_code`` stays off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xit.errors import XitError

LAYOUTS = ("hf", "open_clip", "mclip", "mblip")
# Files that hold what a layout needs (a Hub download fetches only these).
LAYOUT_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*", "*.bin")


def detect(path: Path) -> str:
    """The layout of a local model directory."""
    path = Path(path)
    if (path / "open_clip_config.json").is_file():
        return "open_clip"
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise XitError(f"model {path}: no config.json (nor open_clip_config.json)")
    return detect_config(json.loads(cfg_file.read_text()))


def _weights(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """The state dict in the first of `names` that exists (a sharded safetensors index is followed)."""
    import torch
    from safetensors.torch import load_file

    for name in names:
        f = path / name
        if not f.is_file():
            continue
        if name.endswith(".index.json"):
            shards = sorted(set(json.loads(f.read_text())["weight_map"].values()))
            state: dict[str, Any] = {}
            for shard in shards:
                state.update(load_file(str(path / shard)))
            return state
        if name.endswith(".safetensors"):
            return load_file(str(f))
        return torch.load(str(f), map_location="cpu", weights_only=True)
    raise XitError(f"model {path}: none of {', '.join(names)}")


def _sub(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _load_into(model: Any, state: dict[str, Any], where: Path, what: str) -> Any:
    """Load `state` into `model`; every parameter must come from the checkpoint (buffers may be derived)."""
    own = dict(model.named_parameters())
    missing = sorted(k for k in own if k not in state)
    if missing:
        raise XitError(f"model {where}: the {what} lacks {len(missing)} weights of the encoder "
                       f"(first: {missing[0]}); is this the layout it claims to be?")
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()}, strict=False)
    return model


def _hf_encoder(config_source: str) -> Any:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(config_source, trust_remote_code=False)
    try:
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


def _local_or_id(ref: str, base: Path) -> str:
    """A reference in a checkpoint's config: a Hub id, or a path (relative to the checkpoint)."""
    p = (base / ref) if ref.startswith(".") else Path(ref)
    return str(p) if p.exists() else ref


def text_tower(path: Path) -> tuple[Any, str]:
    """(encoder, where its tokenizer is) for a directory in one of the tower layouts."""
    path = Path(path)
    layout = detect(path)
    has_tok = any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    if layout == "open_clip":
        cfg = json.loads((path / "open_clip_config.json").read_text())
        text = (cfg.get("model_cfg") or {}).get("text_cfg") or {}
        if not text.get("hf_model_name"):
            raise XitError(f"model {path}: open_clip_config.json has no model_cfg.text_cfg.hf_model_name "
                           f"(only open_clip models with a Hugging Face text tower are supported)")
        encoder = _hf_encoder(_local_or_id(text["hf_model_name"], path))
        state = _sub(_weights(path, ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")),
                     "text.transformer.")
        tok = str(path) if has_tok else _local_or_id(text.get("hf_tokenizer_name") or text["hf_model_name"], path)
        return _load_into(encoder, state, path, "open_clip text tower"), tok
    if layout == "mclip":
        cfg = json.loads((path / "config.json").read_text())
        base = _local_or_id(cfg["modelBase"], path)
        encoder = _hf_encoder(base)
        state = _sub(_weights(path, ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")),
                     "transformer.")
        return _load_into(encoder, state, path, "M-CLIP transformer"), str(path) if has_tok else base
    if layout == "mblip":
        from transformers import MT5Config, T5EncoderModel

        cfg = json.loads((path / "config.json").read_text())
        text = dict(cfg["text_config"])
        text.pop("model_type", None)
        encoder = T5EncoderModel(MT5Config(**text))
        lm = _sub(_weights(path, ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")),
                  "language_model.")
        state = {k: v for k, v in lm.items() if k.startswith(("shared.", "encoder."))}
        if "shared.weight" in state:  # tied input embeddings, stored once
            state.setdefault("encoder.embed_tokens.weight", state["shared.weight"])
        return _load_into(encoder, state, path, "mBLIP language model's encoder"), str(path)
    raise XitError(f"model {path}: a plain Hugging Face model, not a text-tower layout")


def fetch(model_id: str) -> Path | None:
    """For a Hub id in a tower layout, a local snapshot of the files it needs; None for plain models."""
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        hf_hub_download(model_id, "open_clip_config.json")
    except Exception:  # not open_clip (or not reachable: the plain path then says what is wrong)
        try:
            cfg = json.loads(Path(hf_hub_download(model_id, "config.json")).read_text())
        except Exception:
            return None
        if detect_config(cfg) == "hf":
            return None
    return Path(snapshot_download(model_id, allow_patterns=list(LAYOUT_FILES)))


def detect_config(cfg: dict[str, Any]) -> str:
    """The layout a config.json describes (open_clip has none: `detect` checks its own file first)."""
    if cfg.get("model_type") == "M-CLIP":
        return "mclip"
    if cfg.get("model_type") == "blip-2" and (cfg.get("text_config") or {}).get("model_type") in ("mt5", "t5"):
        return "mblip"
    return "hf"
