"""The local runner (embedded default): plan, run every stage in order, export the report.

It calls the same `run_stage` the cluster pods call, one stage after another, in
dependency order. Interrupt it and run it again: committed stages are skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape

from xit import ui
from xit.plan import Plan, build_plan
from xit.spec import Spec
from xit.stage import run_stage
from xit.stages.report import export_report
from xit.store import Store


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
    handoff: dict[str, Any] = {}  # the report stage's tables, for export_report (aggregated once)
    ui.console.print(f"sweep [bold]{plan.name}[/] ({plan.sweep_id}): {len(plan.stages)} stages, store {store.url}")
    with ui.progress(show_progress) as bars:
        overall = bars(f"sweep {plan.name}", len(plan.stages), keep=True)
        for stage in plan.stages:
            t0 = time.time()
            status = run_stage(plan, stage.key, store, bars, handoff=handoff)
            if stage.kind == "intermediate" and not stage.params.get("tasks"):
                check_depth(plan, store, stage.key)
            summary.statuses[stage.key] = status
            mark = "[green]done[/]" if status == "done" else "[dim]skipped[/]"
            line = f"  {mark} {escape(stage.label)} [dim]{stage.key} {time.time() - t0:.1f}s[/]"
            ui.console.print(line, soft_wrap=True)
            overall(1)
    summary.out = export_report(plan, store, out, handoff=handoff)
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

