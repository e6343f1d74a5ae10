"""The ``report`` kind, and the whole report flow: collect, aggregate once, write, export.

1. `collect_scores`: every entry's per-language scores (and per-example statistics) from its committed stage;
2. `report_tables`: `xit.report.aggregate` over them — per base model, with the intervals, paired tests,
   benchmark, complementarity and typology rows — computed once per report (its bootstraps are the slow part);
3. `run` (the stage body): `xit.report.write_report` writes the tables and plots, `xit.research.write_sections`
   the research sections, from those same tables;
4. `export_report`: the committed report's files copied into a local folder and/or published to
   ``sweeps/<name>/<id>/report/`` in the store, and its table printed (the local runner, ``xit report``).

`xit.report` owns what the tables are and how they look; this module owns where their numbers come from and
where the files go.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xit import ui
from xit.files import atomic_copy
from xit.plan import Plan, Stage
from xit.report import ReportTables, Score, aggregate, legend, render_rich, write_report
from xit.stage import Context, output_dir, output_prefix, read_manifest, read_metrics, read_output
from xit.stages import KINDS
from xit.stages.common import EXAMPLES
from xit.store import Store

# Every report has these (the first three are what a commit must hold: `xit.stages.KINDS`).
REPORT_FILES = (*KINDS["report"].required_files, "deltas.png")
# Written only when the sweep asks for them (complementarity groups) or has what they need (typology).
OPTIONAL_REPORT_FILES = ("complementarity.csv", "complementarity.png", "typology.csv", "typology.png")


def read_examples(store: Store, key: str) -> dict[str, Any]:
    """A committed stage's per-example statistics by language ({} where it wrote none)."""
    from xit.stats import ExampleStats

    path = f"{output_prefix(store, key)}/{EXAMPLES}"
    if not store.exists(path):
        return {}
    return {lang: ExampleStats.from_json(d) for lang, d in json.loads(store.read_text(path))["languages"].items()}


def _collect(store: Store, entries: list[dict[str, Any]]) -> tuple[list[Score], dict[str, dict[str, Any]]]:
    """The entries' scores, and each entry stage's metrics (read once, checked against its manifest)."""
    scores, metrics, examples = [], {}, {}
    for e in entries:
        if e["key"] not in metrics:  # several entries share a stage (XQuAD and MLQA's SQuAD model): read it once
            metrics[e["key"]], examples[e["key"]] = read_metrics(store, e["key"]), read_examples(store, e["key"])
        m, ex = metrics[e["key"]], examples[e["key"]]
        for lang, vals in m["languages"].items():
            scores.append(Score(e["intermediate"], e["target"], lang, e["metric"], float(vals[e["metric"]]),
                                e["seed"], ex.get(lang)))
    return scores, metrics


def collect_scores(store: Store, entries: list[dict[str, Any]]) -> list[Score]:
    """Per-language scores of a report's entries (with their per-example statistics where the stage wrote
    them), read from their committed metrics."""
    return _collect(store, entries)[0]


def _aggregate(scores: list[Score], params: dict[str, Any]) -> ReportTables:
    return aggregate(scores, baseline=params["baseline"], title=f"xit sweep {params['name']}",
                     complementarity=params.get("complementarity", []), model=params.get("model", ""))


def report_tables(store: Store, report: Stage) -> ReportTables:
    """The aggregated tables of a committed report stage, computed again from its entries' committed stages."""
    return _aggregate(collect_scores(store, report.params["entries"]), report.params)


def run(stage: Stage, ctx: Context, out: Path) -> None:
    from xit.research import write_sections

    p = stage.params
    scores, metrics = _collect(ctx.store, p["entries"])
    tables = _aggregate(scores, p)
    write_report(tables, out)
    write_sections(tables, out, entries=p["entries"], metrics=metrics)
    if ctx.handoff is not None:  # the runner or `xit report` exports it next: one report bootstraps once
        ctx.handoff[stage.key] = tables


def report_files(store: Store, key: str) -> list[str]:
    """The report files the committed report stage `key` holds: the main ones, then the optional and research
    sections its manifest lists."""
    from xit.research import RESEARCH_FILES

    listed = read_manifest(store, key)["files"]
    return [*REPORT_FILES, *(n for n in (*OPTIONAL_REPORT_FILES, *RESEARCH_FILES) if n in listed)]


def export_report(plan: Plan, store: Store, out: Path | None = None, *, publish: bool = False,
                  handoff: dict[str, Any] | None = None) -> Path | None:
    """The one way a committed report leaves the store: published to ``sweeps/<name>/<id>/report/`` in the store
    (``publish``, next to the plan), copied into the local folder `out` (unless None), and its table printed.
    `handoff`: what `run_stage` handed back in this process (`Context.handoff`), whose report tables, when the
    report stage ran there, are printed instead of aggregating again."""
    report = plan.by_kind("report")[0]
    names = report_files(store, report.key)
    if publish:
        dest = f"{plan.prefix}/report"
        for name in names:
            store.write_bytes(f"{dest}/{name}", read_output(store, report.key, name))
        ui.console.print(f"report: {store.url}/{dest}/")
    if out is not None:
        src = output_dir(store, report.key)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            atomic_copy(src / name, out / name, mode=0o644)
    tables = (handoff or {}).get(report.key)
    if tables is None:
        tables = report_tables(store, report)
    ui.out.print(render_rich(tables))
    ui.out.print(legend(tables), style="dim", markup=False)
    if out is not None:
        ui.console.print(f"report: {out}/ ({', '.join(names)})")
    return out
