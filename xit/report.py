"""Aggregate sweep scores into result tables, a markdown report and a delta heatmap.

A sweep yields one `Score` per (intermediate configuration, target task, language, seed).
`build_report` aggregates them — per seed the mean over languages, then the mean (and
population std) over seeds — computes each configuration's delta to the baseline
configuration for the same target, and writes into the output directory:

* ``results.csv``       ``intermediate,target,metric,score,delta``: one row per configuration × target,
                        then one per configuration × benchmark score (target ``XTREME`` / ``XTREME-R``,
                        metric ``benchmark``)
* ``per_language.csv``  ``intermediate,target,language,metric,score``: seed means per language
* ``results.md``        the main table plus one per-language table per target
* ``deltas.png``        a heatmap of the deltas to the baseline

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
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from rich.table import Table
from rich.text import Text

from xit.errors import XitError

DASH = "—"
RESULTS_HEADER = ["intermediate", "target", "metric", "score", "delta"]
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


@dataclass(frozen=True)
class ResultRow:
    """A configuration's aggregated score on one target (over languages, then seeds)."""

    intermediate: str
    target: str
    metric: str
    score: float  # mean over seeds of the mean over languages
    std: float  # population std over seeds of the per-seed language means (0.0 for one seed)
    n_seeds: int
    delta: float  # score minus the baseline's score for this target; NaN without a baseline


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


@dataclass
class ReportTables:
    """The aggregated numbers behind a report, in display order."""

    baseline: str
    title: str
    configs: list[str]  # baseline first (when present), then order of first appearance
    targets: list[str]  # order of first appearance
    metrics: dict[str, str]  # target -> metric
    languages: dict[str, list[str]]  # target -> languages in order of first appearance
    rows: list[ResultRow]
    language_rows: list[LanguageRow]
    benchmark_rows: list[BenchmarkRow] = field(default_factory=list)
    _by_cell: dict[tuple[str, str], ResultRow] = field(init=False, repr=False)
    _by_lang: dict[tuple[str, str, str], LanguageRow] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_cell = {(r.intermediate, r.target): r for r in self.rows}
        self._by_lang = {(r.intermediate, r.target, r.language): r for r in self.language_rows}

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


def _ordered(values: list[str]) -> list[str]:
    """Unique values in order of first appearance."""
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
        base = out.get((tables.baseline, name))
        rows.append(BenchmarkRow(config, name, total, cats, total - base[0] if base is not None else math.nan))
    return rows


def aggregate(scores: list[Score], baseline: str = "[]", title: str = "",
              task_languages: dict[str, set[str]] | None = None) -> ReportTables:
    """Aggregate raw scores into `ReportTables` without writing anything.

    ``task_languages`` (task -> languages) decides which benchmark scores are complete; default: the registry.
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

    configs = _ordered([s.intermediate for s in scores])
    if baseline in configs:
        configs.remove(baseline)
        configs.insert(0, baseline)
    targets = _ordered([s.target for s in scores])
    languages = {t: _ordered([s.language for s in scores if s.target == t]) for t in targets}

    # (config, target) -> seed -> per-language scores; (config, target, language) -> scores over seeds
    per_seed: dict[tuple[str, str], dict[int, list[float]]] = {}
    per_lang: dict[tuple[str, str, str], list[float]] = {}
    for (config, target, language, seed), value in cells.items():
        per_seed.setdefault((config, target), {}).setdefault(seed, []).append(value)
        per_lang.setdefault((config, target, language), []).append(value)

    means: dict[tuple[str, str], tuple[float, float, int]] = {}
    for key, by_seed in per_seed.items():
        seed_means = [float(np.mean(v)) for v in by_seed.values()]
        means[key] = (float(np.mean(seed_means)), float(np.std(seed_means)), len(seed_means))

    rows, language_rows = [], []
    for config in configs:
        for target in targets:
            if (config, target) not in means:
                continue
            score, std, n_seeds = means[config, target]
            base = means.get((baseline, target))
            delta = score - base[0] if base is not None else math.nan
            rows.append(ResultRow(config, target, metrics[target], score, std, n_seeds, delta))
            for language in languages[target]:
                values = per_lang.get((config, target, language))
                if values is not None:
                    language_rows.append(LanguageRow(config, target, language, metrics[target],
                                                     float(np.mean(values)), len(values)))
    tables = ReportTables(baseline, title, configs, targets, metrics, languages, rows, language_rows)
    tables.benchmark_rows = benchmark_scores(tables, task_languages)
    return tables


# ---------------------------------------------------------------------------------------- formatting


def _csv_number(value: float) -> str:
    """A float rounded to 4 decimals and written plainly; NaN becomes the empty string."""
    return "" if math.isnan(value) else repr(round(value, 4) + 0.0)  # + 0.0 turns -0.0 into 0.0


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


def _main_cells(tables: ReportTables, config: str) -> list[tuple[float, float] | None]:
    """(score, delta) per target then for the average; None where the config has no score."""
    cells: list[tuple[float, float] | None] = []
    for target in tables.targets:
        r = tables.row(config, target)
        cells.append(None if r is None else (r.score, r.delta))
    cells.append(tables.average(config))
    for name in tables.benchmarks:
        b = tables.benchmark_row(config, name)
        cells.append(None if b is None else (b.score, b.delta))
    return cells


def _main_header(tables: ReportTables) -> list[str]:
    return (["intermediate"] + [f"{t} ({tables.metrics[t]})" for t in tables.targets] + ["avg"]
            + [f"{name} score" for name in tables.benchmarks])


def render_markdown(tables: ReportTables) -> str:
    """The markdown report: title, main table, then one per-language table per target."""
    n_seeds = sorted({r.n_seeds for r in tables.rows})
    seeds = ", ".join(map(str, n_seeds))
    lines = [f"# {tables.title or 'Intermediate-task transfer results'}", "",
             f"Scores: mean over seeds (n = {seeds}) of the mean over languages. "
             f"In parentheses: difference to the baseline `{tables.baseline}`.", ""]
    body = []
    for config in tables.configs:
        row = [config]
        for cell in _main_cells(tables, config):
            if cell is None:
                row.append(DASH)
            elif config == tables.baseline:
                row.append(_fmt(cell[0]))
            else:
                row.append(f"{_fmt(cell[0])} ({_fmt_delta(cell[1])})")
        body.append(row)
    lines += _md_table(_main_header(tables), body)
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
    return "\n".join(lines) + "\n"


def render_rich(tables: ReportTables) -> Table:
    """The main table for the terminal; deltas green when positive, red when negative."""
    table = Table(title=tables.title or None)
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
            if config != tables.baseline:
                delta = round(cell[1], 1)
                style = "" if math.isnan(delta) else "green" if delta > 0 else "red" if delta < 0 else ""
                text.append(" (")
                text.append(_fmt_delta(cell[1]), style=style)
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
        writer.writerow([r.intermediate, r.target, r.metric, _csv_number(r.score), _csv_number(r.delta)])
    for name in tables.benchmarks:
        for config in tables.configs:
            b = tables.benchmark_row(config, name)
            if b is not None:
                writer.writerow([config, name, BENCHMARK_METRIC, _csv_number(b.score), _csv_number(b.delta)])
    writer = csv.writer(per_language, lineterminator="\n")
    writer.writerow(PER_LANGUAGE_HEADER)
    for lr in tables.language_rows:
        writer.writerow([lr.intermediate, lr.target, lr.language, lr.metric, _csv_number(lr.score)])
    return results.getvalue(), per_language.getvalue()


def plot_deltas(tables: ReportTables, out: IO[bytes]) -> None:
    """Draw the delta heatmap (non-baseline configs × targets + avg) as PNG into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in tables.configs if c != tables.baseline] or tables.configs[:1]
    columns = [*tables.targets, "avg"]
    data = np.array([[math.nan if c is None else c[1] for c in _main_cells(tables, config)[:len(columns)]]
                     for config in configs], dtype=float)
    finite = np.abs(data[np.isfinite(data)])
    limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0

    fig, ax = plt.subplots(figsize=(1.3 * len(columns) + 3.0, 0.55 * len(configs) + 2.0))
    try:
        image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
        for (i, j), value in np.ndenumerate(data):
            colour = "white" if math.isfinite(value) and abs(value) > 0.6 * limit else "black"
            ax.text(j, i, _fmt_delta(value), ha="center", va="center", color=colour, fontsize=9)
        ax.set_xticks(range(len(columns)), [f"{t}\n({tables.metrics[t]})" for t in tables.targets] + ["avg"])
        ax.set_yticks(range(len(configs)), configs)
        ax.set_xlabel("target task")
        ax.set_ylabel("intermediate tasks")
        ax.set_title(tables.title or f"Difference to baseline {tables.baseline}")
        fig.colorbar(image, ax=ax, label="Δ score (points)")
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=120)
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------- writing


def _write_atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` via a temporary file in the same directory, then `os.replace` it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _text_writer(text: str) -> Callable[[IO[bytes]], None]:
    return lambda handle: handle.write(text.encode("utf-8"))


def build_report(
    scores: list[Score], out_dir: Path, *, baseline: str = "[]", title: str = ""
) -> ReportTables:
    """Aggregate `scores` and write results.csv, per_language.csv, results.md and deltas.png to `out_dir`."""
    tables = aggregate(scores, baseline=baseline, title=title)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_csv, per_language_csv = render_csvs(tables)
    _write_atomic(out_dir / "results.csv", _text_writer(results_csv))
    _write_atomic(out_dir / "per_language.csv", _text_writer(per_language_csv))
    _write_atomic(out_dir / "results.md", _text_writer(render_markdown(tables)))
    _write_atomic(out_dir / "deltas.png", lambda handle: plot_deltas(tables, handle))
    return tables


def read_results_csv(path: Path) -> list[dict]:
    """Read a results.csv back: score as float, delta as float or None where it was empty."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return [{**row, "score": float(row["score"]), "delta": float(row["delta"]) if row["delta"] else None}
                for row in csv.DictReader(handle)]


def legend(tables: ReportTables) -> str:
    """What the printed table's numbers mean, printed under it."""
    return (f"Each cell: the target's test score, mean over its languages (English and the zero-shot ones) and "
            f"seeds. In parentheses, the delta: that score minus the baseline {tables.baseline}'s (the same base "
            f"encoder, no intermediate training), so a positive delta is the gain from intermediate training on "
            f"the row's tasks before the target (retrieval targets: scored on the intermediate encoder itself).")
