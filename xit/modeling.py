"""Encoders and heads: one shared encoder, one head per task.

* `materialise_base` turns the spec's ``model`` into a directory with an encoder and its
  tokenizer: a Hugging Face model id (`from_pretrained`, used on the cluster) or a local
  path (text towers of multimodal checkpoints through `xit.model_layouts`). ``xit-tiny``, the small
  model xit builds and pretrains itself so everything runs offline, lives in `xit.tiny`.
* `XitModel` holds the encoder and a `ModuleDict` of heads; the format of each task owns
  its head and loss (`xit.formats`). Intermediate training saves the encoder; target
  training starts from it with a fresh head.

Weights are written with safetensors only; `trust_remote_code` stays off.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xit.encoding import hidden_size
from xit.errors import XitError
from xit.model_ids import TINY_MODEL, TINY_VERSION, is_local_path  # noqa: F401  (re-exported)


def load_tokenizer(path: str | Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    if not getattr(tok, "is_fast", True):
        raise XitError(f"model {path}: xit needs a fast tokenizer (offset mappings for QA and tagging)")
    return tok


def load_encoder(path: str | Path) -> nn.Module:
    """The encoder at `path`, with PyTorch's scaled-dot-product attention (``attn_implementation="sdpa"``:
    fused attention kernels on GPUs) where the architecture has it, else its own attention."""
    from transformers import AutoConfig, AutoModel

    from xit.model_layouts import detect, text_tower

    if Path(path).is_dir() and detect(Path(path)) != "hf":  # the text tower of open_clip, M-CLIP, mBLIP
        return text_tower(Path(path))[0]
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    if config.model_type in ("t5", "mt5", "umt5"):
        from transformers import T5EncoderModel

        return _with_sdpa(T5EncoderModel.from_pretrained, str(path))
    try:
        return _with_sdpa(AutoModel.from_pretrained, str(path), add_pooling_layer=False, trust_remote_code=False)
    except TypeError:
        return _with_sdpa(AutoModel.from_pretrained, str(path), trust_remote_code=False)


def _with_sdpa(load: Any, path: str, **kwargs: Any) -> nn.Module:
    """`load(path, attn_implementation="sdpa", ...)`, or without it where the model does not support SDPA
    (transformers raises ValueError, or ImportError for a missing kernel)."""
    try:
        return load(path, attn_implementation="sdpa", **kwargs)
    except (ValueError, ImportError):
        return load(path, **kwargs)


def materialise_base(model: str, out_dir: Path, seed: int = 0) -> Path:
    """Write the base encoder + tokenizer for `model` into out_dir (the baseline's output); the tiny model
    comes from `xit.tiny.materialise_tiny`."""
    if model == TINY_MODEL:
        raise XitError(f"{TINY_MODEL} is built by xit.tiny.materialise_tiny, not loaded")
    from xit.model_layouts import detect, fetch, text_tower

    src = str(Path(model).expanduser()) if is_local_path(model) else model
    if not is_local_path(model):  # a Hub id: a tower layout is fetched as files, a plain model read as is
        local = fetch(model)
        src = str(local) if local is not None else src
    if Path(src).is_dir() and detect(Path(src)) != "hf":
        encoder, tok_source = text_tower(Path(src))
        tokenizer = load_tokenizer(tok_source)
    else:
        encoder = load_encoder(src)
        tokenizer = load_tokenizer(src)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


class XitModel(nn.Module):
    """A shared encoder with one head per task; `forward` routes a batch to its task's head."""

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module], formats: dict[str, str]):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.formats = dict(formats)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, Any]:
        from xit.formats import get_format

        return get_format(self.formats[task]).forward(self, task, batch)


def new_model(encoder_dir: Path, tasks: list[Any], seed: int = 0) -> XitModel:
    """An encoder loaded from encoder_dir and a fresh head for each task, initialised from `seed`.

    Seeding here, not only in training, keeps a stage's result independent of whatever ran
    before it in the same process (the local runner runs many stages in one process).
    """

    encoder = load_encoder(encoder_dir)
    torch.manual_seed(seed)
    return XitModel(encoder, make_heads(encoder, tasks), {t.name: t.format for t in tasks})


def make_heads(encoder: nn.Module, tasks: list[Any]) -> dict[str, nn.Module]:
    """A fresh head per task, sized for `encoder` (a masked-LM head: a bias per token of its vocabulary)."""
    from xit.formats import get_format

    heads = {t.name: get_format(t.format).make_head(hidden_size(encoder), t) for t in tasks}
    for head in heads.values():
        if hasattr(head, "for_vocabulary"):
            head.for_vocabulary(encoder.get_input_embeddings().num_embeddings)
    return heads


def save_model(model: XitModel, tokenizer: Any, out_dir: Path) -> None:
    """model/encoder/ (HF layout, safetensors) + model/heads.safetensors + model/heads.json."""
    from safetensors.torch import save_file

    enc_dir = out_dir / "encoder"
    model.encoder.save_pretrained(enc_dir, safe_serialization=True)
    tokenizer.save_pretrained(enc_dir)
    state = {f"{t}.{k}": v.detach().cpu().contiguous() for t, h in model.heads.items()
             for k, v in h.state_dict().items()}
    if state:
        save_file(state, str(out_dir / "heads.safetensors"))
    (out_dir / "heads.json").write_text(json.dumps(model.formats, indent=1, sort_keys=True))


def load_model(model_dir: Path, tasks: list[Any], trained_as: str | None = None) -> tuple[XitModel, Any]:
    """Load what `save_model` wrote: encoder, tokenizer and the heads of `tasks`. With `trained_as`, the model was
    trained as that task (a target sharing another task's training, `Task.train_task`): its head serves `tasks`."""
    from safetensors.torch import load_file

    model = new_model(model_dir / "encoder", tasks)
    state = load_file(str(model_dir / "heads.safetensors"))
    for t in tasks:
        prefix = f"{trained_as or t.name}."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not sub:
            raise XitError(f"{model_dir}: no head for task {trained_as or t.name!r}")
        model.heads[t.name].load_state_dict(sub)
    return model, load_tokenizer(model_dir / "encoder")
