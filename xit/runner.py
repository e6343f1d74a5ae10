"""The local runner (embedded default): plan, run every stage in order, report.

It calls the same `run_stage` the cluster pods call, one stage after another, in
dependency order. Interrupt it and run it again: committed stages are skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.markup import escape

from xit import ui
from xit.files import atomic_copy
from xit.plan import Plan, build_plan
from xit.spec import Spec
from xit.stage import collect_scores, output_dir, run_stage
from xit.store import Store

REPORT_FILES = ("results.csv", "per_language.csv", "results.md", "deltas.png")
# Written only when the sweep asks for them (complementarity groups) or has what they need (typology).
OPTIONAL_REPORT_FILES = ("complementarity.csv", "complementarity.png", "typology.csv", "typology.png")


def report_files(store: Store, key: str) -> list[str]:
    """The report files the committed report stage `key` holds: the main ones, then the optional and research
    sections its manifest lists."""
    from xit.research import RESEARCH_FILES
    from xit.stage import read_manifest

    listed = read_manifest(store, key)["files"]
    return [*REPORT_FILES, *(n for n in (*OPTIONAL_REPORT_FILES, *RESEARCH_FILES) if n in listed)]


@dataclass
class RunSummary:
    plan: Plan
    statuses: dict[str, str] = field(default_factory=dict)  # key -> "done" | "skipped"
    out: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)


def save_sweep(store: Store, spec: Spec, plan: Plan) -> str:
    prefix = plan.prefix
    store.write_text(f"{prefix}/spec.yaml", yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    store.write_text(f"{prefix}/plan.json", plan.to_json())
    return prefix


def run_sweep(spec: Spec, store: Store, out: Path, *, show_progress: bool = True) -> RunSummary:
    plan = build_plan(spec)
    save_sweep(store, spec, plan)
    summary = RunSummary(plan)
    ui.console.print(f"sweep [bold]{plan.name}[/] ({plan.sweep_id}): {len(plan.stages)} stages, store {store.url}")
    with ui.progress(show_progress) as bars:
        overall = bars(f"sweep {plan.name}", len(plan.stages), keep=True)
        for stage in plan.stages:
            t0 = time.time()
            status = run_stage(plan, stage.key, store, bars)
            if stage.kind == "intermediate" and not stage.params.get("tasks"):
                check_depth(plan, store, stage.key)
            summary.statuses[stage.key] = status
            mark = "[green]done[/]" if status == "done" else "[dim]skipped[/]"
            line = f"  {mark} {escape(stage.label)} [dim]{stage.key} {time.time() - t0:.1f}s[/]"
            ui.console.print(line, soft_wrap=True)
            overall(1)
    summary.out = export_report(plan, store, out)
    return summary


def check_depth(plan: Plan, store: Store, base_key: str) -> None:
    """Once the base encoder is there (a hub model's depth is not known before), check that every retrieval
    stage's layer exists in it, before any stage needs it."""
    import json

    from xit.errors import XitError
    from xit.model_ids import check_layer
    from xit.stage import read_output

    try:
        cfg = json.loads(read_output(store, base_key, "model/encoder/config.json"))
    except (XitError, ValueError):
        return  # the stage that reads the encoder names what is wrong with it
    depth = next((cfg[k] for k in ("num_hidden_layers", "num_layers") if isinstance(cfg.get(k), int)), None)
    for s in plan.by_kind("retrieval"):
        why = check_layer(s.params.get("retrieval", {}).get("layer"), depth, plan.stage(base_key).params["model"])
        if why is not None:
            raise XitError(f"spec field 'retrieval.layer': {why}")


def export_report(plan: Plan, store: Store, out: Path | None) -> Path | None:
    """Copy the committed report files into `out` (unless None) and print the results table."""
    from xit.report import aggregate, legend, render_rich

    report = plan.by_kind("report")[0]
    names = report_files(store, report.key)
    if out is not None:
        src = output_dir(store, report.key)
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            atomic_copy(src / name, out / name, mode=0o644)
    tables = aggregate(collect_scores(store, report.params["entries"]), baseline=report.params["baseline"],
                       title=f"xit sweep {plan.name}", complementarity=report.params.get("complementarity"))
    ui.out.print(render_rich(tables))
    ui.out.print(legend(tables), style="dim", markup=False)
    if out is not None:
        ui.console.print(f"report: {out}/ ({', '.join(names)})")
    return out
