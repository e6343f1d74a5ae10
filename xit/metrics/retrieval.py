"""Sentence-retrieval metrics for XTREME: Tatoeba accuracy and BUCC bitext mining (numpy only).

- Tatoeba (Artetxe & Schwenk, 2019, "Massively Multilingual Sentence Embeddings for Zero-Shot
  Cross-Lingual Transfer and Beyond"): for each source sentence, the nearest target by cosine must be
  its translation; reported as accuracy.
- BUCC 2017/2018 shared task: candidate pairs are mined with the ratio margin of Artetxe & Schwenk
  (2019, "Margin-based Parallel Corpus Mining with Multilingual Sentence Embeddings") using the "max"
  retrieval strategy of LASER's ``mine_bitexts.py`` (as XTREME's ``bucc.py`` does), and scored with
  precision/recall/F1 at a threshold chosen as in XTREME's ``bucc_optimize``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Candidate = tuple[int, int, float]


def _as_float_matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (rows are embeddings), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: no rows")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Return a copy of ``x`` with every row scaled to unit L2 norm; all-zero rows stay zero.

    Integer input is promoted to float64; float input keeps its dtype.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        norm = np.linalg.norm(arr)
        return arr / norm if norm > 0 else arr.copy()
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    safe = np.where(norms > 0, norms, 1)
    return arr / safe


def _cosine(x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> np.ndarray:
    x = _as_float_matrix(x, xname)
    y = _as_float_matrix(y, yname)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{xname} has dimension {x.shape[1]} but {yname} has {y.shape[1]}")
    return l2_normalize(x) @ l2_normalize(y).T


def tatoeba_accuracy(src: np.ndarray, tgt: np.ndarray) -> float:
    """Percentage (0..100) of source rows whose cosine-nearest target row is the same index.

    Row ``i`` of ``src`` is the translation of row ``i`` of ``tgt``. Ties go to the lowest target
    index (``np.argmax``).

    Raises:
        ValueError: if the arrays are not 2-D, are empty, or differ in row count or dimension.
    """
    src_arr = np.asarray(src)
    tgt_arr = np.asarray(tgt)
    if src_arr.ndim == 2 and tgt_arr.ndim == 2 and src_arr.shape[0] != tgt_arr.shape[0]:
        raise ValueError(
            f"tatoeba_accuracy: {src_arr.shape[0]} source rows but {tgt_arr.shape[0]} target rows"
        )
    sim = _cosine(src_arr, tgt_arr, "src", "tgt")
    nearest = np.argmax(sim, axis=1)
    return 100.0 * float(np.mean(nearest == np.arange(sim.shape[0])))


def _mean_top_k(sim: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values in every row of ``sim``."""
    n = sim.shape[1]
    top = np.partition(sim, n - k, axis=1)[:, n - k :]
    return top.mean(axis=1)


def ratio_margin_scores(x: np.ndarray, y: np.ndarray, k: int = 4) -> np.ndarray:
    """Ratio-margin score matrix of Artetxe & Schwenk (2019), shape ``(n_x, n_y)``.

    ``margin(x, y) = cos(x, y) / (sum_{z in NN_k(x)} cos(x, z) / 2k + sum_{z in NN_k(y)} cos(y, z) / 2k)``
    where ``NN_k(x)`` are the ``k`` nearest rows of ``y`` to ``x`` (and ``NN_k(y)`` the ``k`` nearest rows
    of ``x`` to ``y``). Rows are L2-normalised first. ``k`` is clipped to the number of candidates on
    each side. Entries whose denominator is 0 (only possible with zero or opposed vectors) are 0.

    Raises:
        ValueError: on ``k < 1``, non-2-D or empty inputs, or mismatched dimensions.
    """
    if k < 1:
        raise ValueError(f"ratio_margin_scores: k must be >= 1, got {k}")
    sim = _cosine(x, y, "x", "y")
    n_x, n_y = sim.shape
    fwd = _mean_top_k(sim, min(k, n_y))  # mean cos of each x to its k nearest y: (n_x,)
    bwd = _mean_top_k(sim.T, min(k, n_x))  # mean cos of each y to its k nearest x: (n_y,)
    denom = (fwd[:, None] + bwd[None, :]) / 2
    out = np.zeros_like(sim)
    np.divide(sim, denom, out=out, where=denom != 0)
    return out


def mine_bitext(x: np.ndarray, y: np.ndarray, k: int = 4) -> list[Candidate]:
    """Mine sentence pairs with the ratio margin and LASER's "max" retrieval strategy (used for BUCC).

    Every ``x`` row proposes its best ``y`` (argmax of its margin row) and every ``y`` row proposes its
    best ``x`` (argmax of its margin column). Both proposal lists are pooled, sorted by score
    descending (stable: forward proposals first on ties), and a pair is kept only if neither its
    source nor its target index was already kept.

    Returns:
        ``(src_idx, tgt_idx, score)`` triples sorted by score descending.
    """
    scores = ratio_margin_scores(x, y, k)
    n_x, n_y = scores.shape
    fwd_best = np.argmax(scores, axis=1)
    bwd_best = np.argmax(scores, axis=0)
    src = np.concatenate([np.arange(n_x), bwd_best])
    tgt = np.concatenate([fwd_best, np.arange(n_y)])
    pooled = np.concatenate([scores[np.arange(n_x), fwd_best], scores[bwd_best, np.arange(n_y)]])
    kept: list[Candidate] = []
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    for i in np.argsort(-pooled, kind="stable"):
        s, t = int(src[i]), int(tgt[i])
        if s in seen_src or t in seen_tgt:
            continue
        seen_src.add(s)
        seen_tgt.add(t)
        kept.append((s, t, float(pooled[i])))
    return kept


def _prf(n_correct: int, n_pred: int, n_gold: int) -> dict[str, float]:
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold
    f1 = 2 * precision * recall / (precision + recall) if n_correct else 0.0
    return {"precision": 100.0 * precision, "recall": 100.0 * recall, "f1": 100.0 * f1}


def bucc_f1(
    candidates: Iterable[Candidate], gold: set[tuple[int, int]], threshold: float
) -> dict[str, float]:
    """Precision/recall/F1 (0..100) of the candidates with ``score >= threshold`` against ``gold``.

    Candidates are ``(src_idx, tgt_idx, score)`` triples, assumed to be distinct pairs (as returned by
    :func:`mine_bitext`); recall is over ``len(gold)``, so gold pairs never mined count as misses.

    Raises:
        ValueError: if ``gold`` is empty.
    """
    if not gold:
        raise ValueError("bucc_f1: gold is empty")
    predicted = [(s, t) for s, t, score in candidates if score >= threshold]
    n_correct = sum(1 for pair in predicted if pair in gold)
    return _prf(n_correct, len(predicted), len(gold))


def best_threshold(
    candidates: Iterable[Candidate], gold: set[tuple[int, int]]
) -> tuple[float, dict[str, float]]:
    """Score threshold maximising F1 on ``candidates`` against ``gold`` (XTREME's ``bucc_optimize``).

    Candidates are swept in order of decreasing score; after each distinct score value, F1 of all
    candidates at or above it is computed. The threshold returned is the score of the last candidate
    kept at the best F1 (ties go to the higher threshold). Candidates sharing a score are taken
    together, so the returned metrics equal ``bucc_f1(candidates, gold, threshold)``. If no candidate
    is correct, the highest score is returned (F1 is 0 everywhere).

    XTREME's own script returns the midpoint between the last kept score and the next one; here the
    threshold is the kept score itself, which selects the same set under ``score >= threshold``.

    Raises:
        ValueError: if ``candidates`` or ``gold`` is empty.
    """
    items = sorted(candidates, key=lambda c: -c[2])
    if not items:
        raise ValueError("best_threshold: no candidates")
    if not gold:
        raise ValueError("best_threshold: gold is empty")
    best_f1 = -1.0
    threshold = float(items[0][2])
    best = _prf(0, 0, len(gold))
    n_correct = 0
    for i, (s, t, score) in enumerate(items):
        if (s, t) in gold:
            n_correct += 1
        if i + 1 < len(items) and items[i + 1][2] == score:
            continue  # finish the group of equal scores first
        metrics = _prf(n_correct, i + 1, len(gold))
        if n_correct and metrics["f1"] > best_f1:
            best_f1 = metrics["f1"]
            threshold = float(score)
            best = metrics
    return threshold, best
