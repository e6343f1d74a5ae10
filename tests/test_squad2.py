"""SQuAD v2.0's unanswerable questions through the span-QA format (training on token 0, null-score decoding,
predicting the gold answers) and its loader; its metric is in test_metrics.py.

Expected values are computed by hand in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xit.formats import SpanQA
from xit.tasks.registry import DataSource, get_task

QA_HP = {"max_length": 64, "doc_stride": 16, "n_best": 20, "max_answer_length": 30}
HIGH, LOW = 10.0, -10.0

# --------------------------------------------------------------------------- squad2_scores


# --------------------------------------------------------------------------- span_qa decoding

CONTEXT = "Ana Lima lives in Porto. Ben has a green river and a golden lantern."


def _row(qid: str, answer: str | None) -> dict[str, Any]:
    if answer is None:
        return {"id": qid, "context": CONTEXT, "question": "who ?", "answers": {"text": [], "answer_start": []}}
    return {"id": qid, "context": CONTEXT, "question": "who ?",
            "answers": {"text": [answer], "answer_start": [CONTEXT.index(answer)]}}


def test_registry_switch() -> None:
    assert get_task("squad2").no_answer and not get_task("squad").no_answer


def test_unanswerable_rows_train_on_token_zero(tiny_tokenizer: Any) -> None:
    rows = [_row("n", None), _row("a", "green river")]
    feats = SpanQA().featurize(rows, tiny_tokenizer, get_task("squad2"), QA_HP, train=True)
    by_row: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    evals = SpanQA().featurize(rows, tiny_tokenizer, get_task("squad2"), QA_HP, train=False)
    for tf, ef in zip(feats, evals, strict=True):
        by_row[ef["_row"]].append((tf["start_positions"], tf["end_positions"]))
    assert by_row[0] and all(p == (0, 0) for p in by_row[0])
    assert any(p != (0, 0) for p in by_row[1])


def _one_window_logits(tiny_tokenizer: Any, null: float, span: float) -> tuple[list[dict], list[dict],
                                                                                list[np.ndarray]]:
    """One answerable row in one window; logits: start/end at the gold span = span/2 each,
    token 0 = null/2 each, everything else LOW."""
    rows = [_row("q", "golden lantern")]
    fmt = SpanQA()
    train = fmt.featurize(rows, tiny_tokenizer, get_task("squad"), QA_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, get_task("squad"), QA_HP, train=False)
    assert len(evals) == 1
    lg = np.full((len(evals[0]["input_ids"]), 2), LOW, dtype=np.float32)
    lg[train[0]["start_positions"], 0] = span / 2
    lg[train[0]["end_positions"], 1] = span / 2
    lg[0, :] = null / 2
    return rows, evals, [lg]


@pytest.mark.parametrize(
    ("null", "span", "threshold", "expected"),
    [
        (12.0, 10.0, 0.0, ""),  # null - span = 2 > 0 -> no answer
        (12.0, 10.0, 1.5, ""),  # 2 > 1.5
        (12.0, 10.0, 2.0, "golden lantern"),  # 2 is not > 2
        (12.0, 10.0, 3.0, "golden lantern"),
        (8.0, 10.0, 0.0, "golden lantern"),  # span wins
        (8.0, 10.0, -2.5, ""),  # negative threshold: -2 > -2.5
    ],
)
def test_decode_null_score_vs_span(tiny_tokenizer: Any, null: float, span: float, threshold: float,
                                   expected: str) -> None:
    rows, evals, logits = _one_window_logits(tiny_tokenizer, null, span)
    hp = {**QA_HP, "null_score_diff_threshold": threshold}
    assert SpanQA().decode(get_task("squad2"), rows, evals, logits, hp) == [expected]
    # SQuAD v1.1 ignores the null score: always the best span
    assert SpanQA().decode(get_task("squad"), rows, evals, logits, hp) == ["golden lantern"]


LONG_CTX = " ".join(f"Person{i} lives in town{i} near the river." for i in range(12)) + " Zed won it."


def test_decode_null_score_is_min_over_windows(tiny_tokenizer: Any) -> None:
    # Several windows; the answer's window has null score -20 and span score 10, every other window
    # null +20. The row's null score is the minimum over windows (-20) < 10 -> the span; with a
    # maximum (+20 > 10) it would abstain.
    row = {"id": "q", "context": LONG_CTX, "question": "who won ?",
           "answers": {"text": ["Zed"], "answer_start": [LONG_CTX.index("Zed")]}}
    fmt, task = SpanQA(), get_task("squad2")
    train = fmt.featurize([row], tiny_tokenizer, task, QA_HP, train=True)
    evals = fmt.featurize([row], tiny_tokenizer, task, QA_HP, train=False)
    assert len(evals) > 1
    logits = []
    for f in train:
        lg = np.full((len(f["input_ids"]), 2), LOW, dtype=np.float32)
        if (f["start_positions"], f["end_positions"]) == (0, 0):
            lg[0, :] = HIGH
        else:
            lg[f["start_positions"], 0] = lg[f["end_positions"], 1] = 5.0
        logits.append(lg)
    assert fmt.decode(task, [row], evals, logits, QA_HP) == ["Zed"]
    # raising the threshold cannot make it abstain; a null score above the span in *every* window does
    for lg in logits:
        lg[0, :] = HIGH
    assert fmt.decode(task, [row], evals, logits, QA_HP) == [""]
    assert fmt.decode(task, [row], evals, logits, {**QA_HP, "null_score_diff_threshold": 10.0}) == ["Zed"]


def _perfect_v2_logits(train_feats: list[dict]) -> list[np.ndarray]:
    """Logits from the training targets, v2-style: a (0, 0) window points at token 0."""
    out = []
    for f in train_feats:
        lg = np.full((len(f["input_ids"]), 2), LOW, dtype=np.float32)
        lg[f["start_positions"], 0] = HIGH
        lg[f["end_positions"], 1] = HIGH
        out.append(lg)
    return out


def test_squad2_predict_gold_through_format(tiny_tokenizer: Any) -> None:
    long_ctx = LONG_CTX
    rows = [
        {"id": "a", "context": long_ctx, "question": "who won ?",
         "answers": {"text": ["Zed"], "answer_start": [long_ctx.index("Zed")]}},
        {"id": "b", "context": long_ctx, "question": "where ?",
         "answers": {"text": ["town3"], "answer_start": [long_ctx.index("town3")]}},
        {"id": "n", "context": long_ctx, "question": "who lost ?", "answers": {"text": [], "answer_start": []}},
    ]
    fmt, task = SpanQA(), get_task("squad2")
    train = fmt.featurize(rows, tiny_tokenizer, task, QA_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, task, QA_HP, train=False)
    assert sum(1 for f in evals if f["_row"] == 0) > 1  # several windows: the null score is a min over them
    logits = _perfect_v2_logits(train)
    preds = fmt.decode(task, rows, evals, logits, QA_HP)
    assert preds == [fmt.gold(task, r) for r in rows] == ["Zed", "town3", ""]
    s = fmt.score(task, rows, preds)
    assert s["em"] == s["f1"] == s["em_f1"] == pytest.approx(100.0)
    assert s["HasAns_f1"] == s["NoAns_f1"] == pytest.approx(100.0)
    # the same logits through SQuAD v1.1 decoding never abstain: the answerable rows are unchanged
    v1 = fmt.decode(get_task("squad"), rows, evals, logits, QA_HP)
    assert v1[:2] == ["Zed", "town3"] and v1[2] != ""
    # scoring an all-abstaining prediction: HasAns 0, NoAns 100 -> overall 1/3
    s0 = fmt.score(task, rows, ["", "", ""])
    assert s0["em"] == pytest.approx(100 / 3) and s0["HasAns_em"] == 0.0 and s0["NoAns_em"] == 100.0


# --------------------------------------------------------------------------- squad2 loader


def _v2_json() -> dict[str, Any]:
    ctx = "Denver Broncos won Super Bowl 50 in 2016."
    return {"version": "v2.0", "data": [{"title": "SB50", "paragraphs": [{"context": ctx, "qas": [
        {"id": "q1", "question": "Who won?", "is_impossible": False,
         "answers": [{"text": "Denver Broncos", "answer_start": 0}, {"text": "Broncos", "answer_start": 7}]},
        {"id": "q2", "question": "Who lost?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "Denver Broncos", "answer_start": 0}]},
    ]}]}]}


def test_squad2_local_loader(tmp_path: Path) -> None:
    (tmp_path / "dev-v2.0.json").write_text(json.dumps(_v2_json()), encoding="utf-8")
    (tmp_path / "train-v2.0.json").write_text(json.dumps(_v2_json()), encoding="utf-8")
    task = get_task("squad2")
    assert (task.format, task.metric, task.family, task.eval_split) == ("span_qa", "em_f1", "english", "dev")
    assert task.roles == frozenset({"intermediate"}) and task.languages == ("en",)
    src = DataSource(data_dir=tmp_path)
    assert [p.name for p in task.local_files("en", "dev", src)] == ["dev-v2.0.json"]
    dev = task.load("en", "dev", src)
    assert dev[1] == {"id": "q2", "context": dev[0]["context"], "question": "Who lost?",
                      "answers": {"text": [], "answer_start": []}}  # plausible_answers ignored
    assert dev[0]["answers"] == {"text": ["Denver Broncos", "Broncos"], "answer_start": [0, 7]}
    assert len(task.load("en", "train", src)) == 2
    fmt = SpanQA()
    assert [fmt.gold(task, r) for r in dev] == ["Denver Broncos", ""]
    assert fmt.score(task, dev, ["Broncos", ""])["em_f1"] == pytest.approx(100.0)


# --------------------------------------------------------------------------- BUCC

