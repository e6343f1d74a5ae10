"""How sure each number is: per-example statistics, bootstrap intervals, paired tests, and the report's columns."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as st

from xit.formats import get_format
from xit.metrics.tagging import span_f1, token_accuracy
from xit.report import Score, build_report, delta_grid, read_results_csv, render_rich
from xit.stats import ExampleStats, bootstrap_interval, example_stats, paired_bootstrap, paired_t, t_interval

ROOT = Path(__file__).resolve().parents[1]

# Fixed per-example numbers: accuracy (0/100) of two languages.
LANG_A = [100.0, 0.0, 100.0, 100.0, 0.0, 100.0, 0.0, 100.0]
LANG_B = [0.0, 100.0, 100.0, 0.0, 100.0]


def _hand_percentiles(reps: list[float]) -> tuple[float, float]:
    """np.percentile's default (linear) 2.5th and 97.5th percentiles, by hand."""
    x = sorted(reps)

    def at(q: float) -> float:
        pos = q * (len(x) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(x) - 1)
        return x[lo] + (x[hi] - x[lo]) * (pos - lo)

    return at(0.025), at(0.975)


def test_bootstrap_interval_of_one_seed_matches_a_hand_computed_bootstrap() -> None:
    b, seed = 400, 7
    got = bootstrap_interval([ExampleStats("mean", np.array(LANG_A)), ExampleStats("mean", np.array(LANG_B))],
                             n_resamples=b, seed=seed)
    # By hand: the same draws (per language in order, a (B, n) array of indices), loops instead of counts.
    rng = np.random.default_rng(seed)
    idx_a, idx_b = rng.integers(0, len(LANG_A), (b, len(LANG_A))), rng.integers(0, len(LANG_B), (b, len(LANG_B)))
    reps = []
    for r in range(b):
        acc_a = sum(LANG_A[i] for i in idx_a[r]) / len(LANG_A)
        acc_b = sum(LANG_B[i] for i in idx_b[r]) / len(LANG_B)
        reps.append((acc_a + acc_b) / 2)
    assert got == pytest.approx(_hand_percentiles(reps), abs=1e-9)
    low, high = got
    assert low < (62.5 + 60.0) / 2 < high  # the interval holds the point estimate
    # Same seed, same interval; another seed, other draws.
    assert bootstrap_interval([ExampleStats("mean", np.array(LANG_A))], n_resamples=b, seed=seed) == \
        bootstrap_interval([ExampleStats("mean", np.array(LANG_A))], n_resamples=b, seed=seed)


def test_constant_examples_give_a_point_interval() -> None:
    assert bootstrap_interval([ExampleStats("mean", np.full(10, 100.0))], n_resamples=50) == (100.0, 100.0)


# Three seeds, one language of five sentences, tagging F1 statistics (tp, predicted, gold) per sentence.
CONFIG = [[[1, 1, 1], [2, 2, 3], [0, 1, 1], [1, 1, 2], [3, 3, 3]],
          [[1, 2, 1], [2, 2, 3], [1, 1, 1], [1, 2, 2], [2, 3, 3]],
          [[1, 1, 1], [3, 3, 3], [0, 0, 1], [2, 2, 2], [3, 3, 3]]]
BASE = [[[0, 1, 1], [1, 2, 3], [0, 1, 1], [1, 1, 2], [2, 3, 3]],
        [[1, 1, 1], [1, 3, 3], [0, 1, 1], [0, 2, 2], [2, 2, 3]],
        [[0, 2, 1], [2, 3, 3], [1, 1, 1], [1, 2, 2], [1, 3, 3]]]


def _f1(rows: list[list[float]]) -> float:
    tp, pred, gold = (sum(r[i] for r in rows) for i in range(3))
    return 200.0 * tp / (pred + gold) if pred + gold else 0.0


def test_paired_bootstrap_over_seeds_and_examples_matches_a_hand_computed_one() -> None:
    b, seed = 300, 11
    got = paired_bootstrap([[ExampleStats("f1", np.array(c))] for c in CONFIG],
                           [[ExampleStats("f1", np.array(x))] for x in BASE], n_resamples=b, seed=seed)
    # By hand: draw the seeds (B, 3), then the examples (B, 5), shared by every seed and both sides.
    rng = np.random.default_rng(seed)
    seed_idx, ex_idx = rng.integers(0, 3, (b, 3)), rng.integers(0, 5, (b, 5))
    deltas = []
    for r in range(b):
        per_seed = [_f1([CONFIG[s][i] for i in ex_idx[r]]) - _f1([BASE[s][i] for i in ex_idx[r]]) for s in range(3)]
        deltas.append(sum(per_seed[s] for s in seed_idx[r]) / 3)
    assert (got.low, got.high) == pytest.approx(_hand_percentiles(deltas), abs=1e-9)
    below, above = sum(d <= 0 for d in deltas), sum(d >= 0 for d in deltas)
    assert got.p_value == pytest.approx(min(1.0, 2 * min((below + 1) / (b + 1), (above + 1) / (b + 1))))
    assert got.method == "paired bootstrap"
    # The point delta (mean over seeds of the corpus F1 differences) lies inside.
    point = np.mean([_f1(CONFIG[s]) - _f1(BASE[s]) for s in range(3)])
    assert got.low <= point <= got.high


def test_paired_t_over_seeds_and_the_t_interval() -> None:
    config, base = [70.0, 72.5, 71.0], [68.0, 69.0, 70.5]
    test = paired_t(config, base)
    d = np.array(config) - np.array(base)  # 2.0, 3.5, 0.5: mean 2.0, sd 1.5
    half = st.t.ppf(0.975, 2) * 1.5 / math.sqrt(3)
    assert (test.low, test.high) == pytest.approx((2.0 - half, 2.0 + half))
    assert test.p_value == pytest.approx(st.ttest_rel(config, base).pvalue)
    assert test.p_value == pytest.approx(2 * st.t.sf(2.0 / (1.5 / math.sqrt(3)), 2))
    assert paired_t([70.0], [68.0]) is None
    assert t_interval([65.0, 67.0]) == pytest.approx((66 - 12.7062047 * 1.0, 66 + 12.7062047 * 1.0))
    assert d.mean() == pytest.approx(2.0)


def test_tagging_example_stats_reproduce_seqeval_and_token_accuracy() -> None:
    class T:
        metric = "f1"

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC"], ["O", "B-PER"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "B-LOC"], ["B-PER", "B-PER"]]
    rows = [{"tags": g} for g in gold]
    fmt = get_format("tagging")
    stats = example_stats(fmt, T, rows, pred)
    # Sentence 1: PER matched, LOC missed; 2: gold LOC(0-1) vs predicted LOC(0), LOC(1); 3: PER(1) matched + 1 extra.
    assert stats.kind == "f1" and stats.values.tolist() == [[1, 1, 2], [0, 2, 1], [1, 2, 1]]
    assert stats.metric() == pytest.approx(span_f1(gold, pred)["f1"])  # 2·2/(5+4)
    T.metric = "accuracy"
    acc = example_stats(fmt, T, rows, pred)
    assert acc.kind == "ratio" and acc.values.tolist() == [[3, 4], [1, 2], [1, 2]]
    assert acc.metric() == pytest.approx(token_accuracy(gold, pred))


def test_classification_example_stats_are_per_example_scores() -> None:
    class T:
        metric = "accuracy"

    rows = [{"label": 1}, {"label": 0}, {"label": 1}]
    stats = example_stats(get_format("classification"), T, rows, [1, 1, 1])
    assert stats.kind == "mean" and stats.values[:, 0].tolist() == [100.0, 0.0, 100.0]
    assert stats.metric() == pytest.approx(200 / 3)


def _scores(config: str, target: str, per_lang: dict[str, list[float]], seed: int = 1) -> list[Score]:
    return [Score(config, target, lang, "accuracy", float(np.mean(v)), seed, ExampleStats("mean", np.array(v)))
            for lang, v in per_lang.items()]


def test_one_seed_report_bootstraps_examples_and_marks_significant_deltas(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)

    def correct(p: float, n: int = 200) -> list[float]:
        return [100.0 * (x < p) for x in rng.random(n)]

    base = {"de": correct(0.5), "sw": correct(0.5)}
    better = {lang: [100.0 if i % 2 == 0 else v for i, v in enumerate(vals)] for lang, vals in base.items()}
    same = {lang: vals[1:] + vals[:1] for lang, vals in base.items()}  # the same accuracy, other examples right
    scores = _scores("[]", "xnli", base) + _scores("[mnli]", "xnli", better) + _scores("[squad]", "xnli", same)
    tables = build_report(scores, tmp_path, n_resamples=500)

    rows = {r["intermediate"]: r for r in read_results_csv(tmp_path / "results.csv")}
    assert list(rows["[]"]) == ["intermediate", "target", "metric", "score", "delta", "std", "n_seeds", "ci_low",
                                "ci_high", "delta_ci_low", "delta_ci_high", "p_value", "test"]
    # One seed: no std; the score's interval is the examples' bootstrap, as computed directly.
    assert rows["[]"]["std"] is None and rows["[]"]["n_seeds"] == 1
    lo, hi = bootstrap_interval([ExampleStats("mean", np.array(base[lang])) for lang in ("de", "sw")],
                                n_resamples=500)
    assert (rows["[]"]["ci_low"], rows["[]"]["ci_high"]) == (pytest.approx(lo, abs=1e-4), pytest.approx(hi, abs=1e-4))
    assert rows["[]"]["p_value"] is None and rows["[]"]["test"] == ""
    # Every wrong answer at an even index turned right: a clear gain, interval above zero.
    assert rows["[mnli]"]["test"] == "paired bootstrap" and rows["[mnli]"]["delta_ci_low"] > 0
    assert rows["[mnli]"]["p_value"] < 0.01
    # Same accuracy on other examples: delta 0, the interval straddles zero.
    assert rows["[squad]"]["delta"] == 0.0
    assert rows["[squad]"]["delta_ci_low"] < 0 < rows["[squad]"]["delta_ci_high"]
    assert rows["[squad]"]["p_value"] > 0.5

    md = (tmp_path / "results.md").read_text()
    gain = tables.row("[mnli]", "xnli").delta
    assert f"(+{gain:.1f}*)" in md and "(+0.0)" in md and "(+0.0*)" not in md
    assert "## Intervals and paired tests" in md and "| [mnli] | xnli |" in md
    table = render_rich(tables)
    cells = table.columns[1]._cells
    assert cells[1].plain.endswith("*)") and not cells[2].plain.endswith("*)")
    # The heatmap greys out the non-significant cell (and keeps the untested avg column coloured).
    configs, data, grey = delta_grid(tables)
    assert configs == ["[mnli]", "[squad]"]
    assert grey.tolist() == [[False, False], [True, False]]
    assert data[0, 0] == pytest.approx(gain)


def test_retrieval_without_examples_falls_back_to_the_paired_t_test(tmp_path: Path) -> None:
    scores = [Score(c, "tatoeba", "de", "accuracy", v, seed)
              for c, vals in {"[]": [40.0, 42.0, 41.0], "[mnli]": [45.0, 46.5, 45.0]}.items()
              for seed, v in zip((1, 2, 3), vals, strict=True)]
    tables = build_report(scores, tmp_path)
    row = tables.row("[mnli]", "tatoeba")
    ref = paired_t([45.0, 46.5, 45.0], [40.0, 42.0, 41.0])
    assert (row.test, row.delta_low, row.delta_high, row.p_value) == ("paired t-test", ref.low, ref.high, ref.p_value)
    assert (row.ci_low, row.ci_high) == pytest.approx(t_interval([45.0, 46.5, 45.0]))
    # One seed and no per-example scores: nothing to say, the columns stay empty.
    one = build_report([s for s in scores if s.seed == 1], tmp_path / "one")
    r = one.row("[mnli]", "tatoeba")
    assert math.isnan(r.ci_low) and math.isnan(r.p_value) and r.test == ""


SWEEP = """\
name: three-seeds
intermediate: [[], [demo-nli]]
targets: [demo-para, demo-tag]
languages: {demo-para: [en, agg], demo-tag: [en, agg]}
seeds: [1, 2, 3]
hparams:
  intermediate: {lr: 1.0e-3, epochs: 1, max_train_examples: 64, max_dev_examples: 16}
  target: {lr: 1.0e-3, epochs: 1, max_train_examples: 64, max_dev_examples: 16, max_eval_examples: 40}
"""


@pytest.mark.slow
def test_three_seed_sweep_writes_intervals_and_p_values(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SWEEP)
    r = subprocess.run([sys.executable, "-m", "xit.cli", "run", str(spec), "--store", str(tmp_path / "store"),
                        "--out", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(x["intermediate"], x["target"], x["n_seeds"]) for x in rows] == [
        ("[]", "demo-para", "3"), ("[]", "demo-tag", "3"), ("[demo-nli]", "demo-para", "3"),
        ("[demo-nli]", "demo-tag", "3")]
    for x in rows:
        assert float(x["ci_low"]) <= float(x["score"]) <= float(x["ci_high"])
        assert float(x["std"]) >= 0
        if x["intermediate"] == "[demo-nli]":  # evaluations wrote per-example scores: the paired bootstrap
            assert x["test"] == "paired bootstrap"
            assert float(x["delta_ci_low"]) <= float(x["delta_ci_high"]) and 0 < float(x["p_value"]) <= 1
        else:
            assert x["p_value"] == x["delta_ci_low"] == "" and x["test"] == ""
    # Each evaluation's per-example statistics give back its metrics.json scores.
    store = tmp_path / "store" / "stages"
    n = 0
    for manifest in store.glob("evaluate-*/MANIFEST.json"):
        files = manifest.parent / json.loads(manifest.read_text())["attempt"]
        metrics = json.loads((files / "metrics.json").read_text())
        ex = json.loads((files / "examples.json").read_text())
        assert set(ex["languages"]) == {"en", "agg"}
        for lang, d in ex["languages"].items():
            stats = ExampleStats.from_json(d)
            assert stats.n == metrics["languages"][lang]["n"] == 40
            assert stats.metric() == pytest.approx(metrics["languages"][lang][metrics["metric"]])
        n += 1
    assert n == 12  # 2 configurations × 2 targets × 3 seeds
    assert "*" in (tmp_path / "out" / "results.md").read_text()  # the legend at least


@pytest.mark.filterwarnings("ignore:.*seems not to be NE tag")
def test_example_stats_reproduce_the_metric_on_real_samples(shared_data: Path) -> None:
    """UD-POS (seqeval span F1 over UPOS runs) and XQuAD (SQuAD EM/F1) from ../shared/data, with predictions
    that are partly wrong: the per-example numbers sum back to the format's own corpus score."""
    import random

    from xit.tasks.registry import DataSource, get_task

    rnd = random.Random(0)
    udpos = get_task("udpos")
    rows = udpos.load("fi", "dev", DataSource(data_dir=shared_data / "ud"))
    preds = [[t if rnd.random() < 0.85 else "NOUN" for t in r["tags"]] for r in rows]
    fmt = get_format("tagging")
    stats = example_stats(fmt, udpos, rows, preds)
    assert stats.kind == "f1" and stats.n == len(rows)
    assert stats.metric() == pytest.approx(fmt.score(udpos, rows, preds)["f1"], abs=1e-9)

    xquad = get_task("xquad")
    rows = xquad.load("de", "test", DataSource(data_dir=shared_data / "xquad"))[:300]
    fmt = get_format("span_qa")
    preds = [r["answers"]["text"][0] if rnd.random() < 0.5 else " ".join(r["context"].split()[:3]) for r in rows]
    stats = example_stats(fmt, xquad, rows, preds)
    assert stats.kind == "mean" and stats.n == 300
    assert stats.metric() == pytest.approx(fmt.score(xquad, rows, preds)["em_f1"], abs=1e-9)
    assert 0 < stats.metric() < 100


@pytest.mark.slow
def test_tatoeba_retrieval_writes_per_query_hits_for_the_paired_bootstrap(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: tat\nintermediate: [[], [demo-nli]]\ntargets: [demo-tatoeba]\n"
                    "hparams:\n  intermediate: {lr: 1.0e-3, epochs: 1, max_train_examples: 32, max_dev_examples: 8}\n")
    r = subprocess.run([sys.executable, "-m", "xit.cli", "run", str(spec), "--store", str(tmp_path / "store"),
                        "--out", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    n = 0
    for manifest in (tmp_path / "store" / "stages").glob("retrieval-*/MANIFEST.json"):
        files = manifest.parent / json.loads(manifest.read_text())["attempt"]
        metrics = json.loads((files / "metrics.json").read_text())
        ex = json.loads((files / "examples.json").read_text())
        for lang, m in metrics["languages"].items():
            stats = ExampleStats.from_json(ex["languages"][lang])
            assert "_examples" not in m and stats.n == m["n"]
            assert set(stats.values[:, 0].tolist()) <= {0.0, 100.0}
            assert stats.metric() == pytest.approx(m["accuracy"]) and m["accuracy"] == m["accuracy_en_xx"]
        n += 1
    assert n == 2
    rows = {x["intermediate"]: x for x in csv.DictReader(open(tmp_path / "out" / "results.csv", newline=""))}
    assert float(rows["[]"]["ci_low"]) <= float(rows["[]"]["score"]) <= float(rows["[]"]["ci_high"])
    assert rows["[demo-nli]"]["test"] == "paired bootstrap" and 0 < float(rows["[demo-nli]"]["p_value"]) <= 1
