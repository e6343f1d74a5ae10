"""Batches and sentence vectors: what the formats, retrieval and the model code share, importing none of them.

`collate` pads features into tensors (every format's batches); `embed` turns sentences into vectors with an
encoder (retrieval on an intermediate encoder, a dual encoder's ranking); `num_layers`/`hidden_size` read an
encoder's shape. Keeping them here breaks what was an import cycle (formats → dual encoder → retrieval →
modeling → formats).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

# Padding value per feature key; keys not listed pad with 0.
PAD_VALUES = {"attention_mask": 0, "labels": -100}


def collate(features: list[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad each list-valued key to the longest in the batch (dynamic padding).

    Scalars become a 1-D tensor, lists of ints a 2-D tensor, lists of lists (multiple
    choice: one sequence per choice) a 3-D tensor padded on both inner dimensions.
    Keys starting with "_" are bookkeeping and are not collated.
    """
    out: dict[str, torch.Tensor] = {}
    for key in features[0]:
        if key.startswith("_"):
            continue
        vals = [f[key] for f in features]
        pad = pad_id if key.endswith("input_ids") else PAD_VALUES.get(key, 0)
        first = vals[0]
        if not isinstance(first, list):
            out[key] = torch.tensor(vals)
        elif first and isinstance(first[0], list):
            n = max(len(v) for v in vals)
            length = max(len(s) for v in vals for s in v)
            arr = np.full((len(vals), n, length), pad, dtype=np.int64)
            for i, v in enumerate(vals):
                for j, s in enumerate(v):
                    arr[i, j, : len(s)] = s
            out[key] = torch.from_numpy(arr)
        else:
            length = max(len(v) for v in vals)
            arr = np.full((len(vals), length), pad, dtype=np.int64)
            for i, v in enumerate(vals):
                arr[i, : len(v)] = v
            out[key] = torch.from_numpy(arr)
    return out



def hidden_size(encoder: nn.Module) -> int:
    cfg = encoder.config
    return int(getattr(cfg, "hidden_size", None) or cfg.d_model)


def num_layers(encoder: nn.Module) -> int:
    cfg = encoder.config
    return int(getattr(cfg, "num_hidden_layers", None) or cfg.num_layers)



def default_layer(n_layers: int) -> int:
    """Layer 14 of 24 (XTREME's choice for XLM-R Large), scaled to the model's depth."""
    return max(1, round(n_layers * 14 / 24))


@torch.no_grad()
def embed(encoder: Any, tokenizer: Any, sentences: list[str], *, layer: int | None, max_length: int,
          batch_size: int, device: torch.device, progress: Any = None, pooling: str = "mean",
          pairs: list[str] | None = None) -> np.ndarray:
    """One vector per sentence: the mean of ``layer``'s hidden states over its tokens (``pooling="mean"``) or
    its first token's hidden state (``"cls"``, what a dual encoder is trained on; use ``layer=-1``). With
    ``pairs``, sentence i is encoded together with ``pairs[i]`` as a text pair."""
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling {pooling!r}: expected 'mean' or 'cls'")
    encoder.eval()
    layer = default_layer(num_layers(encoder)) if layer is None else layer
    out = []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        second = None if pairs is None else pairs[start:start + len(chunk)]
        enc = tokenizer(chunk, second, truncation=True, max_length=max_length)
        feats = [{"input_ids": i, "attention_mask": m} for i, m in zip(enc["input_ids"], enc["attention_mask"],
                                                                         strict=True)]
        batch = {k: v.to(device) for k, v in collate(feats, tokenizer.pad_token_id).items()}
        states = encoder(**batch, output_hidden_states=True).hidden_states[layer]
        if pooling == "cls":
            out.append(states[:, 0].float().cpu().numpy())
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            out.append(((states * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
        if progress is not None:
            progress(len(chunk))
    return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)


