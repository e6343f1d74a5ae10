"""Research question 1, multi-task complementarity: the report's mixture vs best single vs mean of singles,
with leave-one-out drops, on fixed numbers; and a tiny sweep from `{all_but_one: [...]}` end to end."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xit.report import (
    COMPLEMENTARITY_HEADER,
    Score,
    aggregate,
    build_report,
    complementarity_rows,
    plot_complementarity,
)
from xit.stats import ExampleStats, bootstrap_interval, paired_t

ROOT = Path(__file__).resolve().parents[1]
GROUP = ["mnli", "squad", "hellaswag"]
# Accuracy per configuration; on each language of 100 examples the first k are right (nested: pairs differ
# only where the better one is right).
ACCURACY = {"[]": 50, "[mnli]": 60, "[squad]": 55, "[hellaswag]": 50, "[mnli, squad, hellaswag]": 70,
            "[squad, hellaswag]": 56, "[mnli, hellaswag]": 68, "[mnli, squad]": 70}


def _examples(k: int, n: int = 100) -> np.ndarray:
    return np.array([100.0] * k + [0.0] * (n - k))


def _scores() -> list[Score]:
    return [Score(c, "xnli", lang, "accuracy", float(k), 1, ExampleStats("mean", _examples(k)))
            for c, k in ACCURACY.items() for lang in ("de", "sw")]


def test_complementarity_rows_on_fixed_numbers(tmp_path: Path) -> None:
    tables = build_report(_scores(), tmp_path, complementarity=[GROUP], n_resamples=400)
    rows = tables.complementarity_rows
    assert [(r.comparison, r.intermediate) for r in rows] == [
        ("mixture", "[mnli, squad, hellaswag]"), ("best single", "[mnli]"), ("single", "[squad]"),
        ("single", "[hellaswag]"), ("mean of singles", "[mnli] + [squad] + [hellaswag]"),
        ("without mnli", "[squad, hellaswag]"), ("without squad", "[mnli, hellaswag]"),
        ("without hellaswag", "[mnli, squad]")]
    by = {r.comparison: r for r in rows}
    assert by["mean of singles"].score == pytest.approx((60 + 55 + 50) / 3)
    # The mixture's gain over each line: 70-60, 70-55, 70-50, 70-55; the drops: 70-56, 70-68, 70-70.
    assert [r.gain for r in rows[1:]] == pytest.approx([10, 15, 20, 15, 14, 2, 0])
    # Nested right answers: every resample favours the mixture over the best single; dropping hellaswag
    # changes nothing, so its interval is [0, 0] and p = 1.
    assert by["best single"].significant and by["best single"].gain_low > 0
    assert by["best single"].p_value < 0.01 and by["best single"].test == "paired bootstrap"
    assert by["mean of singles"].significant
    assert (by["without hellaswag"].gain_low, by["without hellaswag"].gain_high) == (0.0, 0.0)
    assert by["without hellaswag"].p_value == 1.0 and not by["without hellaswag"].significant
    # The mean of singles' interval: the bootstrap of the three configurations averaged on shared resamples.
    singles = [[ExampleStats("mean", _examples(k)) for k in (60, 55, 50)] for _ in ("de", "sw")]
    assert (by["mean of singles"].ci_low, by["mean of singles"].ci_high) == pytest.approx(
        bootstrap_interval(singles, n_resamples=400))

    lines = list(csv.reader(io.StringIO((tmp_path / "complementarity.csv").read_text())))
    assert lines[0] == COMPLEMENTARITY_HEADER
    assert lines[1][:5] == ["[mnli, squad, hellaswag]", "xnli", "mixture", "[mnli, squad, hellaswag]", "70.0"]
    assert lines[1][7] == ""  # no gain of the mixture over itself
    assert lines[2][:4] == ["[mnli, squad, hellaswag]", "xnli", "best single", "[mnli]"]
    assert lines[2][7] == "10.0" and lines[-1][7] == "0.0" and lines[-1][10] == "1"

    md = (tmp_path / "results.md").read_text()
    assert "## Complementarity of [mnli, squad, hellaswag]" in md and "### xnli (accuracy)" in md
    assert "Mixture 70.0 vs best single [mnli] 60.0 (+10.0*" in md
    assert "vs mean of singles 55.0 (+15.0*" in md
    assert "The gain comes most from mnli (dropping it costs +14.0)." in md
    assert "| without hellaswag | [mnli, squad] | 70.0 | [" in md and "| +0.0 | [0.0, 0.0] | 1.000 |" in md

    png = (tmp_path / "complementarity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = plot_complementarity(tables, io.BytesIO())
    assert drawn == [("[mnli, squad, hellaswag]", "xnli",
                      ["mixture", "[mnli] (best)", "[squad]", "[hellaswag]", "mean of singles", "without mnli",
                       "without squad", "without hellaswag"],
                      pytest.approx([70, 60, 55, 50, 55, 56, 68, 70]))]


def test_no_group_no_section_and_missing_single_no_rows(tmp_path: Path) -> None:
    build_report(_scores(), tmp_path)
    assert not (tmp_path / "complementarity.csv").exists()
    assert "Complementarity" not in (tmp_path / "results.md").read_text()
    scores = [s for s in _scores() if s.intermediate != "[squad]"]
    assert complementarity_rows(aggregate(scores), GROUP) == []


def test_several_seeds_without_examples_use_the_paired_t_test() -> None:
    seeds = {1: 0.0, 2: 1.0, 3: -0.5}
    scores = [Score(c, "tatoeba", "de", "accuracy", k + off * (2 if c.count(",") == 2 else 1), seed)
              for c, k in ACCURACY.items() for seed, off in seeds.items()]
    rows = aggregate(scores, complementarity=[GROUP]).complementarity_rows
    mean = next(r for r in rows if r.comparison == "mean of singles")
    mix = [70 + 2 * off for off in seeds.values()]
    singles = [np.mean([k + off for k in (60, 55, 50)]) for off in seeds.values()]
    ref = paired_t(mix, singles)
    assert (mean.test, mean.gain_low, mean.gain_high, mean.p_value) == ("paired t-test", pytest.approx(ref.low),
                                                                        pytest.approx(ref.high),
                                                                        pytest.approx(ref.p_value))


SWEEP = """\
name: tiny-complementarity
intermediate: [[], {all_but_one: [demo-nli, demo-qa, demo-mc]}]
targets: [demo-para]
languages: {demo-para: [en, agg]}
hparams:
  intermediate: {lr: 1.0e-3, epochs: 1, max_train_examples: 32, max_dev_examples: 8}
  target: {lr: 1.0e-3, epochs: 1, max_train_examples: 64, max_dev_examples: 16, max_eval_examples: 40}
"""


@pytest.mark.slow
def test_tiny_complementarity_sweep_end_to_end(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SWEEP)
    r = subprocess.run([sys.executable, "-m", "xit.cli", "run", str(spec), "--store", str(tmp_path / "store"),
                        "--out", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "out"
    with open(out / "results.csv", newline="") as f:
        configs = [x["intermediate"] for x in csv.DictReader(f)]
    assert configs == ["[]", "[demo-nli, demo-qa, demo-mc]", "[demo-qa, demo-mc]", "[demo-nli, demo-mc]",
                       "[demo-nli, demo-qa]", "[demo-nli]", "[demo-qa]", "[demo-mc]"]
    with open(out / "complementarity.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [x["comparison"] for x in rows if x["comparison"] not in ("single", "best single")] == [
        "mixture", "mean of singles", "without demo-nli", "without demo-qa", "without demo-mc"]
    assert sum(x["comparison"] == "best single" for x in rows) == 1
    scores = {x["intermediate"]: float(x["score"]) for x in rows}
    best = next(x for x in rows if x["comparison"] == "best single")
    assert float(best["score"]) == max(scores[c] for c in ("[demo-nli]", "[demo-qa]", "[demo-mc]"))
    for x in rows[1:]:  # one seed: bootstrap intervals and the paired bootstrap on the evaluations' examples
        assert float(x["ci_low"]) <= float(x["score"]) <= float(x["ci_high"])
        assert float(x["mixture_minus"]) == pytest.approx(scores["[demo-nli, demo-qa, demo-mc]"] - float(x["score"]),
                                                          abs=2e-4)
        assert x["test"] == "paired bootstrap" and 0 < float(x["p_value"]) <= 1
    assert "## Complementarity of [demo-nli, demo-qa, demo-mc]" in (out / "results.md").read_text()
    assert (out / "complementarity.png").read_bytes()[:4] == b"\x89PNG"
    assert "complementarity.csv" in r.stderr  # the runner lists the files it exported
