"""Sentence retrieval on an encoder without any target training (BUCC, Tatoeba).

Sentences are embedded as the mean over non-padding tokens of one hidden layer
(XTREME: layer 14 of 24 for XLM-R Large; for other depths the same proportion), then
L2-normalised. Tatoeba scores 1-NN cosine accuracy in both directions (headline: the
non-English sentence finding its English translation); BUCC mines pairs with ratio-margin
scoring (k=4), tunes the F1-optimal threshold on the dev split and applies it to test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xit.formats.base import batches, collate
from xit.metrics.retrieval import best_threshold, bucc_f1, mine_bitext, tatoeba_accuracy
from xit.modeling import num_layers


def default_layer(n_layers: int) -> int:
    """Layer 14 of 24 (XTREME's choice for XLM-R Large), scaled to the model's depth."""
    return max(1, round(n_layers * 14 / 24))


@torch.no_grad()
def embed(encoder: Any, tokenizer: Any, sentences: list[str], *, layer: int | None, max_length: int,
          batch_size: int, device: torch.device, progress: Any = None) -> np.ndarray:
    encoder.eval()
    layer = default_layer(num_layers(encoder)) if layer is None else layer
    out = []
    for chunk in batches(sentences, batch_size):
        enc = tokenizer(chunk, truncation=True, max_length=max_length)
        feats = [{"input_ids": i, "attention_mask": m} for i, m in zip(enc["input_ids"], enc["attention_mask"],
                                                                         strict=True)]
        batch = {k: v.to(device) for k, v in collate(feats, tokenizer.pad_token_id).items()}
        states = encoder(**batch, output_hidden_states=True).hidden_states[layer]
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        out.append(((states * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
        if progress is not None:
            progress(len(chunk))
    return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)


def tatoeba_scores(src: np.ndarray, tgt: np.ndarray) -> dict[str, float]:
    xx_en = tatoeba_accuracy(src, tgt)
    en_xx = tatoeba_accuracy(tgt, src)
    return {"accuracy": xx_en, "accuracy_xx_en": xx_en, "accuracy_en_xx": en_xx}


def bucc_scores(dev: tuple[np.ndarray, np.ndarray, dict], test: tuple[np.ndarray, np.ndarray, dict],
                k: int = 4) -> dict[str, float]:
    """Tune the threshold on dev, apply it to test. Each argument: (src_emb, tgt_emb, row)."""

    def mined(x: np.ndarray, y: np.ndarray, row: dict) -> tuple[list, set]:
        cands = mine_bitext(x, y, k=k)
        si = {s: i for i, s in enumerate(row["source_ids"])}
        ti = {t: i for i, t in enumerate(row["target_ids"])}
        return cands, {(si[a], ti[b]) for a, b in row["gold"]}

    dev_c, dev_g = mined(*dev)
    threshold, dev_m = best_threshold(dev_c, dev_g)
    test_c, test_g = mined(*test)
    m = bucc_f1(test_c, test_g, threshold)
    return {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"],
            "threshold": float(threshold), "dev_f1": dev_m["f1"]}
