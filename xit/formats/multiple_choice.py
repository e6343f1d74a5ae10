"""Multiple choice (HellaSwag, XCOPA, COPA, …): one score per (context, choice) pair; accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xit.formats.base import Format
from xit.metrics.classification import accuracy


class MultipleChoice(Format):
    name = "multiple_choice"

    def make_head(self, hidden: int, task: Any) -> nn.Module:
        return nn.Sequential(nn.Dropout(0.1), nn.Linear(hidden, 1))

    def featurize(self, rows: list[dict], tokenizer: Any, task: Any, hp: dict, train: bool) -> list[dict]:
        feats = []
        for r in rows:
            q = r.get("question") or ""
            seconds = [f"{q} {c}".strip() for c in r["choices"]]
            enc = tokenizer([r["context"]] * len(seconds), seconds, truncation=True,
                            max_length=int(hp["max_length"]))
            feats.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                          "labels": int(r["label"])})
        return feats

    def forward(self, model: Any, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        b, c, length = batch["input_ids"].shape
        hidden = model.encode(batch["input_ids"].view(b * c, length), batch["attention_mask"].view(b * c, length))
        logits = model.heads[task](hidden[:, 0]).view(b, c)
        # A padded (absent) choice has an all-zero mask: never pick it.
        logits = logits.masked_fill(batch["attention_mask"].sum(-1) == 0, torch.finfo(logits.dtype).min)
        loss = nn.functional.cross_entropy(logits, batch["labels"]) if "labels" in batch else None
        return loss, logits

    def decode(self, task: Any, rows: list[dict], features: list[dict], logits: list[np.ndarray],
               hp: dict) -> list[int]:
        return [int(np.argmax(x[: len(r["choices"])])) for x, r in zip(logits, rows, strict=True)]

    def gold(self, task: Any, row: dict) -> int:
        return int(row["label"])

    def score(self, task: Any, rows: list[dict], predictions: list[Any]) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, [int(r["label"]) for r in rows])}
