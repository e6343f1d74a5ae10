"""Sentence retrieval (BUCC, Tatoeba, LAReQA, Mewsli-X).

On an encoder without target training (BUCC, Tatoeba; LAReQA and Mewsli-X with
``retrieval.fine_tune: false``) sentences are embedded as the mean over non-padding tokens of
one hidden layer (XTREME: layer 14 of 24 for XLM-R Large; for other depths the same proportion);
on a fine-tuned dual encoder (LAReQA, Mewsli-X by default) as the first token's last hidden
state. Cosine similarity throughout. Tatoeba scores 1-NN cosine accuracy in both directions (headline, as
XTREME: the English sentence finding its translation among the non-English ones); BUCC mines pairs with
ratio-margin scoring (k=4) over the de-duplicated texts, tunes the F1-optimal threshold on the dev split and
applies it to test.
XTREME-R's language-agnostic tasks rank candidates by cosine and score mAP@20: LAReQA (every
question against the answer sentences of all languages at once) and Mewsli-X (entity mentions
against one multilingual set of entity descriptions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xit.metrics.retrieval import best_threshold, bucc_f1, mine_bitext, tatoeba_accuracy


def tatoeba_scores(src: np.ndarray, tgt: np.ndarray) -> dict[str, float]:
    """Tatoeba 1-NN accuracy of the non-English embeddings ``src`` and their English translations ``tgt``.

    The headline ``accuracy`` is en->xx, XTREME's direction: google-research/xtreme
    ``third_party/evaluate_retrieval.py`` (task ``tatoeba``) calls ``utils_retrieve.similarity_search(x, y)``
    with x = the non-English sentences, which it indexes, and y = the English ones, which it queries with.
    xx->en is recorded beside it."""
    xx_en = tatoeba_accuracy(src, tgt)
    en_xx = tatoeba_accuracy(tgt, src)
    return {"accuracy": en_xx, "accuracy_xx_en": xx_en, "accuracy_en_xx": en_xx}


def bucc_candidates(x: np.ndarray, y: np.ndarray, row: dict, k: int = 4) -> list[tuple[int, int, float]]:
    """BUCC candidate pairs as XTREME mines and reads them, as ``(source line, target line, score)``.

    ``x``/``y`` embed every line of ``row["source"]``/``row["target"]``. As google-research/xtreme's
    ``third_party/utils_retrieve.py``: ``mine_bitext`` collapses identical texts first (``text_load_unify``,
    ``unique_embeddings``: one embedding per distinct text, its first line's), so duplicates neither crowd the
    k-NN neighbourhoods nor get mined twice, and writes only pairs scoring above 0; ``read_candidate2score`` maps
    a mined text back to its id through ``read_sent2id``, which drops every text (stripped) that occurs more
    than once on its side, so a pair on a duplicated text is never predicted (its gold pair counts as missed)."""

    def unify(texts: list[str]) -> tuple[list[int], dict[int, int]]:
        first: dict[str, int] = {}
        for i, t in enumerate(texts):
            first.setdefault(t, i)
        counts: dict[str, int] = {}
        for t in texts:
            counts[t.strip()] = counts.get(t.strip(), 0) + 1
        lines = list(first.values())  # unique text u -> its first line
        line_of = {u: i for u, i in enumerate(lines) if counts[texts[i].strip()] == 1}  # readable ones only
        return lines, line_of

    src_lines, src_line = unify(row["source"])
    tgt_lines, tgt_line = unify(row["target"])
    mined = mine_bitext(np.asarray(x)[src_lines], np.asarray(y)[tgt_lines], k=k)
    return [(src_line[u], tgt_line[v], score) for u, v, score in mined
            if score > 0 and u in src_line and v in tgt_line]


def bucc_scores(dev: tuple[np.ndarray, np.ndarray, dict], test: tuple[np.ndarray, np.ndarray, dict],
                k: int = 4) -> dict[str, float]:
    """Tune the threshold on dev, apply it to test (XTREME's ``bucc_eval``). Each argument: (src_emb, tgt_emb,
    row); candidates as `bucc_candidates`."""

    def mined(x: np.ndarray, y: np.ndarray, row: dict) -> tuple[list, set]:
        si = {s: i for i, s in enumerate(row["source_ids"])}
        ti = {t: i for i, t in enumerate(row["target_ids"])}
        return bucc_candidates(x, y, row, k=k), {(si[a], ti[b]) for a, b in row["gold"]}

    dev_c, dev_g = mined(*dev)
    if not dev_c:
        raise ValueError("bucc_scores: no dev candidate left after de-duplication")
    threshold, dev_m = best_threshold(dev_c, dev_g)
    test_c, test_g = mined(*test)
    m = bucc_f1(test_c, test_g, threshold)
    return {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"],
            "threshold": float(threshold), "dev_f1": dev_m["f1"]}


# --------------------------------------------------------------------------- XTREME-R: LAReQA, Mewsli-X

XTREMER_K = 20  # LAReQA and Mewsli-X are scored by mAP@20


def rank_top_k(queries: np.ndarray, candidates: np.ndarray, k: int, device: torch.device | None = None,
               block_elements: int = 1 << 26) -> np.ndarray:
    """Indices of the ``k`` candidates nearest to each query by cosine, best first: shape (queries, min(k, n)).

    Equal similarities are ordered by candidate index, the later one first: what the official scripts'
    ``scores.argsort()[::-1]`` gives (numpy sorts equal keys in index order, then the list is reversed).
    The similarity matrix is computed in blocks of queries (``block_elements`` entries at once), on
    ``device`` when given, so a pool of a million candidates fits.
    """
    from xit.metrics.retrieval import l2_normalize

    device = device or torch.device("cpu")
    q = torch.as_tensor(l2_normalize(np.asarray(queries, dtype=np.float32)), device=device)
    c = torch.as_tensor(l2_normalize(np.asarray(candidates, dtype=np.float32)), device=device)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1] or c.shape[0] == 0:
        raise ValueError(f"rank_top_k: queries {tuple(q.shape)} and candidates {tuple(c.shape)} do not match")
    k = min(k, c.shape[0])
    step = max(1, block_elements // c.shape[0])
    out = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], step):
        sims = q[start:start + step] @ c.T
        vals, idx = torch.topk(sims, k, dim=1)
        # Order the k by (similarity desc, index desc): sort by index desc, then stably by similarity.
        o = torch.argsort(idx, dim=1, descending=True)
        idx, vals = idx.gather(1, o), vals.gather(1, o)
        o = torch.argsort(vals, dim=1, descending=True, stable=True)
        idx = idx.gather(1, o)
        # A tie across the k-th place: topk may have kept the wrong one of the tied candidates; redo that row.
        tied = ((sims >= vals.min(dim=1, keepdim=True).values).sum(dim=1) > k).nonzero().flatten().tolist()
        block = idx.cpu().numpy()
        for r in tied:
            row = sims[r].cpu().numpy()
            order = np.lexsort((-np.arange(row.shape[0]), -row))
            block[r] = order[:k]
        out[start:start + block.shape[0]] = block
    return out


def lareqa_candidate_text(sentence: str, context: str) -> str:
    """What the official LAReQA evaluation embeds for a candidate: the sentence followed by its paragraph,
    newlines removed (``(sentence + context).replace("\\n", "")``, stripped)."""
    return (sentence + context).replace("\n", "").strip()


def _map_per_language(queries: dict[str, np.ndarray], relevant: dict[str, list[set[str]]], pool: np.ndarray,
                      pool_ids: list[str], k: int, device: torch.device | None) -> dict[str, dict[str, float]]:
    """mAP@k per language; the queries of all languages rank the pool in one pass, so the pool is normalised and
    moved to the device once (a million Mewsli-X entities, not once per language). A language without queries
    scores 0."""
    from xit.metrics.ranking import map_at_k

    langs = [lang for lang in queries if len(relevant[lang])]
    ranked = rank_top_k(np.concatenate([queries[lang] for lang in langs]), pool, k, device) if langs else None
    out, start = {}, 0
    for lang in queries:
        n = len(relevant[lang])
        rows = [[pool_ids[j] for j in r] for r in ranked[start:start + n]] if n else []
        out[lang] = {f"map@{k}": map_at_k(rows, relevant[lang], k) if n else 0.0, "n": n}
        start += n
    return out


def lareqa_scores(rows: dict[str, dict[str, Any]], questions: dict[str, np.ndarray], candidates: dict[str, np.ndarray],
                  k: int = XTREMER_K, device: torch.device | None = None) -> dict[str, dict[str, float]]:
    """LAReQA mAP@k per question language: every question retrieves from the pool of all languages' candidates.

    ``rows[lang]`` is the task's row for ``lang`` (``question_ids``, ``candidate_ids``, ``gold`` pairs
    ``[question_id, candidate_id]``); ``questions[lang]`` / ``candidates[lang]`` their embeddings, in row
    order. A question's relevant set is every candidate, in any language of the pool, that answers a question
    with the same id (XQuAD-R's ids are shared by the translations of a question).
    """
    langs = list(rows)
    pool_ids = [cid for lang in langs for cid in rows[lang]["candidate_ids"]]
    if len(set(pool_ids)) != len(pool_ids):
        raise ValueError("lareqa_scores: candidate ids repeat across the pool")
    pool = np.concatenate([candidates[lang] for lang in langs])
    answers: dict[str, set[str]] = {}
    for lang in langs:
        for qid, cid in rows[lang]["gold"]:
            answers.setdefault(qid, set()).add(cid)
    relevant = {lang: [answers[qid] for qid in rows[lang]["question_ids"]] for lang in langs}
    return _map_per_language(questions, relevant, pool, pool_ids, k, device)


def mewslix_scores(rows: dict[str, dict[str, Any]], mentions: dict[str, np.ndarray], entities: np.ndarray,
                   k: int = XTREMER_K, device: torch.device | None = None) -> dict[str, dict[str, float]]:
    """Mewsli-X mAP@k per mention language: each mention retrieves from the one shared entity candidate set.

    ``rows[lang]`` holds ``mention_ids``, ``gold`` (one entity id per mention) and ``candidate_ids`` (the same
    candidate set for every language), ``entities`` the candidates' embeddings. One relevant entity per
    mention, so mAP@k is the reciprocal rank cut at k (MRR@k); a gold entity outside the candidate set
    scores 0, as in the official scoring.
    """
    if not rows:
        return {}
    ids = next(iter(rows.values()))["candidate_ids"]
    relevant = {lang: [{gold} for gold in row["gold"]] for lang, row in rows.items()}
    return _map_per_language(mentions, relevant, entities, ids, k, device)
