"""Aggregate sweep scores into result tables, a markdown report and a delta heatmap.

A sweep yields one `Score` per (intermediate configuration, target task, language, seed).
`build_report` aggregates them — per seed the mean over languages, then the mean (and
sample std) over seeds, with a 95 % interval — computes each configuration's delta to the baseline
configuration for the same target, and writes into the output directory:

* ``results.csv``       ``intermediate,target,metric,score,delta,std,n_seeds,ci_low,ci_high,delta_ci_low,
                        delta_ci_high,p_value,test``: one row per configuration × target, then one per
                        configuration × benchmark score (target ``XTREME`` / ``XTREME-R``, metric
                        ``benchmark``; no intervals). Intervals and the paired test: see `xit.stats`.
* ``per_language.csv``  ``intermediate,target,language,metric,score``: seed means per language
* ``results.md``        the main table plus one per-language table per target
* ``deltas.png``        a heatmap of the deltas to the baseline, grey where not significant

Benchmark scores are computed for a configuration only when it has every task of the benchmark in
every language of the task (otherwise the number would not be the benchmark's), from the per-task
scores above (mean over seeds of the mean over languages, QA tasks scored (EM+F1)/2 per language):

* XTREME score: the mean over the nine XTREME tasks, as google-research/xtreme's ``evaluate.py``
  (``all_task``: the mean of each task's ``avg_metric``, English included where a task has it).
* XTREME-R score: the mean over its ten tasks, computed the same way (``evaluate.py`` has no other rule).

Both show their category means too (``evaluate.py``'s group scores): for XTREME-R classification (XNLI,
XCOPA), structured prediction (UD-POS, WikiANN-NER), question answering (XQuAD, MLQA, TyDiQA-GoldP) and
retrieval (Tatoeba, Mewsli-X, LAReQA).

Every file is written to a temporary name in the same directory and moved into place with
`os.replace`, so a reader never sees a half-written file.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
from rich.table import Table
from rich.text import Text

from xit.errors import XitError
from xit.files import atomic_write
from xit.labels import BASELINE_WORDS, MODEL_SEP, config_model, without_model
from xit.stats import (
    BOOTSTRAP_SEED,
    N_RESAMPLES,
    bootstrap_interval,
    excludes_zero,
    paired_bootstrap,
    paired_t,
    t_interval,
)
from xit.typology import ATTRIBUTES, TYPOLOGY_HEADER, typology_rows

DASH = "—"
RESULTS_HEADER = ["intermediate", "target", "metric", "score", "delta", "std", "n_seeds", "ci_low", "ci_high",
                  "delta_ci_low", "delta_ci_high", "p_value", "test"]
PER_LANGUAGE_HEADER = ["intermediate", "target", "language", "metric", "score"]


@dataclass(frozen=True)
class Score:
    """One evaluation result: a configuration's score on one target, language and seed."""

    intermediate: str  # the configuration label, e.g. "[]", "[mnli]", "[mnli, squad]"
    target: str  # target task name
    language: str
    metric: str  # headline metric name of that target (e.g. "accuracy", "f1", "em_f1")
    score: float  # 0..100
    seed: int
    # The evaluation's per-example statistics (xit.stats.ExampleStats), where its stage wrote them.
    examples: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ResultRow:
    """A configuration's aggregated score on one target (over languages, then seeds)."""

    intermediate: str
    target: str
    metric: str
    score: float  # mean over seeds of the mean over languages
    std: float  # sample std (ddof 1) over seeds of the per-seed language means (NaN for one seed)
    n_seeds: int
    delta: float  # score minus the baseline's score for this target; NaN without a baseline
    # 95 % interval of the score (t over seeds; one seed: bootstrap over test examples); NaN where none
    ci_low: float = math.nan
    ci_high: float = math.nan
    # 95 % interval of the delta and the two-sided p-value of the paired test (xit.stats); NaN where none
    delta_low: float = math.nan
    delta_high: float = math.nan
    p_value: float = math.nan
    test: str = ""  # "paired bootstrap", "paired t-test" or "" (no test)

    @property
    def significant(self) -> bool:
        """Whether the delta's interval excludes zero."""
        return excludes_zero(self.delta_low, self.delta_high)


@dataclass(frozen=True)
class LanguageRow:
    """A configuration's score on one target and language, averaged over seeds."""

    intermediate: str
    target: str
    language: str
    metric: str
    score: float
    n_seeds: int


@dataclass(frozen=True)
class Benchmark:
    """A benchmark score: the mean over its tasks; its categories' means are reported beside it."""

    name: str
    categories: tuple[tuple[str, tuple[str, ...]], ...]  # (category, its tasks)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for _, tasks in self.categories for t in tasks)


# As google-research/xtreme's evaluate.py scores both benchmarks: each task's mean over its languages (QA at
# (EM+F1)/2), then the plain mean over the tasks (`all_task`); the groups are its GROUP2TASK and
# XTREME_R_GROUP2TASK (which leaves LAReQA out of every group; here it is a retrieval task).
BENCHMARKS = (
    Benchmark("XTREME", (("classification", ("xnli", "pawsx")), ("structured prediction", ("udpos", "panx")),
                         ("question answering", ("xquad", "mlqa", "tydiqa")), ("retrieval", ("bucc", "tatoeba")))),
    Benchmark("XTREME-R", (("classification", ("xnli", "xcopa")), ("structured prediction", ("udpos-r", "panx-r")),
                           ("question answering", ("xquad", "mlqa", "tydiqa")),
                           ("retrieval", ("tatoeba-r", "mewslix", "lareqa")))),
)
BENCHMARK_METRIC = "benchmark"


@dataclass(frozen=True)
class BenchmarkRow:
    """A configuration's score on a whole benchmark, its category scores, and its delta to the baseline's."""

    intermediate: str
    benchmark: str
    score: float
    categories: dict[str, float]
    delta: float  # NaN when the baseline has no score on this benchmark




def baseline_of(config: str, baseline: str = "[]") -> str:
    """The label of the baseline a configuration is compared with: the baseline of its own base model
    ("[] model=<id>" for "[mnli] model=<id>"), else ``baseline`` itself."""
    model = config_model(config)
    return f"{baseline}{MODEL_SEP}{model}" if model else baseline


@dataclass
class ReportTables:
    """The aggregated numbers behind a report, in display order."""

    baseline: str  # the baseline's label; with several base models each has its own (see `baseline_of`)
    title: str
    configs: list[str]  # per base model: its baseline first (when present), then order of first appearance
    targets: list[str]  # order of first appearance
    metrics: dict[str, str]  # target -> metric
    languages: dict[str, list[str]]  # target -> languages in order of first appearance
    rows: list[ResultRow]
    language_rows: list[LanguageRow]
    benchmark_rows: list[BenchmarkRow] = field(default_factory=list)
    complementarity_rows: list[ComplementarityRow] = field(default_factory=list)
    typology_rows: list[Any] = field(default_factory=list)  # xit.typology.TypologyRow
    seed_scores: dict[tuple[str, str], dict[int, float]] = field(default_factory=dict, repr=False)
    examples: dict[tuple[str, str], dict[int, dict[str, Any]]] = field(default_factory=dict, repr=False)
    _by_cell: dict[tuple[str, str], ResultRow] = field(init=False, repr=False)
    _by_lang: dict[tuple[str, str, str], LanguageRow] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_cell = {(r.intermediate, r.target): r for r in self.rows}
        self._by_lang = {(r.intermediate, r.target, r.language): r for r in self.language_rows}

    def baseline_of(self, config: str) -> str:
        """The baseline ``config`` is compared with (that of its base model)."""
        return baseline_of(config, self.baseline)

    def is_baseline(self, config: str) -> bool:
        return config == self.baseline_of(config)

    @property
    def models(self) -> list[str]:
        """The base models the configurations name, in order ([] unless the sweep runs several)."""
        return [m for m in ordered([config_model(c) for c in self.configs]) if m]

    @property
    def baseline_text(self) -> str:
        """The baseline named in prose: its label, or the per-model pattern in sweeps over several models."""
        return f"{self.baseline}{MODEL_SEP}<id> (of the same base model)" if self.models else self.baseline

    @property
    def benchmarks(self) -> list[str]:
        """The benchmarks some configuration has a score on, in `BENCHMARKS` order."""
        have = {b.benchmark for b in self.benchmark_rows}
        return [b.name for b in BENCHMARKS if b.name in have]

    def benchmark_row(self, intermediate: str, benchmark: str) -> BenchmarkRow | None:
        return next((b for b in self.benchmark_rows if (b.intermediate, b.benchmark) == (intermediate, benchmark)),
                    None)

    def row(self, intermediate: str, target: str) -> ResultRow | None:
        """The aggregated row for a configuration and target, or None if it was not run."""
        return self._by_cell.get((intermediate, target))

    def language_row(self, intermediate: str, target: str, language: str) -> LanguageRow | None:
        """The per-language row, or None if that combination was not run."""
        return self._by_lang.get((intermediate, target, language))

    def average(self, intermediate: str) -> tuple[float, float]:
        """Mean over targets of a configuration's scores, and mean of its (defined) deltas."""
        rows = [r for t in self.targets if (r := self.row(intermediate, t)) is not None]
        deltas = [r.delta for r in rows if not math.isnan(r.delta)]
        return _mean([r.score for r in rows]), _mean(deltas)

    def render_rich(self) -> Table:
        """The main table for the terminal; see `render_rich`."""
        return render_rich(self)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


T = TypeVar("T")


def ordered(values: Iterable[T]) -> list[T]:
    """Unique values in order of first appearance (also the research sections')."""
    return list(dict.fromkeys(values))


def _task_languages(names: set[str]) -> dict[str, set[str]]:
    """The registry's languages of each named task (unknown names are left out)."""
    from xit.tasks.registry import get_task

    out = {}
    for n in sorted(names):
        try:
            out[n] = set(get_task(n).languages)
        except XitError:
            pass
    return out


def benchmark_scores(tables: ReportTables, task_languages: dict[str, set[str]] | None = None) -> list[BenchmarkRow]:
    """Each configuration's `BENCHMARKS` scores, where it has every task of a benchmark in all its languages.

    ``task_languages`` (task -> its languages) defaults to the task registry's.
    """
    if task_languages is None:
        task_languages = _task_languages({t for b in BENCHMARKS for t in b.tasks})

    def complete(config: str, task: str) -> bool:
        return tables.row(config, task) is not None and task in task_languages and all(
            tables.language_row(config, task, lang) is not None for lang in task_languages[task])

    out: dict[tuple[str, str], tuple[float, dict[str, float]]] = {}
    for b in BENCHMARKS:
        for config in tables.configs:
            if not all(complete(config, t) for t in b.tasks):
                continue
            task_score = {t: tables.row(config, t).score for t in b.tasks}  # type: ignore[union-attr]
            cats = {c: float(np.mean([task_score[t] for t in ts])) for c, ts in b.categories}
            total = float(np.mean(list(task_score.values())))
            out[(config, b.name)] = (total, cats)
    rows = []
    for (config, name), (total, cats) in out.items():
        base = out.get((tables.baseline_of(config), name))
        rows.append(BenchmarkRow(config, name, total, cats, total - base[0] if base is not None else math.nan))
    return rows


Cells = dict[tuple[str, str], dict[int, Any]]  # (config, target) -> seed -> per-seed score or language stats


def _score_interval(seed_scores: Cells, examples: Cells, configs: list[str], target: str, languages: list[str],
                    n_resamples: int, seed: int) -> tuple[float, float]:
    """The 95 % interval of a cell's score — or of the mean of several configurations' scores: t over the
    seeds they share; one seed: bootstrap over test examples (see xit.stats)."""
    seeds = [s for s in seed_scores[configs[0], target] if all(s in seed_scores[c, target] for c in configs)]
    if len(seeds) > 1:
        return t_interval([float(np.mean([seed_scores[c, target][s] for c in configs])) for s in seeds])
    langs = _paired_languages(examples, configs, target, seeds, languages)
    if not seeds or langs is None:
        return math.nan, math.nan
    per_lang = [[examples[c, target][seeds[0]][lang] for c in configs] for lang in langs]
    return bootstrap_interval([x[0] if len(x) == 1 else x for x in per_lang], n_resamples=n_resamples, seed=seed)


def _paired_languages(examples: Cells, configs: list[str], target: str, seeds: list[int],
                      languages: list[str]) -> list[str] | None:
    """The languages (report order) when every configuration has per-example statistics for the same
    languages on every seed, with equal numbers of examples; else None."""
    if not seeds:
        return None
    first = examples[configs[0], target][seeds[0]]
    langs = [lang for lang in languages if lang in first]
    for c in configs:
        for s in seeds:
            ex = examples[c, target][s]
            if set(ex) != set(langs) or any(ex[lang] is None or ex[lang].n != first[lang].n for lang in langs):
                return None
    return langs or None


def _paired_test(seed_scores: Cells, examples: Cells, config: str, others: list[str], target: str,
                 languages: list[str], n_resamples: int, seed: int) -> Any:
    """The paired test of ``config`` minus the mean of ``others`` on one target over the seeds they all have
    (see xit.stats): a paired bootstrap over seeds and examples, else a paired t-test over seeds, or None."""
    seeds = [s for s in seed_scores[config, target] if all(s in seed_scores[c, target] for c in others)]
    if not seeds:
        return None
    langs = _paired_languages(examples, [config, *others], target, seeds, languages)
    if langs is not None:
        def side(c: str, s: int, lang: str) -> Any:
            return examples[c, target][s][lang]

        return paired_bootstrap([[side(config, s, lang) for lang in langs] for s in seeds],
                                [[side(others[0], s, lang) if len(others) == 1 else [side(c, s, lang) for c in others]
                                  for lang in langs] for s in seeds], n_resamples=n_resamples, seed=seed)
    return paired_t([seed_scores[config, target][s] for s in seeds],
                    [float(np.mean([seed_scores[c, target][s] for c in others])) for s in seeds])


def aggregate(scores: list[Score], baseline: str = "[]", title: str = "",
              task_languages: dict[str, set[str]] | None = None, *, n_resamples: int = N_RESAMPLES,
              bootstrap_seed: int = BOOTSTRAP_SEED, complementarity: list[list[str]] | None = None,
              model: str = "") -> ReportTables:
    """Aggregate raw scores into `ReportTables` without writing anything.

    ``task_languages`` (task -> languages) decides which benchmark scores are complete; default: the registry.
    Intervals and paired tests: see `xit.stats` (``n_resamples`` bootstrap replicates from ``bootstrap_seed``).
    ``complementarity``: task groups whose mixture, singles and leave-one-out mixtures get compared.
    ``model``: the sweep's base model, named in the typology section (xit.typology).
    """
    if not scores:
        raise XitError("no scores to report: the sweep produced no evaluation results")
    metrics: dict[str, str] = {}
    cells: dict[tuple[str, str, str, int], float] = {}
    for s in scores:
        if metrics.setdefault(s.target, s.metric) != s.metric:
            raise XitError(f"target {s.target!r} reports two metrics: {metrics[s.target]!r} and {s.metric!r}")
        key = (s.intermediate, s.target, s.language, s.seed)
        if key in cells:
            raise XitError(f"duplicate score for intermediate={key[0]} target={key[1]} "
                           f"language={key[2]} seed={key[3]}")
        cells[key] = float(s.score)

    configs = []
    seen = ordered([s.intermediate for s in scores])
    for m in ordered([config_model(c) for c in seen]):  # per base model, its baseline first
        mine = [c for c in seen if config_model(c) == m]
        configs += sorted(mine, key=lambda c: c != baseline_of(c, baseline))  # stable: else first appearance
    targets = ordered([s.target for s in scores])
    languages = {t: ordered([s.language for s in scores if s.target == t]) for t in targets}

    # (config, target) -> seed -> per-language scores; (config, target, language) -> scores over seeds
    per_seed: dict[tuple[str, str], dict[int, list[float]]] = {}
    per_lang: dict[tuple[str, str, str], list[float]] = {}
    for (config, target, language, seed), value in cells.items():
        per_seed.setdefault((config, target), {}).setdefault(seed, []).append(value)
        per_lang.setdefault((config, target, language), []).append(value)
    # (config, target) -> seed -> language -> per-example statistics (where the evaluation wrote them)
    examples: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for s in scores:
        examples.setdefault((s.intermediate, s.target), {}).setdefault(s.seed, {})[s.language] = s.examples

    seed_scores = {key: {seed: float(np.mean(v)) for seed, v in sorted(by_seed.items())}
                   for key, by_seed in per_seed.items()}
    means: dict[tuple[str, str], float] = {key: float(np.mean(list(v.values()))) for key, v in seed_scores.items()}

    rows, language_rows = [], []
    for config in configs:
        for target in targets:
            if (config, target) not in means:
                continue
            by_seed = seed_scores[config, target]
            values = list(by_seed.values())
            score = means[config, target]
            std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            ci = _score_interval(seed_scores, examples, [config], target, languages[target], n_resamples,
                                 bootstrap_seed)
            base_config = baseline_of(config, baseline)
            base = means.get((base_config, target))
            delta = score - base if base is not None else math.nan
            test = None
            if base is not None and config != base_config:
                test = _paired_test(seed_scores, examples, config, [base_config], target, languages[target],
                                    n_resamples, bootstrap_seed)
            rows.append(ResultRow(config, target, metrics[target], score, std, len(values), delta, *ci,
                                  *((test.low, test.high, test.p_value, test.method) if test is not None
                                    else (math.nan, math.nan, math.nan, ""))))
            for language in languages[target]:
                values = per_lang.get((config, target, language))
                if values is not None:
                    language_rows.append(LanguageRow(config, target, language, metrics[target],
                                                     float(np.mean(values)), len(values)))
    tables = ReportTables(baseline, title, configs, targets, metrics, languages, rows, language_rows,
                          seed_scores=seed_scores, examples=examples)
    tables.benchmark_rows = benchmark_scores(tables, task_languages)
    for group in complementarity or []:
        for m in tables.models or [""]:
            tables.complementarity_rows += complementarity_rows(tables, list(group), n_resamples=n_resamples,
                                                                bootstrap_seed=bootstrap_seed, model=m)
    tables.typology_rows = typology_rows(tables, model)
    return tables


# ---------------------------------------------------------------------------------------- complementarity


@dataclass(frozen=True)
class ComplementarityRow:
    """One line of a mixture's complementarity table on one target: the mixture itself, a single task, the
    mean of the singles or a leave-one-out mixture, with the mixture's gain over it."""

    group: str  # the mixture's label, e.g. "[mnli, squad, hellaswag]"
    target: str
    comparison: str  # "mixture", "best single", "single", "mean of singles", "without <task>"
    intermediate: str  # the configuration's label ("mean of singles": the singles' labels joined by " + ")
    score: float
    ci_low: float
    ci_high: float
    gain: float  # mixture minus this line's score (for "without t": what t adds to the mixture); NaN: mixture
    gain_low: float = math.nan
    gain_high: float = math.nan
    p_value: float = math.nan
    test: str = ""

    @property
    def significant(self) -> bool:
        return excludes_zero(self.gain_low, self.gain_high)


COMPLEMENTARITY_HEADER = ["mixture", "target", "comparison", "intermediate", "score", "ci_low", "ci_high",
                          "mixture_minus", "delta_ci_low", "delta_ci_high", "p_value", "test", "model"]


def complementarity_rows(tables: ReportTables, group: list[str], *, n_resamples: int = N_RESAMPLES,
                         bootstrap_seed: int = BOOTSTRAP_SEED, model: str = "") -> list[ComplementarityRow]:
    """Per target with the mixture and every single task of ``group``: the mixture, each single (the best
    one labelled so), the mean of the singles, each leave-one-out mixture, each with its 95 % interval and
    the mixture's gain over it under the paired test (see xit.stats). Leave-one-out mixtures not run are
    left out; targets where the mixture or a single is missing get no rows. ``model``: compare that base
    model's configurations ("[mnli] model=<id>", sweeps over `models`)."""
    from xit.spec import label as spec_label

    def label(tasks: list[str]) -> str:
        return spec_label(tasks) + (f"{MODEL_SEP}{model}" if model else "")

    mixture, singles = label(group), [label([t]) for t in group]
    out = []
    for target in tables.targets:
        if any(tables.row(c, target) is None for c in [mixture, *singles]):
            continue
        langs = tables.languages[target]

        def line(comparison: str, configs: list[str], name: str, target: str = target,
                 langs: list[str] = langs) -> ComplementarityRow:
            score = float(np.mean([tables.row(c, target).score for c in configs]))  # type: ignore[union-attr]
            ci = _score_interval(tables.seed_scores, tables.examples, configs, target, langs, n_resamples,
                                 bootstrap_seed)
            if configs == [mixture]:
                return ComplementarityRow(mixture, target, comparison, name, score, *ci, math.nan)
            gain = tables.row(mixture, target).score - score  # type: ignore[union-attr]
            test = _paired_test(tables.seed_scores, tables.examples, mixture, configs, target, langs, n_resamples,
                                bootstrap_seed)
            extra = (test.low, test.high, test.p_value, test.method) if test is not None else ()
            return ComplementarityRow(mixture, target, comparison, name, score, *ci, gain, *extra)

        best = max(singles, key=lambda c: tables.row(c, target).score)  # type: ignore[union-attr]
        out.append(line("mixture", [mixture], mixture))
        out += [line("best single" if c == best else "single", [c], c) for c in singles]
        out.append(line("mean of singles", singles, " + ".join(singles)))
        for drop in group:
            loo = label([t for t in group if t != drop])
            if tables.row(loo, target) is not None:
                out.append(line(f"without {drop}", [loo], loo))
    return out


def render_complementarity_csv(tables: ReportTables) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COMPLEMENTARITY_HEADER)
    for r in tables.complementarity_rows:
        writer.writerow([r.group, r.target, r.comparison, r.intermediate, _csv_number(r.score), _csv_number(r.ci_low),
                         _csv_number(r.ci_high), _csv_number(r.gain), _csv_number(r.gain_low),
                         _csv_number(r.gain_high), _csv_p(r.p_value), r.test, config_model(r.group)])
    return buf.getvalue()


def _complementarity_markdown(tables: ReportTables) -> list[str]:
    lines: list[str] = []
    for group in ordered([r.group for r in tables.complementarity_rows]):
        lines += ["", f"## Complementarity of {group}", "",
                  "Does the mixture beat its best single task? Per target: the mixture, each single task, the mean "
                  "of the singles and each leave-one-out mixture, with 95 % intervals; *mixture −* is the "
                  "mixture's gain over the line (for *without t*: what t adds to the mixture), tested paired "
                  f"({SIGNIFICANT}: its interval excludes zero)."]
        for target in tables.targets:
            rows = [r for r in tables.complementarity_rows if (r.group, r.target) == (group, target)]
            if not rows:
                continue
            best = next(r for r in rows if r.comparison == "best single")
            mean = next(r for r in rows if r.comparison == "mean of singles")
            drops = sorted((r for r in rows if r.comparison.startswith("without ")), key=lambda r: -r.gain)
            lines += ["", f"### {target} ({tables.metrics[target]})", "",
                      f"Mixture {_fmt(rows[0].score)} vs best single {best.intermediate} {_fmt(best.score)} "
                      f"({_fmt_delta(best.gain)}{SIGNIFICANT if best.significant else ''}, p {_fmt_p(best.p_value)})"
                      f" vs mean of singles {_fmt(mean.score)} ({_fmt_delta(mean.gain)}"
                      f"{SIGNIFICANT if mean.significant else ''}, p {_fmt_p(mean.p_value)})."
                      + (f" The gain comes most from {drops[0].comparison[len('without '):]} "
                         f"(dropping it costs {_fmt_delta(drops[0].gain)})." if drops else ""), ""]
            body = [[r.comparison, r.intermediate, _fmt(r.score), _fmt_interval(r.ci_low, r.ci_high),
                     DASH if math.isnan(r.gain) else _fmt_delta(r.gain) + (SIGNIFICANT if r.significant else ""),
                     _fmt_interval(r.gain_low, r.gain_high), _fmt_p(r.p_value)] for r in rows]
            lines += _md_table(["line", "intermediate", "score", "95% CI", "mixture −", "95% CI", "p"], body)
    return lines


def plot_complementarity(tables: ReportTables, out: IO[bytes]) -> list[tuple[str, str, list[str], list[float]]]:
    """One panel per mixture × target: every line's score with its 95 % interval as a horizontal bar.

    Returns what was drawn: per panel (mixture, target, bar labels top to bottom, scores)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ordered([(r.group, r.target) for r in tables.complementarity_rows])
    colours = {"mixture": "#1f77b4", "best single": "#2ca02c", "single": "#98df8a", "mean of singles": "#7f7f7f"}
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    per = max(len([r for r in tables.complementarity_rows if (r.group, r.target) == p]) for p in panels)
    drawn = []
    fig, axes = plt.subplots(nrows, cols, figsize=(5.0 * cols, (0.35 * per + 1.4) * nrows), squeeze=False)
    try:
        for ax, (group, target) in zip(axes.flat, panels, strict=False):
            rows = [r for r in tables.complementarity_rows if (r.group, r.target) == (group, target)]
            y = np.arange(len(rows))[::-1]
            scores = np.array([r.score for r in rows])
            err = np.array([[r.score - r.ci_low, r.ci_high - r.score] if not math.isnan(r.ci_low) else [0, 0]
                            for r in rows]).T
            ax.barh(y, scores, xerr=err, color=[colours.get(r.comparison, "#ff7f0e") for r in rows], capsize=3)
            labels = [r.intermediate if r.comparison in ("single", "best single") else r.comparison for r in rows]
            labels = [f"{x} (best)" if r.comparison == "best single" else x for x, r in zip(labels, rows, strict=True)]
            ax.set_yticks(y, labels, fontsize=8)
            drawn.append((group, target, labels, [float(x) for x in scores]))
            ax.set_xlabel(f"{target} ({tables.metrics[target]}), 95 % interval")
            ax.set_title(f"{group} on {target}", fontsize=9)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=110)
    finally:
        plt.close(fig)
    return drawn


# ---------------------------------------------------------------------------------------- formatting


def _csv_number(value: float) -> str:
    """A float rounded to 4 decimals and written plainly; NaN becomes the empty string."""
    return "" if math.isnan(value) else repr(round(value, 4) + 0.0)  # + 0.0 turns -0.0 into 0.0


def _csv_p(value: float) -> str:
    """A p-value with 4 significant digits; NaN becomes the empty string."""
    return "" if math.isnan(value) else f"{value:.4g}"


def _fmt(value: float) -> str:
    return DASH if math.isnan(value) else f"{value + 0.0:.1f}"


def _fmt_delta(value: float) -> str:
    return DASH if math.isnan(value) else f"{round(value, 1) + 0.0:+.1f}"


def _md_escape(text: str) -> str:
    return text.replace("|", r"\|")


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(map(_md_escape, header)) + " |",
             "|" + "|".join([" --- "] + [" ---: "] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(map(_md_escape, row)) + " |" for row in body]
    return lines


def _main_cells(tables: ReportTables, config: str) -> list[tuple[float, float, bool] | None]:
    """(score, delta, whether the delta's interval excludes zero) per target, then for the average and the
    benchmark scores (never tested: False); None where the config has no score."""
    cells: list[tuple[float, float, bool] | None] = []
    for target in tables.targets:
        r = tables.row(config, target)
        cells.append(None if r is None else (r.score, r.delta, r.significant))
    cells.append((*tables.average(config), False))
    for name in tables.benchmarks:
        b = tables.benchmark_row(config, name)
        cells.append(None if b is None else (b.score, b.delta, False))
    return cells


SIGNIFICANT = "*"  # after a delta whose 95 % interval excludes zero


def _fmt_interval(low: float, high: float) -> str:
    return DASH if math.isnan(low) or math.isnan(high) else f"[{low + 0.0:.1f}, {high + 0.0:.1f}]"


def _fmt_p(p: float) -> str:
    return DASH if math.isnan(p) else f"{p:.3f}" if p >= 0.001 else "<0.001"


def _main_header(tables: ReportTables) -> list[str]:
    return (["intermediate"] + [f"{t} ({tables.metrics[t]})" for t in tables.targets] + ["avg"]
            + [f"{name} score" for name in tables.benchmarks])


def render_markdown(tables: ReportTables) -> str:
    """The markdown report: title, main table, then one per-language table per target."""
    n_seeds = sorted({r.n_seeds for r in tables.rows})
    seeds = ", ".join(map(str, n_seeds))
    lines = [f"# {tables.title or 'Intermediate-task transfer results'}", "",
             f"Scores: mean over seeds (n = {seeds}) of the mean over languages. "
             f"In parentheses: difference to the baseline `{tables.baseline_text}`; "
             f"{SIGNIFICANT} marks a difference whose 95 % interval excludes zero (paired test, see "
             "*Intervals and paired tests*).", ""]
    body = []
    for config in tables.configs:
        row = [config]
        for cell in _main_cells(tables, config):
            if cell is None:
                row.append(DASH)
            elif tables.is_baseline(config):
                row.append(_fmt(cell[0]))
            else:
                row.append(f"{_fmt(cell[0])} ({_fmt_delta(cell[1])}{SIGNIFICANT if cell[2] else ''})")
        body.append(row)
    lines += _md_table(_main_header(tables), body)
    lines += ["", "## Intervals and paired tests", "",
              "Per cell: mean and sample std over seeds, the 95 % interval of the score (Student's t over seeds; "
              "one seed: percentile bootstrap over test examples), the delta to the baseline with its 95 % "
              "interval and the p-value of the paired test (paired bootstrap over seeds and test examples; "
              "without per-example scores, the paired t-test over seeds).", ""]
    body = []
    for r in tables.rows:
        is_base = tables.is_baseline(r.intermediate)
        body.append([r.intermediate, r.target, _fmt(r.score), _fmt(r.std), str(r.n_seeds), _fmt_interval(r.ci_low,
                     r.ci_high), DASH if is_base else _fmt_delta(r.delta) + (SIGNIFICANT if r.significant else ""),
                     DASH if is_base else _fmt_interval(r.delta_low, r.delta_high),
                     DASH if is_base else _fmt_p(r.p_value), r.test or DASH])
    lines += _md_table(["intermediate", "target", "score", "std", "seeds", "95% CI", "delta", "delta 95% CI",
                        "p", "test"], body)
    for target in tables.targets:
        langs = tables.languages[target]
        lines += ["", f"## {target} ({tables.metrics[target]}) per language", ""]
        body = []
        for config in tables.configs:
            if tables.row(config, target) is None:
                continue
            cells = [tables.language_row(config, target, lang) for lang in langs]
            body.append([config] + [DASH if c is None else _fmt(c.score) for c in cells])
        lines += _md_table(["intermediate", *langs], body)
    for name in tables.benchmarks:
        bench = next(b for b in BENCHMARKS if b.name == name)
        lines += ["", f"## {name} score (mean over its tasks)", ""]
        body = []
        for config in tables.configs:
            b = tables.benchmark_row(config, name)
            if b is not None:
                body.append([config, _fmt(b.score)] + [_fmt(b.categories[c]) for c, _ in bench.categories])
        header = ["intermediate", name] + [f"{c} ({', '.join(ts)})" for c, ts in bench.categories]
        lines += _md_table(header, body)
    lines += _complementarity_markdown(tables)
    lines += _typology_markdown(tables)
    return "\n".join(lines) + "\n"


def render_rich(tables: ReportTables) -> Table:
    """The main table for the terminal; deltas green when positive, red when negative, in bold with a
    trailing * when their 95 % interval excludes zero."""
    table = Table(title=tables.title or None,
                  caption=f"{SIGNIFICANT}: the delta's 95 % interval excludes zero" if any(
                      r.significant for r in tables.rows) else None)
    for i, name in enumerate(_main_header(tables)):
        table.add_column(name.replace(" (", "\n("), justify="left" if i == 0 else "right",
                         style="bold" if i == 0 else None, no_wrap=i == 0, overflow="fold")
    for config in tables.configs:
        row: list[str | Text] = [Text(config)]  # Text: "[mnli]" is a label, not markup
        for cell in _main_cells(tables, config):
            if cell is None:
                row.append(DASH)
                continue
            text = Text(_fmt(cell[0]))
            if not tables.is_baseline(config):
                delta = round(cell[1], 1)
                style = "" if math.isnan(delta) else "green" if delta > 0 else "red" if delta < 0 else ""
                text.append(" (")
                text.append(_fmt_delta(cell[1]) + (SIGNIFICANT if cell[2] else ""),
                            style=f"bold {style}".strip() if cell[2] else style)
                text.append(")")
            row.append(text)
        table.add_row(*row)
    return table


def render_csvs(tables: ReportTables) -> tuple[str, str]:
    """The contents of results.csv and per_language.csv."""
    results, per_language = io.StringIO(), io.StringIO()
    writer = csv.writer(results, lineterminator="\n")
    writer.writerow(RESULTS_HEADER)
    for r in tables.rows:
        writer.writerow([r.intermediate, r.target, r.metric, _csv_number(r.score), _csv_number(r.delta),
                         _csv_number(r.std), r.n_seeds, _csv_number(r.ci_low), _csv_number(r.ci_high),
                         _csv_number(r.delta_low), _csv_number(r.delta_high), _csv_p(r.p_value), r.test])
    for name in tables.benchmarks:
        for config in tables.configs:
            b = tables.benchmark_row(config, name)
            if b is not None:
                writer.writerow([config, name, BENCHMARK_METRIC, _csv_number(b.score), _csv_number(b.delta)]
                                + [""] * (len(RESULTS_HEADER) - 5))
    writer = csv.writer(per_language, lineterminator="\n")
    writer.writerow(PER_LANGUAGE_HEADER)
    for lr in tables.language_rows:
        writer.writerow([lr.intermediate, lr.target, lr.language, lr.metric, _csv_number(lr.score)])
    return results.getvalue(), per_language.getvalue()


GREY = "#d9d9d9"  # heatmap cells whose delta is not significant


def delta_grid(tables: ReportTables) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The heatmap's rows (non-baseline configs), deltas (rows × targets + avg) and which cells are grey:
    a target cell whose delta's 95 % interval does not exclude zero (or that has no test). The avg column,
    a summary never tested, keeps its colour."""
    configs = [c for c in tables.configs if not tables.is_baseline(c)] or tables.configs[:1]
    n = len(tables.targets) + 1
    cells = [_main_cells(tables, config)[:n] for config in configs]
    data = np.array([[math.nan if c is None else c[1] for c in row] for row in cells], dtype=float)
    grey = np.array([[c is not None and j < n - 1 and not c[2] for j, c in enumerate(row)] for row in cells],
                    dtype=bool).reshape(data.shape)
    return configs, data, grey


def plot_deltas(tables: ReportTables, out: IO[bytes]) -> None:
    """Draw the delta heatmap (non-baseline configs × targets + avg) as PNG into `out`; cells whose delta is
    not significant are grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    configs, data, grey = delta_grid(tables)
    columns = [*tables.targets, "avg"]
    finite = np.abs(data[np.isfinite(data)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0

    fig, ax = plt.subplots(figsize=(1.3 * len(columns) + 3.0, 0.55 * len(configs) + 2.0))
    try:
        image = ax.imshow(np.ma.masked_where(~np.isfinite(data) | grey, data), cmap="RdBu", vmin=-limit,
                          vmax=limit, aspect="auto")
        ax.imshow(np.ma.masked_where(~grey, np.ones_like(data)), cmap=ListedColormap([GREY]), vmin=0, vmax=1,
                  aspect="auto")
        for (i, j), value in np.ndenumerate(data):
            colour = "white" if math.isfinite(value) and not grey[i, j] and abs(value) > 0.6 * limit else "black"
            ax.text(j, i, _fmt_delta(value), ha="center", va="center", color=colour, fontsize=9)
        if grey.any():
            fig.text(0.01, 0.01, "grey: the delta's 95 % interval includes zero (or was not tested)", fontsize=8)
        ax.set_xticks(range(len(columns)), [f"{t}\n({tables.metrics[t]})" for t in tables.targets] + ["avg"])
        ax.set_yticks(range(len(configs)), configs)
        ax.set_xlabel("target task")
        ax.set_ylabel("intermediate tasks")
        ax.set_title(tables.title or f"Difference to baseline {tables.baseline_text}")
        fig.colorbar(image, ax=ax, label="Δ score (points)")
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=120)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------- typology


def render_typology_csv(tables: ReportTables) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TYPOLOGY_HEADER)
    for r in tables.typology_rows:
        writer.writerow([r.model, r.target, r.attribute, r.group, " ".join(r.languages), r.intermediate,
                         _csv_number(r.score), _csv_number(r.baseline_score), _csv_number(r.delta)])
    return buf.getvalue()


def _typology_markdown(tables: ReportTables) -> list[str]:
    rows = tables.typology_rows
    if not rows:
        return []
    models = ordered([r.model for r in rows])
    several = len(models) > 1
    lines = ["", f"## Languages by typology ({', '.join(models) or 'the base model'})", "",
             "Each target's languages grouped by family and script, by morphological type and by affixation "
             "(WALS-derived; sources per language in `xit/typology.py`). Per group: the mean score over the "
             f"group's languages of the baseline ({BASELINE_WORDS}) and each configuration's difference to it (Δ "
             "of intermediate training)"
             + (", per base model against its own baseline." if several else ".")]
    for target in ordered([r.target for r in rows]):
        for model in models:
            mine = [r for r in rows if (r.target, r.model) == (target, model)]
            if not mine:
                continue
            configs = ordered([r.intermediate for r in mine])
            suffix = f"{MODEL_SEP}{model}" if several else ""
            for attribute in ATTRIBUTES:
                sel = [r for r in mine if r.attribute == attribute]
                groups = ordered([r.group for r in sel])
                lines += ["", f"### {target} ({tables.metrics[target]}) by {attribute}"
                          + (f", {model}" if several else ""), ""]
                body = []
                for g in groups:
                    by = {r.intermediate: r for r in sel if r.group == g}
                    first = next(iter(by.values()))
                    body.append([g, " ".join(first.languages), _fmt(first.baseline_score)]
                                + [_fmt_delta(by[c].delta) if c in by else DASH for c in configs])
                header = [attribute, "languages", "baseline score",
                          *(f"Δ {c.removesuffix(suffix) if suffix else c}" for c in configs)]
                lines += _md_table(header, body)
    return lines


# Per base model (order of first appearance) in typology.png: its bars' hatch; a configuration keeps its colour.
MODEL_HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def plot_typology(tables: ReportTables, out: IO[bytes]) -> list[
        tuple[str, str, list[str], dict[tuple[str, str], list[float]]]]:
    """One panel per target × attribute: per group, a bar per base model and configuration of its Δ to that
    model's baseline. A configuration has one colour across models; each model has its hatch, and the legend
    names both.

    Returns what was drawn: per panel (target, attribute, groups, (model, configuration without the model) ->
    Δ per group, NaN where the bar is missing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = tables.typology_rows
    targets = ordered([r.target for r in rows])
    bars = ordered([(r.model, without_model(r.intermediate)) for r in rows])  # model by model
    models = ordered([m for m, _ in bars])
    colours = {c: f"C{i % 10}" for i, c in enumerate(ordered([c for _, c in bars]))}
    several = len(models) > 1
    fig, axes = plt.subplots(len(targets), len(ATTRIBUTES), figsize=(4.2 * len(ATTRIBUTES), 3.2 * len(targets)),
                             squeeze=False)
    drawn = []
    try:
        width = 0.8 / max(len(bars), 1)
        for i, target in enumerate(targets):
            for j, attribute in enumerate(ATTRIBUTES):
                ax = axes[i][j]
                sel = [r for r in rows if (r.target, r.attribute) == (target, attribute)]
                groups = ordered([r.group for r in sel])
                deltas = {}
                for k, (model, config) in enumerate(bars):
                    by = {r.group: r.delta for r in sel if (r.model, without_model(r.intermediate)) == (model, config)}
                    deltas[model, config] = [by.get(g, math.nan) for g in groups]
                    ax.bar(np.arange(len(groups)) + k * width - 0.4 + width / 2, deltas[model, config], width,
                           color=colours[config], hatch=MODEL_HATCHES[models.index(model) % len(MODEL_HATCHES)],
                           edgecolor="white" if not several else "black", linewidth=0.3,
                           label=f"{config}, {model}" if several else config)
                ax.axhline(0, color="black", linewidth=0.6)
                ax.set_xticks(range(len(groups)), groups, rotation=40, ha="right", fontsize=7)
                ax.set_title(f"{target}: by {attribute}", fontsize=9)
                ax.set_ylabel("Δ to own baseline (points)" if several else "Δ to baseline (points)", fontsize=8)
                drawn.append((target, attribute, groups, deltas))
        axes[0][0].legend(fontsize=7, title="configuration, base model" if several else None, title_fontsize=7)
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=100)
    finally:
        plt.close(fig)
    return drawn


# ---------------------------------------------------------------------------------------- writing


def _write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` through `xit.files.atomic_write`, readable by all (results are meant to be shared)."""
    atomic_write(path, write, mode=0o644)


def _text_writer(text: str) -> Callable[[IO[bytes]], None]:
    return lambda handle: handle.write(text.encode("utf-8"))


def build_report(
    scores: list[Score], out_dir: Path, *, baseline: str = "[]", title: str = "", n_resamples: int = N_RESAMPLES,
    bootstrap_seed: int = BOOTSTRAP_SEED, complementarity: list[list[str]] | None = None, model: str = "",
) -> ReportTables:
    """Aggregate `scores` and write results.csv, per_language.csv, results.md and deltas.png to `out_dir`
    (and complementarity.csv / .png for complementarity groups with rows, typology.csv / .png where a
    target's languages have metadata and there is a baseline)."""
    tables = aggregate(scores, baseline=baseline, title=title, n_resamples=n_resamples,
                       bootstrap_seed=bootstrap_seed, complementarity=complementarity, model=model)
    write_report(tables, out_dir)
    return tables


def write_report(tables: ReportTables, out_dir: Path) -> None:
    """Write aggregated tables into `out_dir`: the files `build_report` lists."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_csv, per_language_csv = render_csvs(tables)
    _write_atomic(out_dir / "results.csv", _text_writer(results_csv))
    _write_atomic(out_dir / "per_language.csv", _text_writer(per_language_csv))
    _write_atomic(out_dir / "results.md", _text_writer(render_markdown(tables)))
    _write_atomic(out_dir / "deltas.png", lambda handle: plot_deltas(tables, handle))
    if tables.complementarity_rows:
        _write_atomic(out_dir / "complementarity.csv", _text_writer(render_complementarity_csv(tables)))
        _write_atomic(out_dir / "complementarity.png", lambda handle: plot_complementarity(tables, handle))
    if tables.typology_rows:
        _write_atomic(out_dir / "typology.csv", _text_writer(render_typology_csv(tables)))
        _write_atomic(out_dir / "typology.png", lambda handle: plot_typology(tables, handle))


def read_results_csv(path: Path) -> list[dict]:
    """Read a results.csv back: score as float, delta as float or None where it was empty."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [{**row, **{k: float(row[k]) if row[k] else None for k in _FLOAT_COLUMNS if k in row},
                 "score": float(row["score"]), **({"n_seeds": int(row["n_seeds"])} if row.get("n_seeds") else {})}
                for row in csv.DictReader(handle)]


_FLOAT_COLUMNS = ("delta", "std", "ci_low", "ci_high", "delta_ci_low", "delta_ci_high", "p_value")


def legend(tables: ReportTables) -> str:
    """What the printed table's numbers mean, printed under it."""
    return (f"Each cell: the target's test score, mean over its languages (English and the zero-shot ones) and "
            f"seeds. In parentheses, the delta: that score minus the baseline "
            f"{tables.baseline + MODEL_SEP + '<id>' if tables.models else tables.baseline}'s (the same base "
            f"encoder, no intermediate training), so a positive delta is the gain from intermediate training on "
            f"the row's tasks before the target (retrieval targets: scored on the intermediate encoder itself). "
            f"{SIGNIFICANT} marks a delta whose 95 % interval excludes zero (results.csv: delta_ci_low, "
            f"delta_ci_high, p_value).")
