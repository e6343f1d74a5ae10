"""Metric tests against hand-computed values (arithmetic in the comments)."""

import math

import numpy as np
import pytest

from xit.metrics import (
    accuracy,
    best_threshold,
    bucc_f1,
    exact_match_score,
    f1_score,
    l2_normalize,
    mine_bitext,
    normalize_answer,
    ratio_margin_scores,
    span_f1,
    squad_scores,
    tatoeba_accuracy,
    token_accuracy,
)

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
