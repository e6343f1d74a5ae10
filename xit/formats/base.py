"""What every trainable format shares: dynamic-padding collation and batched inference."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xit.encoding import collate
from xit.formats import REPORTS, Reports


class Format:
    """Interface of a trainable format (retrieval has no head and lives in `xit.retrieval`)."""

    name: str = ""
    # False where `predict` does not go through `featurize` (the dual encoder embeds queries and a candidate
    # pool itself), so there are no features for the caller to keep between evaluations.
    predicts_from_features: bool = True

    @property
    def reports(self) -> Reports:
        """The metric keys `score` returns (this format's entry of `xit.formats.REPORTS`)."""
        return REPORTS[self.name]

    def make_head(self, hidden: int, task: Any) -> nn.Module:
        raise NotImplementedError

    def featurize(self, rows: list[dict], tokenizer: Any, task: Any, hp: dict, train: bool) -> list[dict]:
        raise NotImplementedError

    def forward(self, model: Any, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        raise NotImplementedError

    def decode(self, task: Any, rows: list[dict], features: list[dict], logits: list[np.ndarray],
               hp: dict) -> list[Any]:
        """Turn per-feature logits into one prediction per row."""
        raise NotImplementedError

    def score(self, task: Any, rows: list[dict], predictions: list[Any]) -> dict[str, float]:
        """Metrics in 0..100; the task's headline metric is under `task.metric`."""
        raise NotImplementedError

    def gold(self, task: Any, row: dict) -> Any:
        """The gold answer of a row in the form `decode` predicts (for predict-gold checks)."""
        raise NotImplementedError

    @torch.no_grad()
    def logits(self, model: Any, task: str, features: list[dict], tokenizer: Any, batch_size: int,
               device: torch.device, progress: Any = None) -> list[np.ndarray]:
        """Per-feature logits, in the order of `features`.

        Inference runs over the features sorted by length (longest first, so a batch that does not fit shows
        at once), which keeps padding small; the logits go back to the input order. Token-level logits keep
        their batch's padded length, as before: `decode` reads only a feature's own positions.
        """
        model.eval()
        order = sorted(range(len(features)), key=lambda i: -_length(features[i]))
        out: list[np.ndarray | None] = [None] * len(features)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            chunk = [features[i] for i in idx]
            batch = {k: v.to(device) for k, v in collate(chunk, tokenizer.pad_token_id).items()}
            _, logits = self.forward(model, task, batch)
            for i, x in zip(idx, logits.float().cpu().numpy(), strict=True):
                out[i] = np.asarray(x)
            if progress is not None:
                progress(len(chunk))
        return out  # type: ignore[return-value]

    def predict(self, model: Any, task: Any, rows: list[dict], tokenizer: Any, hp: dict,
                device: torch.device, bar: Any = None, features: list[dict] | None = None) -> list[Any]:
        """Predictions for rows; `bar(total)`, if given, returns the progress callback.

        `features`, if given, are `featurize(rows, ..., train=False)` computed earlier (the dev rows of a
        training run, evaluated many times)."""
        feats = features if features is not None else self.featurize(rows, tokenizer, task, hp, train=False)
        progress = bar(len(feats)) if bar is not None else None
        logits = self.logits(model, task.name, feats, tokenizer, int(hp["eval_batch_size"]), device, progress)
        return self.decode(task, rows, feats, logits, hp)


def _length(feature: dict[str, Any]) -> int:
    """Tokens of a feature (the longest choice for multiple choice)."""
    ids = feature["input_ids"]
    return max((len(c) for c in ids), default=0) if ids and isinstance(ids[0], list) else len(ids)


def pooled(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The first token's final hidden state (<s> / [CLS])."""
    return model.encode(batch["input_ids"], batch["attention_mask"])[:, 0]
