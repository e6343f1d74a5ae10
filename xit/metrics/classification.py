"""Classification accuracy, as reported by XTREME for XNLI and PAWS-X."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def accuracy(preds: Sequence[Any], labels: Sequence[Any]) -> float:
    """Percentage (0..100) of positions where ``preds[i] == labels[i]``.

    Raises:
        ValueError: if the sequences differ in length or are empty.
    """
    if len(preds) != len(labels):
        raise ValueError(f"accuracy: {len(preds)} predictions but {len(labels)} labels")
    if len(labels) == 0:
        raise ValueError("accuracy: no examples")
    correct = sum(1 for p, g in zip(preds, labels, strict=True) if p == g)
    return 100.0 * correct / len(labels)
