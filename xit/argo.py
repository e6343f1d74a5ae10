"""What the Argo WorkflowTemplate `xit-sweep` consumes: the plan step's outputs.

The plan itself never travels as a workflow parameter (parameters are capped at 256 KB and a
workflow lives in etcd): the plan step writes it to the store under ``sweeps/<name>/<id>/``
and emits only keys and small lists, one file per output parameter:

``sweep``     ``<name>/<sweep_id>``: where the plan is in the store (``xit stage run --sweep``)
``base``      key of the base-encoder stage every trained intermediate starts from
``branches``  JSON list, one item per distinct intermediate encoder (see `branches`)
``report``    key of the report stage
``stages``    number of stages in the plan

Each branch is ``{"name", "intermediate", "targets": [{"target", "evaluate", "scorer", "evaluate_also"}],
"retrieval": [key]}``. The template fans out over branches; inside a branch it runs the intermediate
stage, then fans out over ``targets`` (target → the stage that scores it, ``evaluate``, whose kind
``scorer`` is "evaluate", or "retrieval" for a LAReQA/Mewsli-X dual encoder, so it runs in the
retrieval pod template, beside the further evaluate stages of a target several tasks share,
``evaluate_also``: XQuAD and MLQA on one SQuAD model) and ``retrieval`` (retrieval stages on the
intermediate encoder itself). A
branch with nothing in a list carries ``[]``, which Argo's ``withParam`` expands to zero steps.
Every stage of the plan is in exactly one branch, except the report (``report``); the base encoder
is also ``base``, and it is the baseline branch's intermediate (run first by ``base``, then skipped
there as committed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.plan import Plan, sweep_prefix

# Output parameter names, in the order the template declares them: the chart's tests check that
# the template's outputs and `{{item.*}}` fields are exactly these.
OUTPUTS = ("sweep", "base", "branches", "report", "stages")
BRANCH_FIELDS = ("name", "intermediate", "targets", "retrieval")
TARGET_FIELDS = ("target", "evaluate", "scorer", "evaluate_also")


def branches(plan: Plan) -> list[dict[str, Any]]:
    """One branch per intermediate encoder, in plan order, with the stages that hang off it."""
    out: dict[str, dict[str, Any]] = {}
    for s in plan.by_kind("intermediate"):
        name = s.label.removeprefix("intermediate ")
        out[s.key] = {"name": name, "intermediate": s.key, "targets": [], "retrieval": []}
    targets = {s.key for s in plan.by_kind("target")}
    # What scores a target model: an evaluate stage, or a retrieval stage on a fine-tuned dual encoder; a shared
    # target (XQuAD and MLQA on one SQuAD model) has more evaluate stages, run after it beside the first.
    scorers: dict[str, list[Any]] = {}
    for s in plan.by_kind("evaluate") + plan.by_kind("retrieval"):
        if s.inputs[0] in targets:
            scorers.setdefault(s.inputs[0], []).append(s)
    for s in plan.by_kind("target"):
        first, *more = scorers[s.key]
        if any(m.kind != "evaluate" for m in more):  # pragma: no cover - only evaluate stages share a target
            raise AssertionError(f"target {s.key}: more than one scorer, not all evaluate stages")
        out[s.inputs[0]]["targets"].append({"target": s.key, "evaluate": first.key, "scorer": first.kind,
                                            "evaluate_also": [m.key for m in more]})
    for s in plan.by_kind("retrieval"):
        if s.inputs[0] not in targets:
            out[s.inputs[0]]["retrieval"].append(s.key)
    return list(out.values())


def outputs(plan: Plan) -> dict[str, str]:
    """The plan step's output parameters, as the strings Argo will read from files."""
    reports = plan.by_kind("report")
    return {
        "sweep": plan.ref,
        "base": plan.by_kind("intermediate")[0].key,
        "branches": json.dumps(branches(plan), separators=(",", ":")),
        "report": reports[0].key,
        "stages": str(len(plan.stages)),
    }


def write_outputs(plan: Plan, directory: Path) -> dict[str, str]:
    """Write each output parameter to ``directory/<name>`` (what the template's ``valueFrom.path`` reads)."""
    values = outputs(plan)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, value in values.items():
            tmp = directory / f".{name}.part"
            tmp.write_text(value)
            tmp.replace(directory / name)
    except OSError as e:
        raise XitError(f"{directory}: cannot write the plan outputs ({e.strerror or e})") from None
    return values


def load_sweep_plan(store: Any, ref: str) -> Plan:
    """The plan a plan step saved in ``store`` for sweep ``<name>/<sweep_id>``."""
    parts = ref.split("/")
    if len(parts) != 2 or not all(parts):
        raise XitError(f"--sweep {ref!r}: expected <name>/<sweep_id>, as the plan step prints it")
    key = f"{sweep_prefix(ref)}/plan.json"
    if not store.exists(key):
        raise XitError(f"--sweep {ref!r}: no plan at {key} in store {store.url} (run the plan step first)")
    return Plan.parse(store.read_text(key), f"{store.url}/{key}")


def publish_report(plan: Plan, store: Any) -> str:
    """Copy the committed report files to ``sweeps/<name>/<id>/report/`` in the store (next to the plan)."""
    from xit.runner import report_files
    from xit.stage import read_output

    report = plan.by_kind("report")[0]
    dest = f"{plan.prefix}/report"
    for name in report_files(store, report.key):
        store.write_bytes(f"{dest}/{name}", read_output(store, report.key, name))
    return dest
