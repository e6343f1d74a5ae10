"""What the Argo WorkflowTemplate `xit-sweep` consumes: the plan step's outputs, and the small lookups
its branches and target steps make.

The plan itself never travels as a workflow parameter (parameters are capped at 256 KB and a
workflow lives in etcd): the plan step writes it to the store under ``sweeps/<name>/<id>/``
and emits only keys and small lists, one file per output parameter:

``sweep``     ``<name>/<sweep_id>``: where the plan is in the store (``xit stage run --sweep``)
``base``      key of the base-encoder stage every trained intermediate starts from
``branches``  JSON list of branch indices ``[0, 1, …]``, one per distinct intermediate encoder (see
              `branches` for what hangs off each; `branch_outputs` is what a branch looks up)
``report``    key of the report stage
``stages``    number of stages in the plan
``totals``    JSON object: number of stages of each kind (what ``xit status`` shows as totals)

Fan-out items are short on purpose, and a target and its scoring are one pod. Argo names every node
expanded from an item after the item (``branch(3:3)``; workflow/controller/operator.go, generateNodeName),
every descendant's name starts with its parent's, and every node costs its workflow about a kilobyte of
status (workflow_types.go, NodeStatus). So a branch is its index, and looks the rest up in the store
(``xit stage branch``: `branch_outputs`, its intermediate key, its target keys and its retrieval stages
on the intermediate encoder), and a target pod runs the target stage and then the stages that score it
(``xit stage run --scorers``: `scorers`, its evaluate stage, or for a LAReQA/Mewsli-X dual encoder its
retrieval stage, and the further evaluate stages of a target several tasks share, XQuAD and MLQA on one
SQuAD model), writing their keys as ``scored``. One Retry node and one Pod per target instead of a DAG,
two Retry and two Pod nodes (and more for a shared target) keep the paper grid with 3 seeds under Argo's
1 MiB (tests/test_argo_rules.py). A branch with nothing in a list carries ``[]``, which Argo's
``withParam`` expands to a skipped task. Every stage of the plan is in exactly one branch, except the
report (``report``); the base encoder is also ``base``, and it is the baseline branch's intermediate
(run first by ``base``, then skipped there as committed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xit.errors import XitError
from xit.files import atomic_write
from xit.plan import Plan, sweep_prefix
from xit.stages import GPU_KINDS, KIND_NAMES

# Output parameter names, in the order the template declares them: the chart's tests check that
# the template's outputs and `{{item.*}}` fields are exactly these.
OUTPUTS = ("sweep", "base", "branches", "report", "stages", "totals")
BRANCH_OUTPUTS = ("intermediate", "targets", "retrieval")
SCORER_OUTPUTS = ("scored",)
# Stage kinds with a pod template of their own (the chart's stage templates): all but the evaluate stages,
# which run in their target's pod (`scorers`); and those of them whose pods ask for a GPU.
SCORED_IN_TARGET_POD = ("evaluate",)
POD_KINDS = tuple(k for k in KIND_NAMES if k not in SCORED_IN_TARGET_POD)
GPU_POD_KINDS = tuple(k for k in GPU_KINDS if k in POD_KINDS)


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


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def outputs(plan: Plan) -> dict[str, str]:
    """The plan step's output parameters, as the strings Argo will read from files."""
    reports = plan.by_kind("report")
    return {
        "sweep": plan.ref,
        "base": plan.by_kind("intermediate")[0].key,
        "branches": _json(list(range(len(branches(plan))))),
        "report": reports[0].key,
        "stages": str(len(plan.stages)),
        "totals": _json({k: len(plan.by_kind(k)) for k in KIND_NAMES}),
    }


def branch_outputs(plan: Plan, index: int) -> dict[str, str]:
    """What branch ``index`` runs: the key of its intermediate stage (``intermediate``), and what it fans out
    over, its target stage keys (``targets``; each target pod also runs the stages that score it, `scorers`)
    and its retrieval stages on the intermediate encoder itself (``retrieval``)."""
    all_branches = branches(plan)
    if not 0 <= index < len(all_branches):
        raise XitError(f"--index {index}: the plan has branches 0 to {len(all_branches) - 1}")
    b = all_branches[index]
    return {"intermediate": b["intermediate"], "targets": _json([t["target"] for t in b["targets"]]),
            "retrieval": _json(b["retrieval"])}


def scorers(plan: Plan, key: str) -> list[str]:
    """For a target stage: the keys of the stages that score it, in the order its pod runs them: its evaluate
    stage, or (a dual encoder) its retrieval stage, then the further evaluate stages of a target several tasks
    share (XQuAD and MLQA on one SQuAD model)."""
    stage = plan.stage(key)
    if stage.kind != "target":
        raise XitError(f"--scorers: stage {key} is a {stage.kind} stage; "
                       "only target stages have stages that score them")
    (t,) = [t for b in branches(plan) for t in b["targets"] if t["target"] == key]
    return [t["evaluate"], *t["evaluate_also"]]


def scorer_outputs(keys: list[str]) -> dict[str, str]:
    """A target pod's output parameter: the keys of the stages it scored its model with (``scored``), which
    ``xit status`` counts as done when the pod succeeds."""
    return {"scored": _json(keys)}


def write_outputs(plan: Plan, directory: Path, values: dict[str, str] | None = None) -> dict[str, str]:
    """Write each output parameter to ``directory/<name>`` (what the template's ``valueFrom.path`` reads):
    the plan step's `outputs` unless ``values`` are given."""
    values = outputs(plan) if values is None else values
    try:
        for name, value in values.items():
            atomic_write(directory / name, lambda f, v=value: f.write(v.encode()))
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

