"""Extractive span QA (SQuAD, XQuAD, MLQA, TyDiQA-GoldP): SQuAD-style EM/F1.

Long contexts are split into overlapping windows (`doc_stride`); token offsets map
predicted spans back to the original context text. A window that does not contain the
answer is trained to point at the first token (<s>), as in the reference implementations.

A task that declares `no_answer` (SQuAD v2.0) also has unanswerable questions (rows with an empty
`answers.text`): every window of such a row is trained to point at the first token, decoding predicts
"" when the null score beats the best span, and scoring follows the official SQuAD v2.0 script. A task that
declares `answer_normalisation="mlqa"` (MLQA) is scored with MLQA's per-language normalisation, each row in its
``language``. Every other task is scored as SQuAD v1.1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xit.errors import WorkError
from xit.formats import span_qa_room
from xit.formats.base import Format
from xit.formats.rows import SpanQARow
from xit.metrics.mlqa import mlqa_scores
from xit.metrics.squad import squad2_scores, squad_scores

# Question tokens kept when `max_query_length` is not set: XTREME's run_squad.py default (`_capped_questions`).
MAX_QUERY_LENGTH = 64


class SpanQA(Format):
    name = "span_qa"

    def make_head(self, hidden: int, task: Any) -> nn.Module:
        return nn.Linear(hidden, 2)

    def featurize(self, rows: list[dict], tokenizer: Any, task: Any, hp: dict, train: bool) -> list[dict]:
        if not rows:
            return []
        max_length, stride = int(hp["max_length"]), int(hp["doc_stride"])
        questions = _capped_questions([r["question"].lstrip() for r in rows], tokenizer, max_length, stride,
                                      int(hp.get("max_query_length") or MAX_QUERY_LENGTH))
        contexts = [r["context"] for r in rows]
        enc = tokenizer(
            questions, contexts, truncation="only_second", max_length=max_length,
            stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
        )
        feats = []
        for i, ids in enumerate(enc["input_ids"]):
            row_idx = enc["overflow_to_sample_mapping"][i]
            seq = enc.sequence_ids(i)
            offsets = [o if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq, strict=True)]
            f: dict[str, Any] = {"input_ids": ids, "attention_mask": enc["attention_mask"][i]}
            if train:
                f["start_positions"], f["end_positions"] = _answer_tokens(rows[row_idx], offsets)
            else:
                f["_row"], f["_offsets"] = row_idx, offsets
            feats.append(f)
        return feats

    def forward(self, model: Any, task: str, batch: dict[str, torch.Tensor]) -> tuple[Any, torch.Tensor]:
        hidden = model.encode(batch["input_ids"], batch["attention_mask"])
        logits = model.heads[task](hidden)  # [B, L, 2]
        logits = logits.masked_fill(batch["attention_mask"].unsqueeze(-1) == 0, -1e4)
        loss = None
        if "start_positions" in batch:
            ce = nn.functional.cross_entropy
            loss = (ce(logits[..., 0], batch["start_positions"]) + ce(logits[..., 1], batch["end_positions"])) / 2
        return loss, logits

    def decode(self, task: Any, rows: list[dict], features: list[dict], logits: list[np.ndarray],
               hp: dict) -> list[str]:
        n_best, max_len = int(hp["n_best"]), int(hp["max_answer_length"])
        no_answer = task.no_answer
        best: dict[int, tuple[float, str]] = {}
        null: dict[int, float] = {}  # per row: minimum over its windows of start_logit[0] + end_logit[0]
        for f, lg in zip(features, logits, strict=True):
            offsets, ctx = f["_offsets"], rows[f["_row"]]["context"]
            n = len(offsets)
            start_lg, end_lg = lg[:n, 0], lg[:n, 1]
            if no_answer:
                null[f["_row"]] = min(null.get(f["_row"], np.inf), float(start_lg[0] + end_lg[0]))
            starts = np.argsort(-start_lg)[:n_best]
            ends = np.argsort(-end_lg)[:n_best]
            for s in starts:
                for e in ends:
                    if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_len:
                        continue
                    score = float(start_lg[s] + end_lg[e])
                    if f["_row"] not in best or score > best[f["_row"]][0]:
                        best[f["_row"]] = (score, ctx[offsets[s][0] : offsets[e][1]].strip())
        if no_answer:
            # As in the SQuAD v2 reference post-processing: "" when null - best span > threshold (transformers
            # data/metrics/squad_metrics.py compute_predictions_logits, `null_score_diff_threshold`; run_squad.py's
            # --null_score_diff_threshold, default 0.0).
            threshold = float(hp.get("null_score_diff_threshold", 0.0))
            for i, (score, _) in list(best.items()):
                if null[i] - score > threshold:
                    best[i] = (null[i], "")
        return [best.get(i, (0.0, ""))[1] for i in range(len(rows))]

    def gold(self, task: Any, row: dict) -> str:
        if task.no_answer and not row["answers"]["text"]:
            return ""
        return row["answers"]["text"][0]

    def score(self, task: Any, rows: list[dict], predictions: list[Any]) -> dict[str, float]:
        preds = {r["id"]: p for r, p in zip(rows, predictions, strict=True)}
        if task.answer_normalisation == "mlqa" and rows:
            # MLQA's official language-specific normalisation, each row in its answer language, averaged over all
            # questions (each language's scores weighted by its question count).
            by_lang: dict[str, dict[str, list[str]]] = {}
            for r in rows:
                by_lang.setdefault(r["language"], {})[r["id"]] = list(r["answers"]["text"])
            parts = [mlqa_scores(preds, refs, lang) for lang, refs in by_lang.items()]
            n = sum(p["n"] for p in parts)
            em = sum(p["em"] * p["n"] for p in parts) / n
            f1 = sum(p["f1"] * p["n"] for p in parts) / n
            return {"em": em, "f1": f1, "em_f1": (em + f1) / 2}
        refs = {r["id"]: list(r["answers"]["text"]) for r in rows}
        if task.no_answer:
            s2 = squad2_scores(preds, refs)
            return {k: v for k, v in s2.items() if not k.endswith("_n") and k != "n"}
        s = squad_scores(preds, refs)
        return {"em": s["em"], "f1": s["f1"], "em_f1": s["em_f1"]}


def _capped_questions(questions: list[str], tokenizer: Any, max_length: int, stride: int,
                      max_query_length: int) -> list[str]:
    """Each question cut to its first ``cap`` tokens, as google-research/xtreme ``third_party/run_squad.py``
    does (``--max_query_length``, default 64): ``third_party/processors/squad.py``
    ``squad_convert_example_to_features`` encodes the question with ``max_length=max_query_length`` before the
    context windows are made (as transformers' ``squad_convert_example_to_features``).

    ``cap`` is ``max_query_length``, lowered where needed so that every window still holds more context tokens
    than ``doc_stride`` (the fast tokenizer panics otherwise: its overlap must be shorter than the room left).
    A question is cut in its text, at the end of its last kept token, so the offsets into the context are
    untouched. The questions are tokenised once; only the cut ones are tokenised again, together, to check that
    the cut text still fits: the rare one that tokenises longer once cut loses one more token (again together
    with any others still too long) until it fits."""
    room = span_qa_room(max_length, stride, tokenizer.num_special_tokens_to_add(pair=True))
    if room < 1:
        # the spec check refuses this for tokenizers with at most 4 special tokens a pair: here it is a failure
        raise WorkError(f"span QA: max_length {max_length} leaves no room for a question and a context window "
                       f"longer than doc_stride {stride}; raise max_length or lower doc_stride")
    cap = min(max_query_length, room)
    offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    out = list(questions)
    cut = [i for i, o in enumerate(offsets) if len(o) > cap]
    for keep in range(cap, 0, -1):
        if not cut:
            break
        for i in cut:
            out[i] = questions[i][: offsets[i][keep - 1][1]]
        ids = tokenizer([out[i] for i in cut], add_special_tokens=False)["input_ids"]
        cut = [i for i, t in zip(cut, ids, strict=True) if len(t) > cap]
    return out


def _answer_tokens(row: SpanQARow, offsets: list[tuple[int, int] | None]) -> tuple[int, int]:
    """Token positions of the first gold answer in this window, or (0, 0) if it is not inside.

    A row without answers (unanswerable, SQuAD v2.0) is (0, 0) in every window.
    """
    if not row["answers"]["answer_start"]:
        return 0, 0
    start = int(row["answers"]["answer_start"][0])
    end = start + len(row["answers"]["text"][0])
    ctx_tokens = [i for i, o in enumerate(offsets) if o is not None]
    if not ctx_tokens or offsets[ctx_tokens[0]][0] > start or offsets[ctx_tokens[-1]][1] < end:
        return 0, 0
    s = next(i for i in ctx_tokens if offsets[i][1] > start)
    e = next(i for i in reversed(ctx_tokens) if offsets[i][0] < end)
    return s, e
