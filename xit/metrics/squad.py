"""SQuAD v1.1 evaluation, following the semantics of the official ``evaluate-v1.1.py`` script.

Used by XTREME for XQuAD, MLQA and TyDiQA-GoldP. Answers are normalised (lower-case, punctuation
removed, English articles removed, whitespace collapsed); exact match compares normalised strings and
F1 is the bag-of-tokens overlap between the normalised prediction and gold answer. Each question
takes its best score over the gold answers, and scores are averaged over every question in the
references; a question without a prediction scores 0, as in the official script.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower-case, strip ``string.punctuation``, drop the articles a/an/the, collapse whitespace.

    The steps run in the order of the official SQuAD v1.1 script: lower, remove punctuation,
    remove articles (as whole words), then join on single spaces.
    """
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """True when the normalised prediction equals the normalised gold answer (SQuAD v1.1 EM)."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 (0..1) between normalised prediction and gold answer (SQuAD v1.1).

    Tokens are the whitespace-split normalised strings; overlap counts common tokens with
    multiplicity (``Counter`` intersection). Returns 0 when nothing overlaps.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict:
    """Corpus-level SQuAD v1.1 scores in percent.

    Args:
        predictions: question id -> predicted answer text.
        references: question id -> list of gold answer texts (at least one each).

    Returns:
        ``{"em", "f1", "em_f1", "n"}``: EM and F1 in 0..100 averaged over all ``n`` questions in
        ``references`` (max over gold answers per question; a missing prediction counts as 0), and
        ``em_f1 = (em + f1) / 2``. Predictions for ids not in ``references`` are ignored.

    Raises:
        ValueError: if ``references`` is empty or a question has no gold answer.
    """
    if not references:
        raise ValueError("squad_scores: references is empty")
    em_total = 0.0
    f1_total = 0.0
    for qid, golds in references.items():
        if isinstance(golds, str) or len(golds) == 0:
            raise ValueError(f"squad_scores: question {qid!r} needs a non-empty list of gold answers")
        if qid not in predictions:
            continue
        pred = predictions[qid]
        em_total += max(float(exact_match_score(pred, g)) for g in golds)
        f1_total += max(f1_score(pred, g) for g in golds)
    n = len(references)
    em = 100.0 * em_total / n
    f1 = 100.0 * f1_total / n
    return {"em": em, "f1": f1, "em_f1": (em + f1) / 2, "n": n}
