"""SQuAD v1.1 evaluation, following the semantics of the official ``evaluate-v1.1.py`` script.

Used by XTREME for XQuAD, MLQA and TyDiQA-GoldP. Answers are normalised (lower-case, punctuation
removed, English articles removed, whitespace collapsed); exact match compares normalised strings and
F1 is the bag-of-tokens overlap between the normalised prediction and gold answer. Each question
takes its best score over the gold answers, and scores are averaged over every question in the
references; a question without a prediction scores 0, as in the official script.

:func:`squad2_scores` adds SQuAD v2.0 (``evaluate-v2.0.py``): unanswerable questions, whose only
correct prediction is the empty string, and the HasAns/NoAns breakdown.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

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
    return corpus_scores(predictions, references, exact_match_score, f1_score, "squad_scores")


def corpus_scores(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    em_fn: Callable[[str, str], bool],
    f1_fn: Callable[[str, str], float],
    name: str,
) -> dict:
    """The SQuAD-style corpus average shared by SQuAD v1.1 and MLQA: max over golds per question,
    mean over all questions of ``references`` (a missing prediction counts 0), in percent."""
    if not references:
        raise ValueError(f"{name}: references is empty")
    em_total = 0.0
    f1_total = 0.0
    for qid, golds in references.items():
        if isinstance(golds, str) or len(golds) == 0:
            raise ValueError(f"{name}: question {qid!r} needs a non-empty list of gold answers")
        if qid not in predictions:
            continue
        pred = predictions[qid]
        em_total += max(float(em_fn(pred, g)) for g in golds)
        f1_total += max(f1_fn(pred, g) for g in golds)
    n = len(references)
    em = 100.0 * em_total / n
    f1 = 100.0 * f1_total / n
    return {"em": em, "f1": f1, "em_f1": (em + f1) / 2, "n": n}


def _v2_f1(prediction: str, ground_truth: str) -> float:
    """Token F1 of the official SQuAD v2.0 script: if either side normalises to no tokens, 1 when both do."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    return f1_score(prediction, ground_truth)


def squad2_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict:
    """Corpus-level SQuAD v2.0 scores in percent, following the official ``evaluate-v2.0.py``.

    A question whose gold list is empty is unanswerable. As in the official script, gold answers that
    normalise to the empty string are dropped and a question left with none is scored against ``[""]``,
    so an unanswerable question scores EM = F1 = 1 exactly when the prediction normalises to ``""``
    (F1 of two empty token lists is 1, of an empty and a non-empty one 0); an answerable question
    predicted ``""`` scores 0. Otherwise EM/F1 are the v1.1 ones (same normalisation), max over golds.
    The HasAns/NoAns split uses the raw gold list (non-empty = HasAns), as the official script does.

    Args:
        predictions: question id -> predicted answer text (``""`` = no answer).
        references: question id -> list of gold answer texts (empty for an unanswerable question).

    Returns:
        ``{"em", "f1", "em_f1", "n", "HasAns_em", "HasAns_f1", "HasAns_n", "NoAns_em", "NoAns_f1",
        "NoAns_n"}`` in 0..100 (``em_f1 = (em + f1) / 2``), averaged over all ``n`` questions in
        ``references``; a ``HasAns_*``/``NoAns_*`` group is omitted when it has no question (as in the
        official script). A missing prediction scores 0, as in :func:`squad_scores` (the official v2.0
        script skips it instead; :class:`~xit.formats.span_qa.SpanQA` always predicts every question).
        No-answer probabilities / thresholds are not used here: the decoder already predicts ``""``.

    Raises:
        ValueError: if ``references`` is empty or a gold entry is a bare string.
    """
    if not references:
        raise ValueError("squad2_scores: references is empty")
    exact: dict[str, float] = {}
    f1: dict[str, float] = {}
    has_ans: list[str] = []
    no_ans: list[str] = []
    for qid, golds in references.items():
        if isinstance(golds, str):
            raise ValueError(f"squad2_scores: question {qid!r} needs a list of gold answers, got a string")
        (has_ans if len(golds) > 0 else no_ans).append(qid)
        if qid not in predictions:
            exact[qid] = f1[qid] = 0.0
            continue
        pred = predictions[qid]
        kept = [g for g in golds if normalize_answer(g)] or [""]
        exact[qid] = max(float(exact_match_score(pred, g)) for g in kept)
        f1[qid] = max(_v2_f1(pred, g) for g in kept)

    def mean(scores: dict[str, float], qids: Sequence[str]) -> float:
        return 100.0 * sum(scores[q] for q in qids) / len(qids)

    qids = list(references)
    em, f1_all = mean(exact, qids), mean(f1, qids)
    out: dict = {"em": em, "f1": f1_all, "em_f1": (em + f1_all) / 2, "n": len(qids)}
    for prefix, group in (("HasAns", has_ans), ("NoAns", no_ans)):
        if group:
            out[f"{prefix}_em"] = mean(exact, group)
            out[f"{prefix}_f1"] = mean(f1, group)
            out[f"{prefix}_n"] = len(group)
    return out
