"""Report sections for the research recipes (README "Research recipes"), written beside the main report.

`write_sections` adds ``research.md`` (and a CSV per section) to a report directory when the sweep asks the
question the section answers:

* **Intermediate-task source languages** (``sources.csv``), when some configuration trains in a language other
  than English (`xnli@de`, `husst`, ...): per target, the configurations grouped by the language of their
  training data — English, Finnish/Hungarian, other languages (a configuration mixing them is "mixed") — each
  group's mean score and mean difference to the baseline, and its best configuration.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xit.report import ReportTables, Score, aggregate

# Every file a section may write (copied with the report where present).
RESEARCH_FILES = ("research.md", "sources.csv", "scaling.csv", "scaling.png")
SOURCE_GROUPS = ("English", "fi/hu", "other", "mixed")
FI_HU = ("fi", "hu")
SOURCES_HEADER = ["target", "source", "configs", "mean_score", "mean_delta", "best", "best_score", "best_delta"]


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
    source: str
    configs: int
    mean_score: float
    mean_delta: float
    best: str
    best_score: float
    best_delta: float


def source_rows(tables: ReportTables) -> list[SourceRow]:
    """Per target and source group (in `SOURCE_GROUPS` order): the group's configurations aggregated."""
    out = []
    for target in tables.targets:
        groups: dict[str, list] = {}
        for r in tables.rows:
            if r.target == target and r.intermediate != tables.baseline:
                g = source_group(r.intermediate)
                if g is not None:
                    groups.setdefault(g, []).append(r)
        for g in SOURCE_GROUPS:
            rows = groups.get(g)
            if not rows:
                continue
            best = max(rows, key=lambda r: r.score)
            out.append(SourceRow(target, g, len(rows), float(np.mean([r.score for r in rows])),
                                 float(np.mean([r.delta for r in rows])), best.intermediate, best.score, best.delta))
    return out


def _num(value: float) -> str:
    return "" if math.isnan(value) else repr(round(value, 4) + 0.0)


def _fmt(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


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
             f"Per target, the intermediate configurations grouped by the language they train in: English, "
             f"Finnish/Hungarian (fi/hu), other languages, or mixed. Mean over the group's configurations; "
             f"Δ: difference to the baseline `{tables.baseline}`.", ""]
    by_target: dict[str, dict[str, SourceRow]] = {}
    for r in rows:
        by_target.setdefault(r.target, {})[r.source] = r
    present = [g for g in SOURCE_GROUPS if any(g in d for d in by_target.values())]
    body = []
    for target, d in by_target.items():
        cells = []
        for g in present:
            r = d.get(g)
            cells.append("—" if r is None else f"{_fmt(r.mean_score)} ({_fmt(r.mean_delta, True)}); "
                                               f"best {r.best} {_fmt(r.best_score)}")
        body.append([f"{target} ({tables.metrics[target]})", *cells])
    lines += _md_table(["target", *present], body)
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(SOURCES_HEADER)
    for r in rows:
        w.writerow([r.target, r.source, r.configs, _num(r.mean_score), _num(r.mean_delta), r.best,
                    _num(r.best_score), _num(r.best_delta)])
    return lines, text.getvalue()


def write_sections(scores: list[Score], out_dir: Path, *, baseline: str = "[]") -> list[str]:
    """Write research.md and the CSVs of the sections this sweep's scores call for; the section titles."""
    tables = aggregate(scores, baseline=baseline)
    sections: list[tuple[str, list[str], str]] = []
    src = sources_section(tables)
    if src is not None:
        sections.append(("sources.csv", *src))
    out_dir = Path(out_dir)
    if not sections:
        return []
    lines = ["# Research sections", ""]
    for name, md, text in sections:
        (out_dir / name).write_text(text, encoding="utf-8")
        lines += [*md, ""]
    (out_dir / "research.md").write_text("\n".join(lines), encoding="utf-8")
    return [md[0].removeprefix("## ") for _, md, _ in sections]
