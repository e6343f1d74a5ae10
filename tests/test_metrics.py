"""Metric tests against hand-computed values (arithmetic in the comments): SQuAD v1.1 and v2.0, MLQA, accuracy,
seqeval, Tatoeba, BUCC mining and thresholds, AP@k / mAP@k."""

import math
from typing import Any

import numpy as np
import pytest

from xit.formats import get_format
from xit.metrics import (
    accuracy,
    best_threshold,
    bucc_f1,
    exact_match_score,
    f1_score,
    l2_normalize,
    mine_bitext,
    mlqa,
    normalize_answer,
    ratio_margin_scores,
    span_f1,
    squad_scores,
    tatoeba_accuracy,
    token_accuracy,
)
from xit.metrics.ranking import average_precision_at_k, map_at_k
from xit.metrics.squad import squad2_scores
from xit.tasks import get_task

# --------------------------------------------------------------------------- SQuAD


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The  Quick, Brown fox!", "quick brown fox"),  # case, punctuation, article, whitespace
        ("An apple a day", "apple day"),  # all three articles removed
        ("theory of anthems", "theory of anthems"),  # articles only as whole words
        ("A-team", "ateam"),  # punctuation goes before articles: "a-team" -> "ateam"
        ("Don't\tstop\n", "dont stop"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_exact_match() -> None:
    assert exact_match_score("the Denver Broncos!", "Denver broncos")
    assert not exact_match_score("Denver", "Denver Broncos")


def test_f1_partial_overlap() -> None:
    # pred -> "cat sat on mat" (4 tokens), gold -> "cat on mat" (3); common = 3
    # P = 3/4, R = 3/3, F1 = 2 * 0.75 * 1 / 1.75 = 6/7
    assert f1_score("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)


def test_f1_counts_token_multiplicity() -> None:
    # Counter("cat cat cat") & Counter("cat") = {cat: 1}; P = 1/3, R = 1, F1 = (2/3) / (4/3) = 0.5
    assert f1_score("cat cat cat", "cat") == pytest.approx(0.5)


def test_f1_no_overlap_is_zero() -> None:
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("the", "a") == 0.0  # both normalise to empty: no common tokens -> 0


def test_squad_scores_max_over_golds_and_missing_prediction() -> None:
    references = {
        "q1": ["Denver Broncos", "Broncos"],
        "q2": ["Santa Clara, California", "Levi's Stadium"],
        "q3": ["1966"],
    }
    predictions = {"q1": "the Denver Broncos!", "q2": "Levi's Stadium in Santa Clara", "extra": "x"}
    # q1: "denver broncos" == "denver broncos" -> EM 1, F1 1
    # q2: pred -> "levis stadium in santa clara" (5 tokens)
    #   vs "santa clara california" (3): common 2, P = 2/5, R = 2/3, F1 = (8/15) / (16/15) = 1/2
    #   vs "levis stadium" (2): common 2, P = 2/5, R = 1, F1 = 0.8 / 1.4 = 4/7  <- max
    #   EM 0 for both
    # q3: no prediction -> 0; "extra" is not a reference question and is ignored
    # EM = 100 * 1/3; F1 = 100 * (1 + 4/7) / 3 = 1100/21 = 52.38...
    # em_f1 = (700/21 + 1100/21) / 2 = 900/21 = 42.857...
    scores = squad_scores(predictions, references)
    assert scores["n"] == 3
    assert scores["em"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(1100 / 21)
    assert scores["em_f1"] == pytest.approx(900 / 21)


def test_squad_scores_errors() -> None:
    with pytest.raises(ValueError):
        squad_scores({}, {})
    with pytest.raises(ValueError):
        squad_scores({"q": "a"}, {"q": []})


# --------------------------------------------------------------------------- classification


def test_accuracy() -> None:
    # matches at positions 0 and 2 -> 2/4 = 50%
    assert accuracy([1, 0, 2, 2], [1, 1, 2, 0]) == pytest.approx(50.0)
    assert accuracy(["a"], ["a"]) == pytest.approx(100.0)


def test_accuracy_errors() -> None:
    with pytest.raises(ValueError):
        accuracy([1, 2], [1])
    with pytest.raises(ValueError):
        accuracy([], [])


# --------------------------------------------------------------------------- tagging

GOLD_TAGS = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
PRED_TAGS = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]


def test_span_f1_wrong_boundary() -> None:
    # gold entities: PER[0:2], LOC[3], ORG[0]           -> 3
    # pred entities: PER[0:1], LOC[3], ORG[0], MISC[1]  -> 4 (PER boundary wrong, MISC spurious)
    # correct: LOC, ORG -> 2;  P = 2/4 = 50, R = 2/3 = 66.67, F1 = 2 * 0.5 * (2/3) / (7/6) = 4/7
    scores = span_f1(GOLD_TAGS, PRED_TAGS)
    assert scores["precision"] == pytest.approx(50.0)
    assert scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(400 / 7)


def test_span_f1_default_mode_is_conlleval() -> None:
    # conlleval (seqeval default) treats a leading I- tag as the start of an entity: LOC[0] == LOC[0]
    assert span_f1([["B-LOC", "O"]], [["I-LOC", "O"]])["f1"] == pytest.approx(100.0)
    # no predicted entities: P, R, F all 0 (no warning, no crash)
    assert span_f1([["B-LOC"]], [["O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_token_accuracy() -> None:
    # 6 tokens; mismatches: sentence 0 token 1 (I-PER vs O), sentence 1 token 1 (O vs B-MISC) -> 4/6
    assert token_accuracy(GOLD_TAGS, PRED_TAGS) == pytest.approx(200 / 3)


def test_tagging_errors() -> None:
    with pytest.raises(ValueError):
        span_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError):
        token_accuracy([["O", "O"]], [["O"]])
    with pytest.raises(ValueError):
        span_f1([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError):
        token_accuracy([], [])


# --------------------------------------------------------------------------- retrieval


def test_l2_normalize_rows_and_zero_rows() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])  # |(3,4)| = 5
    assert l2_normalize(np.array([[2, 0]])).dtype == np.float64


def test_tatoeba_one_of_three_wrong() -> None:
    src = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.5]])
    tgt = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    # src2 / |src2| = (1, 0, 0.5) / sqrt(1.25): cos with tgt0 = 0.894, with tgt2 = 0.447 -> picks 0, wrong
    # src0 -> tgt0 (cos 1), src1 -> tgt1 (cos 1 after normalising (0, 2, 0)) -> 2/3 correct
    assert tatoeba_accuracy(src, tgt) == pytest.approx(200 / 3)
    assert round(tatoeba_accuracy(src, tgt), 2) == 66.67


def test_tatoeba_ties_go_to_lowest_index() -> None:
    # src1 is a zero row: cosine 0 to every target, argmax -> 0 != 1; src0 -> 0 correct -> 50%
    src = np.array([[1.0, 0.0], [0.0, 0.0]])
    tgt = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert tatoeba_accuracy(src, tgt) == pytest.approx(50.0)


def test_tatoeba_errors() -> None:
    with pytest.raises(ValueError):
        tatoeba_accuracy(np.eye(3), np.eye(2, 3))
    with pytest.raises(ValueError):
        tatoeba_accuracy(np.eye(3), np.eye(3, 2))
    with pytest.raises(ValueError):
        tatoeba_accuracy(np.zeros(3), np.zeros(3))


# x0 = (1, 0), x1 = (0, 1); y0 = (1, 0), y1 = (0.6, 0.8)
# cos = [[1, 0.6], [0, 0.8]]
MARGIN_X = np.array([[1.0, 0.0], [0.0, 1.0]])
MARGIN_Y = np.array([[1.0, 0.0], [0.6, 0.8]])


def test_ratio_margin_k1() -> None:
    # k = 1: x-side term = max of row / 2:    x0: 1/2 = 0.5,  x1: 0.8/2 = 0.4
    #        y-side term = max of column / 2: y0: 1/2 = 0.5,  y1: 0.8/2 = 0.4
    # margin = cos / (x-term + y-term):
    #   (0,0) = 1 / (0.5 + 0.5) = 1      (0,1) = 0.6 / (0.5 + 0.4) = 2/3
    #   (1,0) = 0 / (0.4 + 0.5) = 0      (1,1) = 0.8 / (0.4 + 0.4) = 1
    expected = [[1.0, 2 / 3], [0.0, 1.0]]
    np.testing.assert_allclose(ratio_margin_scores(MARGIN_X, MARGIN_Y, k=1), expected)
    # inputs are L2-normalised inside: scaling rows changes nothing
    np.testing.assert_allclose(ratio_margin_scores(3 * MARGIN_X, 10 * MARGIN_Y, k=1), expected)


def test_ratio_margin_k_clipped() -> None:
    # k = 5 is clipped to 2 on both sides: terms are (sum of row or column) / 4
    #   x0: (1 + 0.6)/4 = 0.4, x1: (0 + 0.8)/4 = 0.2; y0: (1 + 0)/4 = 0.25, y1: (0.6 + 0.8)/4 = 0.35
    #   (0,0) = 1/0.65, (0,1) = 0.6/0.75 = 0.8, (1,0) = 0, (1,1) = 0.8/0.55
    expected = [[1 / 0.65, 0.8], [0.0, 0.8 / 0.55]]
    np.testing.assert_allclose(ratio_margin_scores(MARGIN_X, MARGIN_Y, k=5), expected)
    np.testing.assert_allclose(ratio_margin_scores(MARGIN_X, MARGIN_Y, k=2), expected)


def test_ratio_margin_errors() -> None:
    with pytest.raises(ValueError):
        ratio_margin_scores(MARGIN_X, MARGIN_Y, k=0)
    with pytest.raises(ValueError):
        ratio_margin_scores(MARGIN_X, np.ones((2, 3)))
    with pytest.raises(ValueError):
        ratio_margin_scores(np.zeros((0, 2)), MARGIN_Y)


def test_mine_bitext_greedy_conflict() -> None:
    # x0 = (1, 0), x1 = (0.8, 0.6); y0 = (1, 0), y1 = (0, 1); cos = [[1, 0], [0.8, 0.6]]
    # k = 1: x-terms x0: 1/2 = 0.5, x1: 0.8/2 = 0.4; y-terms y0: 1/2 = 0.5, y1: 0.6/2 = 0.3
    # margin: (0,0) = 1/1 = 1, (0,1) = 0, (1,0) = 0.8/0.9 = 8/9, (1,1) = 0.6/0.7 = 6/7
    # forward:  x0 -> y0 (1), x1 -> y0 (8/9)       <- both x want y0
    # backward: y0 -> x0 (1), y1 -> x1 (6/7)
    # pooled by score: (0,0,1) (0,0,1) (1,0,8/9) (1,1,6/7)
    # greedy: keep (0,0); duplicate skipped; (1,0) skipped (y0 taken); keep (1,1)
    x = np.array([[1.0, 0.0], [0.8, 0.6]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    mined = mine_bitext(x, y, k=1)
    assert [(s, t) for s, t, _ in mined] == [(0, 0), (1, 1)]
    assert [score for _, _, score in mined] == pytest.approx([1.0, 6 / 7])
    assert all(isinstance(v, int) for s, t, _ in mined for v in (s, t))


def test_mine_bitext_unequal_sizes_keeps_indices_unique() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
    mined = mine_bitext(x, y, k=4)
    assert len({s for s, _, _ in mined}) == len(mined) == len({t for _, t, _ in mined}) <= 4
    scores = [score for _, _, score in mined]
    assert scores == sorted(scores, reverse=True)


CANDIDATES = [(0, 0, 0.9), (1, 1, 0.8), (2, 5, 0.7), (3, 3, 0.6), (4, 9, 0.5)]
GOLD = {(0, 0), (1, 1), (3, 3), (7, 7)}  # (7, 7) is never mined


def test_bucc_f1_at_threshold() -> None:
    # score >= 0.7 -> 3 predicted, 2 correct; P = 2/3, R = 2/4, F1 = 2 * (1/3) / (7/6) = 4/7
    m = bucc_f1(CANDIDATES, GOLD, 0.7)
    assert m["precision"] == pytest.approx(200 / 3)
    assert m["recall"] == pytest.approx(50.0)
    assert m["f1"] == pytest.approx(400 / 7)
    # threshold above all scores: nothing predicted -> all 0
    assert bucc_f1(CANDIDATES, GOLD, 1.0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_best_threshold_known_optimum() -> None:
    # F1 = 2 * tp / (n_pred + n_gold), n_gold = 4
    #   t=0.9: tp 1, pred 1 -> 2/5 = 0.4       t=0.8: tp 2, pred 2 -> 4/6 = 0.667
    #   t=0.7: tp 2, pred 3 -> 4/7 = 0.571     t=0.6: tp 3, pred 4 -> 6/8 = 0.75  <- best
    #   t=0.5: tp 3, pred 5 -> 6/9 = 0.667
    # XTREME's threshold: midpoint between the last kept score (0.6) and the next one (0.5)
    threshold, m = best_threshold(CANDIDATES, GOLD)
    assert threshold == pytest.approx(0.55)
    assert m["precision"] == pytest.approx(75.0)
    assert m["recall"] == pytest.approx(75.0)
    assert m["f1"] == pytest.approx(75.0)
    assert m == bucc_f1(CANDIDATES, GOLD, threshold)


def test_best_threshold_tie_prefers_higher() -> None:
    # n_gold = 2; t=0.9: tp 1, pred 1 -> 2/3;  t=0.8: 2/4;  t=0.7: 2/5;  t=0.6: tp 2, pred 4 -> 4/6 = 2/3
    # tie between 0.9 and 0.6 -> the higher one, 0.9 (P 100, R 50); midpoint with the next score 0.8
    cands = [(3, 3, 0.6), (0, 0, 0.9), (1, 7, 0.8), (2, 8, 0.7)]  # input order does not matter
    threshold, m = best_threshold(cands, {(0, 0), (3, 3)})
    assert threshold == pytest.approx(0.85)
    assert m["precision"] == pytest.approx(100.0)
    assert m["recall"] == pytest.approx(50.0)
    assert m["f1"] == pytest.approx(200 / 3)


def test_best_threshold_equal_scores_taken_together() -> None:
    # (1,1) and (2,7) share 0.5; at t=0.5 both are predicted: tp 2, pred 3 -> F1 = 4/5 = 80
    # (not 100, which a per-candidate sweep would report but no threshold can realise); t=0.9: 2/3
    # the optimum keeps every candidate: no next score, so the threshold is the lowest score itself
    cands = [(0, 0, 0.9), (1, 1, 0.5), (2, 7, 0.5)]
    gold = {(0, 0), (1, 1)}
    threshold, m = best_threshold(cands, gold)
    assert threshold == 0.5
    assert m["f1"] == pytest.approx(80.0)
    assert m == bucc_f1(cands, gold, threshold)


def test_best_threshold_errors_and_no_correct() -> None:
    with pytest.raises(ValueError):
        best_threshold([], GOLD)
    with pytest.raises(ValueError):
        best_threshold(CANDIDATES, set())
    with pytest.raises(ValueError):
        bucc_f1(CANDIDATES, set(), 0.5)
    threshold, m = best_threshold([(0, 1, 0.3), (1, 0, 0.2)], {(0, 0)})
    assert threshold == 0.3
    assert m["f1"] == 0.0
    assert not math.isnan(m["precision"])

# --------------------------------------------------------------------------- SQuAD v2.0


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

# --------------------------------------------------------------------------- MLQA normalisation


@pytest.mark.parametrize(("lang", "text", "expected"), [
    ("en", "The Cat, a dog & an owl!", "cat dog owl"),
    ("en", "theatre", "theatre"),  # articles only as whole words
    ("es", "El perro y la casa de los Unos", "perro y casa de"),
    ("es", "lo mejor de uno", "lo mejor de uno"),  # "lo"/"uno" are not in MLQA's Spanish list
    ("de", "Der Hund, das Haus und einem Mann", "hund haus und mann"),
    ("de", "dieser Hund", "dieser hund"),
    ("vi", "những con mèo của tôi", "con mèo tôi"),  # "con" is not in MLQA's Vietnamese list
    ("hi", "a भारत।", "a भारत"),  # no Hindi articles; the danda is Unicode punctuation
    ("zh", "北京大学2020年", "北 京 大 学 2020 年"),
    ("zh", "《红楼梦》 by Cao", "红 楼 梦 by cao"),
    ("ar", "الكتاب", "كتاب"),
    ("ar", "مال", "م"),  # the published pattern removes every "ال", not only the article
    ("en", "«Berlin» — ¿qué?", "berlin qué"),  # Unicode punctuation (Pi/Pf/Pd/Po)
])  # fmt: skip
def test_mlqa_normalisation(lang: str, text: str, expected: str) -> None:
    assert mlqa.normalize_answer(text, lang) == expected


def test_mlqa_scores_by_hand_and_squad_unchanged() -> None:
    # zh: character tokens give partial credit where SQuAD's whitespace tokens give none.
    assert mlqa.f1_score("北京", "北京大学", "zh") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert mlqa.exact_match_score("北京。", "北京", "zh")
    assert mlqa.f1_score("the big cat", "a big dog", "en") == pytest.approx(0.5)
    assert mlqa.exact_match_score("la casa", "casa", "es") and not mlqa.exact_match_score("la casa", "casa", "en")
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        mlqa.normalize_answer("x", "fr")
    s = mlqa.mlqa_scores({"a": "北京", "b": "x"}, {"a": ["北京大学"], "b": ["y"], "c": ["z"]}, "zh")
    assert (s["em"], s["f1"], s["n"]) == (0.0, pytest.approx(100 * (2 / 3) / 3), 3)

    def row(i: str, gold: str, **kw: str) -> dict[str, Any]:
        return {"id": i, "context": gold, "question": "?", "answers": {"text": [gold], "answer_start": [0]}, **kw}

    fmt, task = get_format("span_qa"), get_task("mlqa")
    with_lang = [row("e", "the answer", language="en"), row("z", "北京大学", language="zh")]
    got = fmt.score(task, with_lang, ["answer", "北京"])
    assert got["em"] == pytest.approx(50.0) and got["f1"] == pytest.approx((100 + 200 / 3) / 2)
    # Rows without "language" keep SQuAD v1.1 scoring exactly.
    plain = [row("e", "the answer"), row("z", "北京大学"), row("p", "北京。")]
    preds = ["answer", "北京", "北京"]
    ref = squad_scores(dict(zip(["e", "z", "p"], preds, strict=True)),
                       {r["id"]: r["answers"]["text"] for r in plain})  # fmt: skip
    assert fmt.score(get_task("tydiqa"), plain, preds) == {"em": ref["em"], "f1": ref["f1"], "em_f1": ref["em_f1"]}
    assert ref["em"] == pytest.approx(100 / 3)  # "北京" vs "北京。": "。" is not SQuAD punctuation

# --------------------------------------------------------------------------- BUCC as XTREME scores it
# (kNN-restricted margin mining as in LASER, midpoint threshold as in bucc_optimize)


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

# --------------------------------------------------------------------------- AP@k / mAP@k by hand (LAReQA, Mewsli-X)


@pytest.mark.parametrize(
    ("ranked", "relevant", "k", "expected"),
    [
        (list("axby"), {"a", "b"}, 20, (1 / 1 + 2 / 3) / 2),  # hits at ranks 1 and 3
        (list("abc"), {"a", "b", "c"}, 20, 1.0),  # fewer than k relevant, all on top: divisor min(3, 20) = 3
        (list("xab"), {"a", "b"}, 2, (1 / 2) / 2),  # b is beyond k = 2: only the hit at rank 2 counts
        (list("abc"), {"a", "b", "c"}, 2, (1 + 1) / 2),  # more relevant than k: divisor min(3, 2) = 2
        (list("xyz"), {"a"}, 20, 0.0),  # the relevant candidate was not retrieved
        (list("xa"), {"a"}, 1, 0.0),  # ... or only below k
        (list("aab"), {"a", "b"}, 20, (1 / 1 + 2 / 3) / 2),  # a repeated candidate counts once
        (["q2", "q1"], ["q1"], 20, 1 / 2),  # one relevant: the reciprocal rank (Mewsli-X: MRR)
    ],
)
def test_average_precision_at_k(ranked: list[str], relevant: set[str], k: int, expected: float) -> None:
    assert average_precision_at_k(ranked, relevant, k) == pytest.approx(expected)


def test_map_at_k_is_the_mean_in_percent() -> None:
    assert map_at_k([list("axby"), list("xyz")], [{"a", "b"}, {"a"}], 20) == pytest.approx(100 * (5 / 6 + 0) / 2)
    with pytest.raises(ValueError, match="no relevant"):
        average_precision_at_k(list("ab"), set(), 20)
    with pytest.raises(ValueError, match="k must be"):
        average_precision_at_k(list("ab"), {"a"}, 0)
    with pytest.raises(ValueError, match="2 rankings but 1"):
        map_at_k([["a"], ["b"]], [{"a"}], 20)
    with pytest.raises(ValueError, match="no queries"):
        map_at_k([], [], 20)
