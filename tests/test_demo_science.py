"""The demo's numbers mean something: examples/demo.yaml (three seeds) on the synthetic world of xit.tasks.demo.

Asserted on the shared demo sweep (`demo_run` in conftest.py), from the per-seed, per-language scores in the store
and the report's results.csv: paraphrase, QA and tagging are learned in English well above chance; every target
transfers zero-shot above chance to every synthetic language; intermediate training on demo-nli raises both
retrieval targets with the report's 95 % interval above zero. What the demo does not show yet (issue 12): that
demo-nli helps demo-para, a strict xfail.
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
# "Above chance" zero-shot: more than these points above CHANCE. Tatoeba's 2.5: more than 6 of its 200 sentences
# found where chance finds 1 (P(X >= 7) for X ~ Binomial(200, 1/200) is 8e-5).
ABOVE = {"demo-para": 5.0, "demo-qa": 5.0, "demo-tag": 5.0, "demo-tatoeba": 2.5, "demo-bucc": 3.0}
SYNTHETIC = ("agg", "vso", "fus")


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
    """Every target trained on English text scores well above chance in English, in every seed."""
    for target, margin in (("demo-para", 15), ("demo-qa", 25), ("demo-tag", 25)):
        scores = [v for (c, t, lang, _), v in per_seed.items() if (c, t, lang) == ("[]", target, "en")]
        assert len(scores) == 3
        assert min(scores) > CHANCE[target] + margin, (target, scores)


def test_targets_transfer_zero_shot(per_seed):
    """Every target, trained in English only (retrieval: the base encoder), scores above chance in every synthetic
    language: QA, tagging and retrieval in every seed; paraphrase in the mean over seeds (one seed's agg is near
    chance)."""
    for target in CHANCE:
        for lang in SYNTHETIC:
            scores = [v for (c, t, la, _), v in per_seed.items() if (c, t, la) == ("[]", target, lang)]
            assert len(scores) == 3, (target, lang)
            got = statistics.fmean(scores) if target == "demo-para" else min(scores)
            assert got > CHANCE[target] + ABOVE[target], (target, lang, scores)


def _results(out) -> dict[tuple[str, str], dict[str, str]]:
    with open(out / "results.csv", newline="") as f:
        return {(x["intermediate"], x["target"]): x for x in csv.DictReader(f)}


def test_nli_raises_retrieval(demo_run):
    """[demo-nli] before the retrieval targets (scored on its encoder): both deltas positive, their 95 % interval
    (delta_ci_low, paired over seeds and test examples) above zero."""
    _, out, _ = demo_run
    rows = _results(out)
    for target in ("demo-tatoeba", "demo-bucc"):
        row = rows[("[demo-nli]", target)]
        assert int(row["n_seeds"]) == 3
        assert float(row["delta"]) > 0 and float(row["delta_ci_low"]) > 0, row


def _para(per_seed: dict, config: str, seed: int) -> float:  # the headline: mean over languages
    vals = [v for (c, t, _, s), v in per_seed.items() if (c, t, s) == (config, "demo-para", seed)]
    assert len(vals) == 4
    return statistics.fmean(vals)


@pytest.mark.xfail(strict=True, reason="issue 12 is not met yet: demo-nli does not help demo-para (delta -0.9, "
                   "within noise): the tiny model learns paraphrase (English 71-75) without it, and English "
                   "intermediate training does not carry a comparison to it. Strict: remove the mark when it passes")
def test_nli_helps_paraphrase(per_seed, demo_run):
    """What issue 12 also asks of the demo: [demo-nli] before demo-para positive in every seed, with the report's
    95 % interval above zero."""
    _, out, _ = demo_run
    row = _results(out)[("[demo-nli]", "demo-para")]
    assert float(row["delta"]) > 0 and float(row["delta_ci_low"]) > 0, row
    for seed in (1, 2, 3):
        assert _para(per_seed, "[demo-nli]", seed) > _para(per_seed, "[]", seed), seed


def test_printed_table_has_its_legend(demo_run):
    _, _, r = demo_run
    assert "the delta: that score minus the baseline []'s" in " ".join(r.stdout.split())
