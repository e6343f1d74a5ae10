"""How sure a number is: per-example statistics, intervals over seeds and test examples, paired tests.

Per-example statistics. An evaluation writes, per language, one row of numbers per test example whose
column sums determine the headline metric (`ExampleStats`):

* ``mean``  one column, the example's own score (accuracy 0/100, SQuAD EM/F1, MRR): metric = mean;
* ``ratio`` two columns (correct, total) — token accuracy: metric = 100 * Σcorrect / Σtotal;
* ``f1``    three columns (true positives, predicted, gold) — seqeval's micro F1 over entity spans:
            metric = 100 * 2 Σtp / (Σpredicted + Σgold).

Resampling examples with replacement and recomputing the metric from the resampled sums is the
bootstrap of the corpus-level metric itself (Koehn 2004, "Statistical significance tests for machine
translation evaluation"; Dror et al. 2018, "The Hitchhiker's Guide to Testing Statistical Significance
in NLP"), not of an average of per-sentence scores.

Intervals (all 95 %):

* a cell's score, several seeds: Student's t interval over the per-seed scores,
  mean ± t(0.975, n-1) · s / √n, s the sample standard deviation;
* a cell's score, one seed: percentile bootstrap over test examples, resampled within each language
  (stratified), the metric recomputed per language and averaged over languages;
* a delta to the baseline: paired bootstrap. Each replicate draws the seeds both configurations share,
  with replacement (when there are two or more), then for each language one resample of test example
  indices used for *every* seed and *both* configurations (the pairing); the replicate's delta is the
  mean over the drawn seeds of (configuration − baseline), each the mean over languages. Interval: the
  2.5th and 97.5th percentiles of the replicate deltas; two-sided p-value:
  p = min(1, 2 · min((#{δ* ≤ 0} + 1) / (B + 1), (#{δ* ≥ 0} + 1) / (B + 1))).
  Without per-example statistics on both sides (BUCC, LAReQA, Mewsli-X, an old evaluation), the paired t-test
  over the shared seeds' scores (two or more seeds), or nothing.

Random draws come from ``numpy.random.default_rng(seed)`` in a fixed order — seed indices first
(a (B, n_seeds) array), then for each language in report order a (B, n) array of example indices —
so a report is reproducible and a test can recompute it by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

N_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
KINDS = {"mean": 1, "ratio": 2, "f1": 3}


@dataclass(frozen=True)
class ExampleStats:
    """Per-example numbers of one evaluation (one language, one seed) and how they make the metric."""

    kind: str  # one of KINDS
    values: np.ndarray  # (n_examples, KINDS[kind])

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown per-example statistic {self.kind!r}; known: {', '.join(KINDS)}")
        v = np.asarray(self.values, dtype=np.float64).reshape(-1, KINDS[self.kind])
        object.__setattr__(self, "values", v)

    @property
    def n(self) -> int:
        return int(self.values.shape[0])

    def metric(self) -> float:
        """The metric of all examples."""
        return float(combine(self.kind, self.values.sum(axis=0)[None, :], self.n)[0])

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "values": self.values.tolist()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExampleStats:
        return cls(d["kind"], np.asarray(d["values"], dtype=np.float64))


def combine(kind: str, sums: np.ndarray, n: int) -> np.ndarray:
    """The metric (0..100) from column sums, one row per replicate: (B, k) -> (B,)."""
    if kind == "mean":
        return sums[:, 0] / max(n, 1)
    if kind == "ratio":
        return np.divide(100.0 * sums[:, 0], sums[:, 1], out=np.zeros(len(sums)), where=sums[:, 1] > 0)
    denom = sums[:, 1] + sums[:, 2]
    return np.divide(200.0 * sums[:, 0], denom, out=np.zeros(len(sums)), where=denom > 0)


def example_stats(fmt: Any, task: Any, rows: list[dict], predictions: list[Any]) -> ExampleStats | None:
    """The per-example statistics of an evaluation, or None where they do not reproduce its metric.

    A format may define ``example_stats(task, rows, predictions) -> ExampleStats``; otherwise each
    example is scored on its own (``kind="mean"``), which is right for metrics that are means over
    examples. Either way the statistics must give back the format's own score, or none are kept.
    """
    if not rows:
        return None
    metric = task.metric
    own = getattr(fmt, "example_stats", None)
    if own is not None:
        stats = own(task, rows, predictions)
    else:
        stats = ExampleStats("mean", np.array([float(fmt.score(task, [r], [p])[metric])
                                               for r, p in zip(rows, predictions, strict=True)]))
    if stats is None or not math.isclose(stats.metric(), float(fmt.score(task, rows, predictions)[metric]),
                                         rel_tol=1e-9, abs_tol=1e-6):
        return None
    return stats


def _counts(rng: np.random.Generator, n: int, b: int) -> np.ndarray:
    """(B, n) multiplicities of one draw of (B, n) example indices with replacement."""
    idx = rng.integers(0, n, size=(b, n))
    flat = (idx + np.arange(b)[:, None] * n).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _replicates(stats: ExampleStats | list[ExampleStats], counts: np.ndarray) -> np.ndarray:
    """The metric on each resample; for a list (several configurations averaged), the mean of their metrics
    on the same resamples."""
    if isinstance(stats, list | tuple):
        return np.mean([_replicates(s, counts) for s in stats], axis=0)
    return combine(stats.kind, counts @ stats.values, stats.n)


def _n(stats: ExampleStats | list[ExampleStats]) -> int:
    return stats[0].n if isinstance(stats, list | tuple) else stats.n


def _percentiles(x: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    lo, hi = np.percentile(x, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def t_interval(values: list[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval for the mean of `values` (two or more)."""
    from scipy import stats as st

    x = np.asarray(values, dtype=np.float64)
    m, s = float(x.mean()), float(x.std(ddof=1))
    half = float(st.t.ppf(1 - (1 - confidence) / 2, len(x) - 1)) * s / math.sqrt(len(x))
    return m - half, m + half


def bootstrap_interval(per_language: list[ExampleStats] | list[list[ExampleStats]], *, n_resamples: int = N_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over languages, examples resampled within each language.

    A language's entry may be a list: several configurations on the same examples, averaged."""
    rng = np.random.default_rng(seed)
    reps = np.mean([_replicates(s, _counts(rng, _n(s), n_resamples)) for s in per_language], axis=0)
    return _percentiles(reps, confidence)


@dataclass(frozen=True)
class DeltaTest:
    low: float
    high: float
    p_value: float
    method: str  # "paired bootstrap" or "paired t-test"


def paired_bootstrap(config: list[list[ExampleStats]], baseline: list[list[ExampleStats]], *,
                     n_resamples: int = N_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     confidence: float = CONFIDENCE) -> DeltaTest:
    """Paired bootstrap of the delta; ``config[s][l]`` / ``baseline[s][l]``: seed s (shared, same order), language l.

    The same languages in the same order, with the same number of examples, on both sides and every seed.
    A baseline entry may be a list: several configurations on the same examples, averaged (a mixture against
    the mean of its single tasks).
    """
    n_seeds, n_langs = len(config), len(config[0])
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, n_seeds, size=(n_resamples, n_seeds)) if n_seeds > 1 else None
    per_seed = np.zeros((n_resamples, n_seeds))
    for lang in range(n_langs):
        counts = _counts(rng, config[0][lang].n, n_resamples)
        for s in range(n_seeds):
            per_seed[:, s] += (_replicates(config[s][lang], counts) - _replicates(baseline[s][lang], counts)) / n_langs
    deltas = per_seed.mean(axis=1) if seed_idx is None else np.take_along_axis(per_seed, seed_idx, 1).mean(axis=1)
    low, high = _percentiles(deltas, confidence)
    b = len(deltas)
    p = min(1.0, 2 * min((np.sum(deltas <= 0) + 1) / (b + 1), (np.sum(deltas >= 0) + 1) / (b + 1)))
    return DeltaTest(low, high, float(p), "paired bootstrap")


def paired_t(config: list[float], baseline: list[float], confidence: float = CONFIDENCE) -> DeltaTest | None:
    """Paired t-test over seeds (per-seed scores of the shared seeds, same order); None under two seeds."""
    from scipy import stats as st

    if len(config) < 2:
        return None
    d = np.asarray(config, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if float(d.std(ddof=1)) == 0.0:  # no spread: the interval is the point, the test is undefined
        return DeltaTest(float(d[0]), float(d[0]), math.nan, "paired t-test")
    low, high = t_interval(list(d), confidence)
    return DeltaTest(low, high, float(st.ttest_rel(config, baseline).pvalue), "paired t-test")


def excludes_zero(low: float, high: float) -> bool:
    return not (math.isnan(low) or math.isnan(high)) and (low > 0 or high < 0)
