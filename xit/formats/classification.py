"""Sentence and sentence-pair classification (XNLI, PAWS-X, MNLI, …): accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xit.formats.base import Format, pooled
from xit.metrics.classification import accuracy


class ClassificationHead(nn.Module):
    """dense → tanh → dropout → projection on the first token, as in RoBERTa's head."""

    def __init__(self, hidden: int, n_labels: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(0.1)
        self.out = nn.Linear(hidden, n_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(x)))))


class Classification(Format):
    name = "classification"

    def make_head(self, hidden: int, task: Any) -> nn.Module:
        return ClassificationHead(hidden, len(task.labels))

    def featurize(self, rows: list[dict], tokenizer: Any, task: Any, hp: dict, train: bool) -> list[dict]:
        a = [r["text_a"] for r in rows]
        b = [r["text_b"] for r in rows] if rows and rows[0].get("text_b") is not None else None
        enc = tokenizer(a, b, truncation=True, max_length=int(hp["max_length"]))
        return [
            {"input_ids": ids, "attention_mask": m, "labels": int(r["label"])}
            for ids, m, r in zip(enc["input_ids"], enc["attention_mask"], rows, strict=True)
        ]

    def forward(self, model: Any, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        logits = model.heads[task](pooled(model, batch))
        loss = nn.functional.cross_entropy(logits, batch["labels"]) if "labels" in batch else None
        return loss, logits

    def decode(self, task: Any, rows: list[dict], features: list[dict], logits: list[np.ndarray],
               hp: dict) -> list[int]:
        return [int(np.argmax(x)) for x in logits]

    def gold(self, task: Any, row: dict) -> int:
        return int(row["label"])

    def score(self, task: Any, rows: list[dict], predictions: list[Any]) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, [int(r["label"]) for r in rows])}
