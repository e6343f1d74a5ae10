"""Report sections for the research recipes (README "Research recipes"), written beside the main report.

`write_sections` adds ``research.md`` (and a CSV per section) to a report directory when the sweep asks the
question the section answers:

* **Intermediate-task source languages** (``sources.csv``), when some configuration trains in a language other
  than English (`xnli@de`, `husst`, ...): per target, the configurations grouped by the language of their
  training data — English, Finnish/Hungarian, other languages (a configuration mixing them is "mixed") — each
  group's mean score and mean difference to the baseline, and its best configuration.
* **Intermediate training size and evaluation slices** (``scaling.csv``, ``scaling.png``), when the spec has
  ``intermediate_sizes`` or ``slices``: per target and slice, score against training size per configuration,
  the mean over seeds with a 95 % t-interval (a band in the plot).

With several base models (`models: [...]`), every section compares each model's configurations with that model's
own baseline and gives each model its own rows (a ``model`` column) and curves. Prose names the baseline in
words (`xit.labels.BASELINE_WORDS`) beside the label the main table gives it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from xit.labels import BASELINE_WORDS, MODEL_SEP, config_model, without_model
from xit.report import ReportTables, baseline_of, ordered

# Every file a section may write (copied with the report where present).
RESEARCH_FILES = ("research.md", "sources.csv", "scaling.csv", "scaling.png")
SOURCE_GROUPS = ("English", "fi/hu", "other", "mixed")
FI_HU = ("fi", "hu")
SOURCES_HEADER = ["target", "model", "source", "configs", "mean_score", "mean_delta", "best", "best_score",
                  "best_delta"]


def several_models(models: Iterable[str]) -> bool:
    """Whether rows come from a sweep over several base models: only there does a configuration name its model
    (`config_model`; "" otherwise), so one named model is enough."""
    return any(models)


def config_tasks(config: str) -> list[str]:
    """The task names of a configuration label: "[mnli, xnli@de]" -> ["mnli", "xnli@de"]; anything after the
    closing bracket (a training-size suffix) is not part of the task list."""
    inner = config.strip()
    inner = inner[1:inner.index("]")] if inner.startswith("[") and "]" in inner else inner
    return [t.strip() for t in inner.split(",") if t.strip()]


def training_languages(config: str) -> list[str]:
    """The language each task of a configuration trains in (English for a task xit does not know)."""
    from xit.errors import XitError
    from xit.tasks.registry import get_task

    out = []
    for name in config_tasks(config):
        try:
            out.append(get_task(name).train_language)
        except XitError:
            out.append("en")
    return out


def source_group(config: str) -> str | None:
    """English / fi/hu / other / mixed for a configuration; None for the baseline (no task)."""
    langs = set(training_languages(config))
    if not langs:
        return None
    if langs == {"en"}:
        return "English"
    if langs <= set(FI_HU):
        return "fi/hu"
    if not langs & {"en", *FI_HU}:
        return "other"
    return "mixed"


@dataclass(frozen=True)
class SourceRow:
    target: str
    model: str  # "" unless the sweep runs several base models
    source: str
    configs: int
    mean_score: float
    mean_delta: float
    best: str
    best_score: float
    best_delta: float


def sized(config: str) -> bool:
    """Whether a configuration label names a training size below the full one ("[mnli] n=1000")."""
    return " n=" in without_model(config).partition("]")[2]


def source_rows(tables: ReportTables) -> list[SourceRow]:
    """Per target (and base model), per source group in `SOURCE_GROUPS` order: the group's configurations
    aggregated; Δ against the baseline of the same base model. Only full-size configurations count (in sweeps
    over `intermediate_sizes` a smaller size would pull its group's mean down; the scaling section has them)."""
    out = []
    for target in tables.targets:
        groups: dict[tuple[str, str], list] = {}
        base: dict[str, float] = {}
        for r in tables.rows:
            if r.target != target:
                continue
            if not config_tasks(r.intermediate):
                base[config_model(r.intermediate)] = r.score
                continue
            g = source_group(r.intermediate)
            if g is not None and not sized(r.intermediate):
                groups.setdefault((config_model(r.intermediate), g), []).append(r)
        for model in ordered([m for m, _ in groups]):
            for g in SOURCE_GROUPS:
                rows = groups.get((model, g))
                if not rows:
                    continue
                b = base.get(model, math.nan)
                best = max(rows, key=lambda r: r.score)
                out.append(SourceRow(target, model, g, len(rows), float(np.mean([r.score for r in rows])),
                                     float(np.mean([r.score - b for r in rows])), best.intermediate, best.score,
                                     best.score - b))
    return out


def _num(value: float) -> str:
    return "" if math.isnan(value) else repr(round(value, 4) + 0.0)


def _fmt(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def baseline_phrase(tables: ReportTables) -> str:
    """The baseline in prose: what it is, then the label the main table gives it (per base model where the sweep
    runs several)."""
    if tables.models:
        return (f"the baseline of the same base model, that encoder without intermediate training "
                f"(`{tables.baseline}{MODEL_SEP}<id>` in the main table)")
    return f"the baseline, {BASELINE_WORDS} (`{tables.baseline}` in the main table)"


def _md_table(header: list[str], body: Iterable[list[str]]) -> list[str]:
    esc = lambda s: s.replace("|", r"\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "|".join([" --- "] * len(header)) + "|"]
    return lines + ["| " + " | ".join(map(esc, row)) + " |" for row in body]


def sources_section(tables: ReportTables) -> tuple[list[str], str] | None:
    """(markdown lines, CSV text) of the source-language comparison; None when every source is English."""
    rows = source_rows(tables)
    if not any(r.source != "English" for r in rows):
        return None
    lines = ["## Intermediate-task source languages", "",
             "Per target, the intermediate configurations grouped by the language they train in: English, "
             "Finnish/Hungarian (fi/hu), other languages, or mixed (per base model, where the sweep has several). "
             "Mean over the group's configurations"
             + (" (full training size only; the smaller sizes are in the scaling section)"
                if any(sized(c) for c in tables.configs) else "")
             + f"; Δ: difference to {baseline_phrase(tables)}.", ""]
    by_target: dict[tuple[str, str], dict[str, SourceRow]] = {}
    for r in rows:
        by_target.setdefault((r.target, r.model), {})[r.source] = r
    present = [g for g in SOURCE_GROUPS if any(g in d for d in by_target.values())]
    body = []
    models = several_models(model for _, model in by_target)
    for (target, model), d in by_target.items():
        cells = []
        for g in present:
            r = d.get(g)
            if r is None:
                cells.append("—")
                continue
            best = without_model(r.best) if models else r.best  # the model has its column
            cells.append(f"{_fmt(r.mean_score)} ({_fmt(r.mean_delta, True)}); best {best} {_fmt(r.best_score)}")
        body.append([f"{target} ({tables.metrics[target]})", *([model] if models else []), *cells])
    lines += _md_table(["target", *(["model"] if models else []), *present], body)
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(SOURCES_HEADER)
    for r in rows:
        w.writerow([r.target, r.model, r.source, r.configs, _num(r.mean_score), _num(r.mean_delta), r.best,
                    _num(r.best_score), _num(r.best_delta)])
    return lines, text.getvalue()


# --------------------------------------------------------------------------- scaling curves and slices

SCALING_HEADER = ["target", "model", "slice", "intermediate", "size", "n_seeds", "score", "low", "high"]
# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (beyond: the normal's 1.96).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95 % t-interval of the mean over seeds; a point (low = high = mean) for one seed."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, mean, mean
    half = (_T975[len(values) - 2] if len(values) - 1 <= len(_T975) else 1.96) * \
        float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class CurvePoint:
    target: str
    slice: str
    configuration: str  # the configuration label without its size ("[mnli]"; "[mnli] model=<id>" per model)
    size: int | str  # training examples per intermediate task, or "full"
    n_seeds: int
    score: float
    low: float
    high: float

    @property
    def model(self) -> str:
        """The base model the configuration names ("" unless the sweep runs several)."""
        return config_model(self.configuration)


def _slice_score(entry: dict, m: dict, name: str) -> float | None:
    """An evaluation's score on one slice: the mean over the slice's languages (a language slice) or over the
    languages of the score on the slice's rows (a genre slice); None where the slice has no data."""
    metric = entry["metric"]
    if name == "all":
        vals = [v[metric] for v in m["languages"].values()]
    elif entry["slices"][name]["kind"] == "languages":
        vals = [m["languages"][lang][metric] for lang in entry["slices"][name]["values"] if lang in m["languages"]]
    else:
        vals = [v[metric] for v in m.get("slices", {}).get(name, {}).values() if v.get("n")]
    return float(np.mean(vals)) if vals else None


def curve_points(entries: list[dict], metrics: dict[str, dict]) -> list[CurvePoint]:
    """Per target, slice ("all" first), base model and configuration (the one without intermediate training
    first, then the plan's order) and size: the score over seeds with its 95 % interval."""
    cells: dict[tuple[str, str, str, int | str], list[float]] = {}
    for e in entries:
        config, size = e.get("configuration", e["intermediate"]), e.get("size", "full")
        for name in ["all", *e.get("slices", {})]:
            v = _slice_score(e, metrics[e["key"]], name)
            if v is not None:
                cells.setdefault((e["target"], name, config, size), []).append(v)
    order = {"full": math.inf}
    points = [CurvePoint(t, sl, c, size, len(v), *t_interval(v)) for (t, sl, c, size), v in cells.items()]
    targets = ordered([e["target"] for e in entries])
    configs = ordered([e.get("configuration", e["intermediate"]) for e in entries])
    models = ordered([config_model(c) for c in configs])
    return sorted(points, key=lambda p: (targets.index(p.target), p.slice != "all", p.slice, models.index(p.model),
                                         bool(config_tasks(p.configuration)), configs.index(p.configuration),
                                         order.get(p.size, p.size)))  # type: ignore[arg-type]


NO_INTERMEDIATE = "none (baseline)"  # the baseline's row in the scaling table


def scaling_section(entries: list[dict], metrics: dict[str, dict], baseline: str,
                    out_png: Path | None = None) -> tuple[list[str], str] | None:
    """Score vs intermediate training size per target and slice, with 95 % intervals over seeds: markdown lines
    and CSV text (and the plot, into `out_png`); None when the sweep has neither sizes nor slices. With several
    base models, each has its own rows (a *model* column) and curves, its baseline its own."""
    if not any("size" in e or "slices" in e for e in entries):
        return None
    points = curve_points(entries, metrics)
    several = several_models(p.model for p in points)
    lines = ["## Intermediate training size and evaluation slices", "",
             "Score per target and slice (\"all\": every evaluated language and row) against the number of "
             "training examples of each intermediate task (nested subsets: for one seed, each smaller set is a "
             "prefix of one seeded order of the training set; \"full\": all of it). Mean over seeds "
             "[95 % t-interval]. "
             + (f"*{NO_INTERMEDIATE}*: each base model without intermediate training (`{baseline}{MODEL_SEP}<id>` "
                "in the main table), so it has no training size. Each base model has its own rows and, in the "
                "plot, its own line style and a dashed baseline line in its own grey."
                if several else f"*{NO_INTERMEDIATE}*: {BASELINE_WORDS} (`{baseline}` in the main table), so it "
                "has no training size; a dashed line in the plot."), ""]
    for target in ordered([p.target for p in points]):
        slices = ordered([p.slice for p in points if p.target == target])
        lines += [f"### {target}", ""]
        body = []
        for config, size in ordered([(p.configuration, p.size) for p in points if p.target == target]):
            is_base = baseline_of(config, baseline) == config
            name = NO_INTERMEDIATE if is_base else without_model(config) if several else config
            row = [name, *([config_model(config)] if several else []), "—" if is_base else str(size)]
            for sl in slices:
                pt = next((p for p in points if (p.target, p.slice, p.configuration, p.size) ==
                           (target, sl, config, size)), None)
                row.append("—" if pt is None else f"{pt.score:.2f} [{pt.low:.2f}, {pt.high:.2f}]")
            body.append(row)
        lines += _md_table(["intermediate", *(["model"] if several else []), "size", *slices], body) + [""]
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(SCALING_HEADER)
    for p in points:
        w.writerow([p.target, p.model, p.slice, p.configuration, p.size, p.n_seeds, _num(p.score), _num(p.low),
                    _num(p.high)])
    if out_png is not None:
        plot_curves(points, baseline, out_png)
    return lines, text.getvalue()


# Per base model (order of first appearance): its curves' line style and marker, its baseline line's grey.
MODEL_LINES = ("-", "--", ":", "-.")
MODEL_MARKERS = ("o", "s", "^", "D", "v", "P")
BASELINE_GREYS = ("#666666", "#a6a6a6", "#333333", "#cccccc")

Curve = list[tuple[int | str, float, float, float]]  # (size, score, low, high) per point


def plot_curves(points: list[CurvePoint], baseline: str, out_png: Path | IO[bytes]) -> list[
        tuple[str, str, dict[tuple[str, str], Curve]]]:
    """One panel per target and slice: a line per configuration over size (log axis, "full" last) with its
    interval band; the baseline as a dashed line with its band. With several base models, a configuration keeps
    its colour across models and each model has its line style and marker (and its baseline its grey).

    Returns what was drawn: per panel (target, slice, (model, configuration without model, or "baseline") ->
    its points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ordered([(p.target, p.slice) for p in points])
    models = ordered([p.model for p in points])
    several = several_models(models)
    names = ordered([without_model(p.configuration) for p in points
                     if baseline_of(p.configuration, baseline) != p.configuration])
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
    numeric = sorted({p.size for p in points if p.size != "full"})  # type: ignore[type-var]
    full_x = (max(numeric) * 4 if numeric else 1)  # type: ignore[operator]
    xs = lambda size: full_x if size == "full" else size  # noqa: E731
    drawn = []
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    try:
        for ax, (target, sl) in zip(axes[0], panels, strict=True):
            here = [p for p in points if (p.target, p.slice) == (target, sl)]
            lines: dict[tuple[str, str], Curve] = {}
            for config in ordered([p.configuration for p in here]):
                curve = [p for p in here if p.configuration == config]
                m = models.index(curve[0].model)
                of = f", {curve[0].model}" if several else ""
                if config == baseline_of(config, baseline):
                    b = curve[0]
                    grey = BASELINE_GREYS[m % len(BASELINE_GREYS)]
                    ax.axhline(b.score, color=grey, linestyle="--", label=f"baseline (no intermediate training){of}")
                    ax.axhspan(b.low, b.high, color=grey, alpha=0.15)
                    lines[(b.model, "baseline")] = [(b.size, b.score, b.low, b.high)]
                    continue
                name = without_model(config)
                x = [xs(p.size) for p in curve]
                ax.plot(x, [p.score for p in curve], color=colours[name], linestyle=MODEL_LINES[m % len(MODEL_LINES)],
                        marker=MODEL_MARKERS[m % len(MODEL_MARKERS)], label=f"{name}{of}")
                ax.fill_between(x, [p.low for p in curve], [p.high for p in curve], color=colours[name], alpha=0.2)
                lines[(curve[0].model, name)] = [(p.size, p.score, p.low, p.high) for p in curve]
            ax.set_xscale("log")
            ax.minorticks_off()  # the log axis's minor labels (2x10^1, ...) would crowd the sizes' own ticks
            ticks = [*numeric, full_x]
            ax.set_xticks(ticks, [*map(str, numeric), "full"])
            ax.set_title(f"{target} — {sl}")
            ax.set_xlabel("intermediate training examples per task")
            ax.set_ylabel("score")
            ax.legend(fontsize=7)
            drawn.append((target, sl, lines))
        fig.tight_layout()
        fig.savefig(out_png, format="png", dpi=110)
    finally:
        plt.close(fig)
    return drawn


def write_sections(tables: ReportTables, out_dir: Path, *, entries: list[dict] | None = None,
                   metrics: dict[str, dict] | None = None) -> list[str]:
    """Write research.md and the CSVs (and plots) of the sections this sweep calls for, from the report's
    aggregated `tables` (and, for the scaling section, its `entries` and their stages' `metrics`); the section
    titles."""
    baseline = tables.baseline
    out_dir = Path(out_dir)
    sections: list[tuple[str, list[str], str]] = []
    src = sources_section(tables)
    if src is not None:
        sections.append(("sources.csv", *src))
    if entries:
        curves = scaling_section(entries, metrics or {}, baseline, out_dir / "scaling.png")
        if curves is not None:
            sections.append(("scaling.csv", *curves))
    if not sections:
        return []
    lines = ["# Research sections", ""]
    for name, md, text in sections:
        (out_dir / name).write_text(text, encoding="utf-8")
        lines += [*md, ""]
    (out_dir / "research.md").write_text("\n".join(lines), encoding="utf-8")
    return [md[0].removeprefix("## ") for _, md, _ in sections]
