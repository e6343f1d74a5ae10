"""Sentence-retrieval metrics for XTREME: Tatoeba accuracy and BUCC bitext mining (numpy only).

- Tatoeba (Artetxe & Schwenk, 2019, "Massively Multilingual Sentence Embeddings for Zero-Shot
  Cross-Lingual Transfer and Beyond"): for each source sentence, the nearest target by cosine must be
  its translation; reported as accuracy.
- BUCC 2017/2018 shared task: candidate pairs are mined with the ratio margin of Artetxe & Schwenk
  (2019, "Margin-based Parallel Corpus Mining with Multilingual Sentence Embeddings") using the "max"
  retrieval strategy of LASER's ``mine_bitexts.py`` (as XTREME's ``bucc.py`` does), and scored with
  precision/recall/F1 at a threshold chosen as in XTREME's ``bucc_optimize`` (midpoint between the last kept
  and the next candidate score).
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
    return 100.0 * float(np.mean(tatoeba_hits(src_arr, tgt_arr)))


def tatoeba_hits(src: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """Per source row, whether its cosine-nearest target row is the same index (`tatoeba_accuracy`'s terms)."""
    sim = _cosine(np.asarray(src), np.asarray(tgt), "src", "tgt")
    return np.argmax(sim, axis=1) == np.arange(sim.shape[0])


_BLOCK_ELEMENTS = 1 << 24  # similarity entries computed at once by the blocked kNN search (~64-128 MiB)


def _knn(q: np.ndarray, db: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar ``db`` rows of every ``q`` row (both already L2-normalised).

    Returns ``(sim, ind)``, each ``(n_q, k)``, sorted by similarity descending (ties: lower index
    first), like the exact inner-product search (faiss ``IndexFlatIP``) of LASER's ``knn``. The
    ``q @ db.T`` product is computed in row blocks, so only ``block x n_db`` similarities are held.
    """
    n_q, n_db = q.shape[0], db.shape[0]
    sims = np.empty((n_q, k), dtype=np.result_type(q.dtype, db.dtype))
    inds = np.empty((n_q, k), dtype=np.int64)
    step = max(1, _BLOCK_ELEMENTS // n_db)
    for lo in range(0, n_q, step):
        block = q[lo : lo + step] @ db.T
        if k < n_db:
            ind = np.sort(np.argpartition(-block, k - 1, axis=1)[:, :k], axis=1)
        else:
            ind = np.broadcast_to(np.arange(n_db), block.shape)
        val = np.take_along_axis(block, ind, axis=1)
        order = np.argsort(-val, axis=1, kind="stable")
        inds[lo : lo + step] = np.take_along_axis(ind, order, axis=1)
        sims[lo : lo + step] = np.take_along_axis(val, order, axis=1)
    return sims, inds


def _normalized_pair(x: np.ndarray, y: np.ndarray, k: int, fn: str) -> tuple[np.ndarray, np.ndarray]:
    if k < 1:
        raise ValueError(f"{fn}: k must be >= 1, got {k}")
    x = _as_float_matrix(x, "x")
    y = _as_float_matrix(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has dimension {x.shape[1]} but y has {y.shape[1]}")
    return l2_normalize(x), l2_normalize(y)


def _ratio(cos: np.ndarray, denom: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast_shapes(cos.shape, denom.shape), dtype=np.result_type(cos, denom))
    np.divide(cos, denom, out=out, where=denom != 0)
    return out


def ratio_margin_scores(x: np.ndarray, y: np.ndarray, k: int = 4) -> np.ndarray:
    """Ratio-margin score matrix of Artetxe & Schwenk (2019), shape ``(n_x, n_y)``.

    ``margin(x, y) = cos(x, y) / (sum_{z in NN_k(x)} cos(x, z) / 2k + sum_{z in NN_k(y)} cos(y, z) / 2k)``
    where ``NN_k(x)`` are the ``k`` nearest rows of ``y`` to ``x`` (and ``NN_k(y)`` the ``k`` nearest rows
    of ``x`` to ``y``). Rows are L2-normalised first. ``k`` is clipped to the number of candidates on
    each side. Entries whose denominator is 0 (only possible with zero or opposed vectors) are 0.

    This is the full matrix (for inspection and small inputs); :func:`mine_bitext` scores only the
    kNN candidates and never builds it.

    Raises:
        ValueError: on ``k < 1``, non-2-D or empty inputs, or mismatched dimensions.
    """
    xs, ys = _normalized_pair(x, y, k, "ratio_margin_scores")
    fwd = _knn(xs, ys, min(k, ys.shape[0]))[0].mean(axis=1)  # mean cos of each x to its k nearest y
    bwd = _knn(ys, xs, min(k, xs.shape[0]))[0].mean(axis=1)  # mean cos of each y to its k nearest x
    return _ratio(xs @ ys.T, (fwd[:, None] + bwd[None, :]) / 2)


def mine_bitext(x: np.ndarray, y: np.ndarray, k: int = 4) -> list[Candidate]:
    """Mine sentence pairs with the ratio margin and LASER's "max" retrieval strategy (used for BUCC).

    As in LASER's ``mine_bitexts.py``: the ``k`` nearest neighbours by cosine are searched in both
    directions (``x`` in ``y`` and ``y`` in ``x``, ``k`` clipped to the other side's size); their mean
    similarities give the ratio-margin denominators (see :func:`ratio_margin_scores`), and the *same*
    neighbours are the only candidates. Every ``x`` row proposes the ``y`` among its ``k`` nearest with
    the highest margin, and every ``y`` row the best ``x`` among its ``k`` nearest (margin ties: the
    more similar neighbour). A pair outside both neighbourhoods is never proposed, even if its margin
    is the row's maximum. Both proposal lists are pooled, sorted by score descending (stable: forward
    proposals first on ties), and a pair is kept only if neither its source nor its target index was
    already kept. Similarities are computed in row blocks; no ``n_x x n_y`` matrix is held.

    Returns:
        ``(src_idx, tgt_idx, score)`` triples sorted by score descending.
    """
    xs, ys = _normalized_pair(x, y, k, "mine_bitext")
    n_x, n_y = xs.shape[0], ys.shape[0]
    x2y_sim, x2y_ind = _knn(xs, ys, min(k, n_y))
    y2x_sim, y2x_ind = _knn(ys, xs, min(k, n_x))
    fwd_mean, bwd_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)
    fwd_scores = _ratio(x2y_sim, (fwd_mean[:, None] + bwd_mean[x2y_ind]) / 2)
    bwd_scores = _ratio(y2x_sim, (bwd_mean[:, None] + fwd_mean[y2x_ind]) / 2)
    fwd_pick = np.argmax(fwd_scores, axis=1)
    bwd_pick = np.argmax(bwd_scores, axis=1)
    fwd_best = x2y_ind[np.arange(n_x), fwd_pick]
    bwd_best = y2x_ind[np.arange(n_y), bwd_pick]
    src = np.concatenate([np.arange(n_x), bwd_best])
    tgt = np.concatenate([fwd_best, np.arange(n_y)])
    pooled = np.concatenate([fwd_scores[np.arange(n_x), fwd_pick], bwd_scores[np.arange(n_y), bwd_pick]])
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
    """Score threshold maximising F1 on ``candidates`` against ``gold``, as XTREME's ``bucc_optimize``.

    Candidates are swept in order of decreasing score; after each distinct score value, F1 of all
    candidates at or above it is computed (ties go to the higher threshold, i.e. the first optimum).
    As in XTREME, the threshold returned is the *midpoint* between the score of the last candidate
    kept at the best F1 and the next (lower) candidate score, ``(items[i].score + items[i+1].score) / 2``;
    when the optimum keeps every candidate there is no next score and the lowest score itself is
    returned (XTREME's script would index past the end there). The returned metrics equal
    ``bucc_f1(candidates, gold, threshold)``: the midpoint selects exactly the optimum's set under
    ``score >= threshold``.

    Candidates sharing a score are taken together (XTREME sweeps them one by one, so on exact score
    ties it can report an F1 that no threshold realises; the two agree whenever scores are distinct).
    If no candidate is correct, the highest score is returned (F1 is 0 everywhere; XTREME returns 0).

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
            threshold = _midpoint(float(score), float(items[i + 1][2])) if i + 1 < len(items) else float(score)
            best = metrics
    return threshold, best


def _midpoint(kept: float, below: float) -> float:
    """``(kept + below) / 2``, or ``kept`` if rounding would let the midpoint admit ``below`` (adjacent floats)."""
    mid = (kept + below) / 2
    return mid if below < mid <= kept else kept
