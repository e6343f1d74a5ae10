"""Sequence-labelling metrics: entity span F1 (PAN-X NER) and token accuracy (UD-POS).

Span F1 uses the ``seqeval`` package in its default mode, which reproduces the CoNLL-2000
``conlleval`` script (as XTREME does): an entity counts only if its type and both boundaries match.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from seqeval.metrics import f1_score as _seqeval_f1
from seqeval.metrics import precision_score as _seqeval_precision
from seqeval.metrics import recall_score as _seqeval_recall


def _check_shapes(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], name: str) -> None:
    if len(gold) != len(pred):
        raise ValueError(f"{name}: {len(gold)} gold sentences but {len(pred)} predicted")
    if len(gold) == 0:
        raise ValueError(f"{name}: no sentences")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"{name}: sentence {i} has {len(g)} gold tags but {len(p)} predicted")


def span_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro-averaged entity precision/recall/F1 in 0..100 (seqeval default, conlleval-compatible).

    Args:
        gold: one list of BIO/IOB tags per sentence.
        pred: predicted tags, same shape as ``gold``.

    Raises:
        ValueError: if the number of sentences or any sentence's length differs, or there are none.
    """
    _check_shapes(gold, pred, "span_f1")
    y_true = [list(s) for s in gold]
    y_pred = [list(s) for s in pred]
    with warnings.catch_warnings():
        # Tags without a B-/I- prefix (UPOS, as XTREME scores POS with seqeval too) are warned about
        # once per tag and sentence; the score is defined all the same (each run of a tag is a span).
        warnings.filterwarnings("ignore", message=r".* seems not to be NE tag\.")
        return {
            "precision": 100.0 * float(_seqeval_precision(y_true, y_pred, zero_division=0)),
            "recall": 100.0 * float(_seqeval_recall(y_true, y_pred, zero_division=0)),
            "f1": 100.0 * float(_seqeval_f1(y_true, y_pred, zero_division=0)),
        }


def token_accuracy(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Percentage (0..100) of tokens whose predicted tag equals the gold tag, over all sentences.

    Raises:
        ValueError: if the number of sentences or any sentence's length differs, or there are no tokens.
    """
    _check_shapes(gold, pred, "token_accuracy")
    total = 0
    correct = 0
    for g, p in zip(gold, pred, strict=True):
        total += len(g)
        correct += sum(1 for a, b in zip(g, p, strict=True) if a == b)
    if total == 0:
        raise ValueError("token_accuracy: no tokens")
    return 100.0 * correct / total
