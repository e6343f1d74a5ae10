"""The demo's numbers mean something: examples/demo.yaml (three seeds) on the synthetic world of xit.tasks.demo.

Asserted on the shared demo sweep (`demo_run` in conftest.py), from the per-seed, per-language scores in the store:
QA and tagging are learned in English well above chance and transfer zero-shot to every synthetic language.
Issue 12's full goals (paraphrase learned in English, every retrieval language above chance, the designed
positive delta of intermediate ``demo-nli`` before target ``demo-para`` with its 95 % interval above zero) are
one strict xfail test: they do not hold yet.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest

from xit.plan import build_plan
from xit.spec import load_spec
from xit.stages.report import collect_scores
from xit.store import open_store

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "demo.yaml"
pytestmark = pytest.mark.slow

# Chance level of each demo target on its metric (points): 2 labels, a span among ~30 tokens (near 0),
# 5 BIO tags of entities (F1 of random tags is near 0), 1-NN among 200 sentences, mining among 200x200.
CHANCE = {"demo-para": 50.0, "demo-qa": 5.0, "demo-tag": 5.0, "demo-tatoeba": 0.5, "demo-bucc": 1.0}


@pytest.fixture(scope="module")
def per_seed(demo_run):
    """{(intermediate, target, language, seed): score} of the demo sweep."""
    store, _, _ = demo_run
    plan = build_plan(load_spec(SPEC))
    entries = plan.by_kind("report")[0].params["entries"]
    return {(s.intermediate, s.target, s.language, s.seed): s.score
            for s in collect_scores(open_store(str(store)), entries)}


def test_demo_has_three_seeds_and_the_designed_pair():
    spec = load_spec(SPEC)
    assert len(spec.seeds) >= 3
    assert [] in spec.intermediate and ["demo-nli"] in spec.intermediate
    assert "demo-para" in spec.targets
    assert set(CHANCE) == set(spec.targets)


def test_targets_learned_in_english(per_seed):
    for target in ("demo-qa", "demo-tag"):
        scores = [v for (c, t, lang, _), v in per_seed.items() if (c, t, lang) == ("[]", target, "en")]
        assert len(scores) == 3
        assert min(scores) > CHANCE[target] + 25, (target, scores)


def test_targets_transfer_zero_shot(per_seed):
    """QA and tagging, trained in English only, score above chance in every synthetic language (every seed)."""
    for target in ("demo-qa", "demo-tag"):
        for lang in ("agg", "vso", "fus"):
            scores = [v for (c, t, la, _), v in per_seed.items() if (c, t, la) == ("[]", target, lang)]
            assert len(scores) == 3, (target, lang)
            assert min(scores) > CHANCE[target] + 5, (target, lang, scores)


def _para(per_seed: dict, config: str, seed: int) -> float:  # the headline: mean over languages
    vals = [v for (c, t, _, s), v in per_seed.items() if (c, t, s) == (config, "demo-para", seed)]
    assert len(vals) == 4
    return statistics.fmean(vals)


@pytest.mark.xfail(strict=True, reason="issue 12 is not met yet: the tiny model does not learn the paraphrase "
                   "comparison (English 49-61 over seeds; demo-nli itself stays near its hypothesis-only ceiling, "
                   "~70 dev), so demo-nli does not help it (delta -0.1); Tatoeba/BUCC in agg and vso stay within "
                   "5 points of chance at the default layer. Strict: remove the mark when it passes")
def test_issue12_goals(per_seed, demo_run):
    """What issue 12 asks of the demo: paraphrase learned in English; every retrieval language above chance; the
    designed delta ([demo-nli] before demo-para) positive in every seed with the report's 95 % interval
    (delta_ci_low, paired over seeds and test examples) above zero."""
    _, out, _ = demo_run
    en = [v for (c, t, la, _), v in per_seed.items() if (c, t, la) == ("[]", "demo-para", "en")]
    assert min(en) > CHANCE["demo-para"] + 25, en
    for target in ("demo-para", "demo-tatoeba", "demo-bucc"):
        for lang in ("agg", "vso", "fus"):
            scores = [v for (c, t, la, _), v in per_seed.items() if (c, t, la) == ("[]", target, lang)]
            assert min(scores) > CHANCE[target] + 5, (target, lang, scores)
    with open(out / "results.csv", newline="") as f:
        row = next(x for x in csv.DictReader(f) if (x["intermediate"], x["target"]) == ("[demo-nli]", "demo-para"))
    assert int(row["n_seeds"]) == 3
    assert float(row["delta"]) > 0 and float(row["delta_ci_low"]) > 0, row
    for seed in (1, 2, 3):
        assert _para(per_seed, "[demo-nli]", seed) > _para(per_seed, "[]", seed), seed


def test_printed_table_has_its_legend(demo_run):
    _, _, r = demo_run
    assert "the delta: that score minus the baseline []'s" in " ".join(r.stdout.split())
