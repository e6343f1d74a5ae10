"""SQuAD v2.0 (unanswerable questions: metric, span_qa decoding, loader) and BUCC as XTREME scores it
(kNN-restricted margin mining as in LASER, midpoint threshold as in ``bucc_optimize``).

Expected values are computed by hand in the comments.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xit.formats import SpanQA
from xit.formats.span_qa import allows_no_answer
from xit.metrics.retrieval import best_threshold, bucc_f1, mine_bitext, ratio_margin_scores
from xit.metrics.squad import squad2_scores, squad_scores
from xit.tasks.registry import DataSource, get_task

QA_HP = {"max_length": 64, "doc_stride": 16, "n_best": 20, "max_answer_length": 30}
HIGH, LOW = 10.0, -10.0

# --------------------------------------------------------------------------- squad2_scores


def test_squad2_scores_mixed_answerable_and_unanswerable() -> None:
    refs = {
        "a1": ["Denver Broncos", "the Broncos"],  # HasAns
        "a2": ["Super Bowl 50"],  # HasAns
        "a3": ["2016"],  # HasAns
        "n1": [],  # NoAns
        "n2": [],  # NoAns
    }
    preds = {
        "a1": "Broncos",  # matches "the Broncos" after normalisation -> EM 1, F1 1
        "a2": "Super Bowl",  # EM 0; F1: P 2/2, R 2/3 -> 0.8
        "a3": "",  # answerable predicted empty -> EM 0, F1 0
        "n1": "",  # correct abstention -> 1, 1
        "n2": "Denver",  # answered an unanswerable question -> 0, 0
    }
    # EM per question: 1, 0, 0, 1, 0 -> 40;  F1: 1, 0.8, 0, 1, 0 -> 2.8 / 5 = 56
    # HasAns: EM 1/3, F1 1.8/3 = 60;  NoAns: EM 1/2, F1 1/2.
    s = squad2_scores(preds, refs)
    assert s["n"] == 5
    assert s["em"] == pytest.approx(40.0)
    assert s["f1"] == pytest.approx(56.0)
    assert s["em_f1"] == pytest.approx(48.0)
    assert s["HasAns_em"] == pytest.approx(100 / 3)
    assert s["HasAns_f1"] == pytest.approx(60.0)
    assert (s["HasAns_n"], s["NoAns_n"]) == (3, 2)
    assert s["NoAns_em"] == pytest.approx(50.0)
    assert s["NoAns_f1"] == pytest.approx(50.0)


def test_squad2_scores_empty_normalisation_and_groups() -> None:
    # "The." normalises to "" -> counts as abstaining; a gold that normalises to "" ("a") is dropped,
    # leaving [""] (the question is still HasAns by its raw gold list, as in the official script).
    refs = {"n": [], "weird": ["a"], "x": ["Paris"]}
    preds = {"n": "The.", "weird": "", "x": "paris!"}
    s = squad2_scores(preds, refs)
    assert (s["em"], s["f1"]) == (pytest.approx(100.0), pytest.approx(100.0))
    assert s["HasAns_em"] == pytest.approx(100.0) and s["NoAns_f1"] == pytest.approx(100.0)
    # only answerable questions: no NoAns keys (as in the official script); v1.1 agrees on them
    only = {"x": ["Paris"], "y": ["big red dog"]}
    p = {"x": "Paris", "y": "red dog"}  # y: P 1, R 2/3 -> F1 0.8
    s2 = squad2_scores(p, only)
    assert not any(k.startswith("NoAns") for k in s2)
    v1 = squad_scores(p, only)
    assert (s2["em"], s2["f1"]) == (pytest.approx(v1["em"]), pytest.approx(v1["f1"]))
    assert s2["f1"] == pytest.approx(90.0)
    # a missing prediction scores 0 (also for an unanswerable question)
    s3 = squad2_scores({}, {"n": []})
    assert (s3["em"], s3["f1"], s3["NoAns_em"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        squad2_scores({}, {})
    with pytest.raises(ValueError):
        squad2_scores({"q": "x"}, {"q": "x"})  # type: ignore[dict-item]


# --------------------------------------------------------------------------- span_qa decoding

CONTEXT = "Ana Lima lives in Porto. Ben has a green river and a golden lantern."


def _row(qid: str, answer: str | None) -> dict[str, Any]:
    if answer is None:
        return {"id": qid, "context": CONTEXT, "question": "who ?", "answers": {"text": [], "answer_start": []}}
    return {"id": qid, "context": CONTEXT, "question": "who ?",
            "answers": {"text": [answer], "answer_start": [CONTEXT.index(answer)]}}


def test_registry_switch() -> None:
    assert allows_no_answer(get_task("squad2")) and get_task("squad2").no_answer
    assert not allows_no_answer(get_task("squad")) and not allows_no_answer(None)


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
    train = fmt.featurize(rows, tiny_tokenizer, None, QA_HP, train=True)
    evals = fmt.featurize(rows, tiny_tokenizer, None, QA_HP, train=False)
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
    # SQuAD v1.1 (and a task-less call) ignore the null score: always the best span
    assert SpanQA().decode(get_task("squad"), rows, evals, logits, hp) == ["golden lantern"]
    assert SpanQA().decode(None, rows, evals, logits, QA_HP) == ["golden lantern"]


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


def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_mine_bitext_only_knn_candidates() -> None:
    # 2-D unit vectors by angle, k = 1 (margin denominators: each side's single nearest cosine).
    #   x0 at 0;  y0 and x1 at a0 = acos(.90) (+25.8 deg);  y1 at -acos(.88) (-28.4 deg);
    #   x2 and y2 at -(acos(.88) + acos(.89)) (-55.5 deg): cos(x2, y1) = .89.
    # Nearest cosines: x0 -> y0 (.90), x1 -> y0 (1), x2 -> y2 (1); y0 -> x1 (1), y1 -> x2 (.89), y2 -> x2 (1).
    # margin(x0, y1) = .88 / ((.90 + .89) / 2) = .98324   <- best of x0's row, but y1 is not x0's 1-NN
    # margin(x0, y0) = .90 / ((.90 + 1) / 2)   = .94737
    # margin(x2, y1) = .89 / ((1 + .89) / 2)   = .94180   (y1's only kNN candidate)
    # margin(x1, y0) = margin(x2, y2) = 1
    # Old full argmax: x0 proposes y1 (.983) and y1 proposes x0 -> mined (1,0), (2,2), (0,1).
    # LASER (kNN candidates): x0 -> y0 (.947, y0 taken), y1 -> x2 (.942, x2 taken) -> (1,0), (2,2) only.
    a0, a1, a2 = math.degrees(math.acos(0.90)), math.degrees(math.acos(0.88)), math.degrees(math.acos(0.89))
    x = np.array([_unit(0), _unit(a0), _unit(-(a1 + a2))])
    y = np.array([_unit(a0), _unit(-a1), _unit(-(a1 + a2))])
    full = ratio_margin_scores(x, y, k=1)
    assert full[0, 1] == pytest.approx(0.88 / 0.895)
    assert full[0, 0] == pytest.approx(0.90 / 0.95)
    assert int(np.argmax(full[0])) == 1 and int(np.argmax(full[:, 1])) == 0  # what the old mining kept
    mined = mine_bitext(x, y, k=1)
    assert [(s, t) for s, t, _ in mined] == [(1, 0), (2, 2)]
    assert [sc for _, _, sc in mined] == pytest.approx([1.0, 1.0])
    # with k = 2 (y1 is now among x0's 2 nearest) the pair is a candidate again and wins
    assert (0, 1) in {(s, t) for s, t, _ in mine_bitext(x, y, k=2)}


def test_mine_bitext_blocked_matches_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny blocks (one row at a time) give the same result as one block; the kNN scores agree with
    # the full margin matrix at the mined pairs.
    import xit.metrics.retrieval as r

    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(9, 6)), rng.normal(size=(11, 6))
    dense = mine_bitext(x, y, k=4)
    full = ratio_margin_scores(x, y, k=4)
    monkeypatch.setattr(r, "_BLOCK_ELEMENTS", 1)
    blocked = mine_bitext(x, y, k=4)  # same pairs; scores up to BLAS rounding
    assert [(s, t) for s, t, _ in blocked] == [(s, t) for s, t, _ in dense]
    assert [sc for _, _, sc in blocked] == pytest.approx([sc for _, _, sc in dense])
    np.testing.assert_allclose(ratio_margin_scores(x, y, k=4), full)
    for s, t, sc in dense:
        assert sc == pytest.approx(full[s, t])


def test_best_threshold_midpoint() -> None:
    # n_gold = 3; F1 = 2 tp / (n_pred + n_gold). Sorted: .95 ok, .90 ok, .70 wrong, .60 ok, .40 wrong.
    #   >= .95: tp 1, pred 1 -> 2/4 = .5      >= .90: 2, 2 -> 4/5 = .8     >= .70: 2, 3 -> 4/6
    #   >= .60: 3, 4 -> 6/7 = .857 <- best     >= .40: 3, 5 -> 6/8 = .75
    # The optimum keeps down to .60; XTREME's threshold = (.60 + .40) / 2 = .50.
    cands = [(4, 8, 0.40), (0, 0, 0.95), (1, 1, 0.90), (2, 5, 0.70), (3, 3, 0.60)]
    gold = {(0, 0), (1, 1), (3, 3)}
    threshold, m = best_threshold(cands, gold)
    assert threshold == pytest.approx(0.50)
    assert m["f1"] == pytest.approx(600 / 7)
    assert m["precision"] == pytest.approx(75.0) and m["recall"] == pytest.approx(100.0)
    assert m == bucc_f1(cands, gold, threshold)
    # optimum at the top candidate: midpoint with the second score, (.95 + .90) / 2
    threshold, m = best_threshold(cands, {(0, 0)})
    assert threshold == pytest.approx(0.925) and m["f1"] == pytest.approx(100.0)
