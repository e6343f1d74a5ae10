"""The sweeps in pipelines/: valid Argo Workflows, exactly what `xit submit --dry-run` builds, and specs that plan.

Every file is checked three ways: as Argo reads it (Hera's models, strictly: a field Argo does not know
fails; and Argo v4.1's Workflow CRD schema where ../shared/schemas has it), as xit reads the spec
inside it (load_spec + build_plan: the stages the header promises), and against `build_workflow`
for that spec, so a pipeline file and `xit submit` can never drift apart.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import strict_schemas as ss
import yaml

from xit.cluster import build_workflow
from xit.errors import XitError
from xit.plan import Plan, build_plan
from xit.spec import load_spec
from xit.tasks.registry import TARGET_GROUPS

REPO = Path(__file__).resolve().parents[1]
PIPELINES = sorted((REPO / "pipelines").glob("*.yaml"))
PAPER_TASKS = ["anli-plus", "mnli", "qqp", "sst2", "squad", "squad2", "commonsenseqa", "cosmosqa", "hellaswag"]


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _spec_text(doc: dict[str, Any]) -> str:
    params = doc["spec"]["arguments"]["parameters"]
    return next(p["value"] for p in params if p["name"] == "spec")


def _plan(doc: dict[str, Any], tmp_path: Path) -> tuple[Path, Plan]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(_spec_text(doc))
    return spec, build_plan(load_spec(spec))


def _by_name(tmp_path: Path) -> dict[str, Plan]:
    plans = {}
    for path in PIPELINES:
        for i, doc in enumerate(_docs(path)):
            d = tmp_path / f"{path.stem}-{i}"
            d.mkdir()
            plan = _plan(doc, d)[1]
            plans[plan.name] = plan
    return plans


def test_the_pipelines_are_there() -> None:
    assert {p.name for p in PIPELINES} >= {"smoke.yaml", "paper-grid.yaml", "sampler-temperature.yaml"}
    assert (REPO / "pipelines" / "README.md").is_file()


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_pipeline_is_what_xit_submit_builds(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    header = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    header_text = "\n".join(header)
    assert header and "argo submit" in header_text and f"pipelines/{path.name}" in header_text, \
        "a pipeline starts with a comment: what it runs, its stages and time, the argo submit command"
    promised = re.search(r"Stages: (\d+)", header_text)
    assert promised and re.search(r"Time: ", header_text)
    docs = _docs(path)
    assert docs
    for doc in docs:
        assert doc["apiVersion"] == "argoproj.io/v1alpha1" and doc["kind"] == "Workflow"
        assert doc["spec"]["workflowTemplateRef"] == {"name": "xit-sweep"}
        assert [p["name"] for p in doc["spec"]["arguments"]["parameters"]] == ["spec"]  # the chart's store
        spec, plan = _plan(doc, tmp_path)
        assert len(plan.stages) == int(promised.group(1)), f"{path.name}: the header's stage count is stale"
        # Byte for byte the Workflow `xit submit` would create for this spec.
        assert doc == build_workflow(spec)
        assert doc["metadata"]["labels"]["xit.dev/sweep"] == plan.name
    # The spec travels as a YAML block scalar, readable in the file.
    assert text.count("value: |") == len(docs)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_pipeline_is_a_valid_argo_workflow(path: Path) -> None:
    """Strictly, as the chart's objects are checked: Hera's models and (with ../shared) Argo v4.1's CRD."""
    docs = list(_docs(path))
    # The strict checks do reject a misspelt field.
    bad = {**docs[-1], "spec": {**docs[-1]["spec"], "workflowTemplateRefs": {"name": "xit-sweep"}}}
    assert [ss.hera_errors(doc) for doc in docs] == [[] for _ in docs]
    assert any("workflowTemplateRefs" in e for e in ss.hera_errors(bad))
    ss.require_crds()
    assert [ss.crd_errors(doc) for doc in docs] == [[] for _ in docs]
    assert any("workflowTemplateRefs" in e for e in ss.crd_errors(bad))


def test_smoke_is_small_and_runs_every_stage_kind(tmp_path: Path) -> None:
    plan = _by_name(tmp_path)["smoke"]
    assert plan.spec["model"] == "xit-tiny"
    assert set(Counter(s.kind for s in plan.stages)) == {"intermediate", "target", "evaluate", "retrieval", "report"}
    assert any(len(cfg) > 1 for cfg in plan.spec["intermediate"]), "the multi-task path runs too"
    assert len(plan.stages) <= 30
    assert all(t.startswith("demo-") for t in plan.spec["targets"])


def test_paper_grid_is_the_xstilts_grid(tmp_path: Path) -> None:
    plan = _by_name(tmp_path)["xstilts-paper-grid"]
    assert plan.spec["model"] == "xlm-roberta-large"
    configs = plan.spec["intermediate"]
    assert configs[0] == [] and len(configs) == 12
    assert sorted(c[0] for c in configs if len(c) == 1) == sorted(PAPER_TASKS)
    assert [c for c in configs if len(c) > 1] == [PAPER_TASKS, [*PAPER_TASKS, "mlm"]]  # the mixture, + MLM
    assert plan.spec["targets"] == list(TARGET_GROUPS["xtreme"]) and len(plan.spec["targets"]) == 9
    kinds = Counter(s.kind for s in plan.stages)
    assert kinds["intermediate"] == 12  # the base encoder, nine single tasks, the mixture, the mixture + MLM
    evaluated = Counter(s.params["task"] for s in plan.stages if s.kind in ("evaluate", "retrieval"))
    assert evaluated == {t: 12 for t in TARGET_GROUPS["xtreme"]}  # every target from every configuration
    # XQuAD and MLQA share one SQuAD-trained target stage per configuration: 6 target stages for 7 trained tasks.
    assert kinds == {"intermediate": 12, "target": 72, "evaluate": 84, "retrieval": 24, "report": 1}
    assert {s.recipe for s in plan.stages if s.kind != "report" and s.inputs} == {"x-stilts"}
    assert "ccg" in (REPO / "pipelines" / "paper-grid.yaml").read_text().lower()  # says why CCG is left out


def test_sampler_pipelines_differ_only_in_the_sampler(tmp_path: Path) -> None:
    plans = _by_name(tmp_path)
    sampler = {n: p for n, p in plans.items() if n.startswith("sampler-")}
    assert {p.spec["sampler"]["kind"] for p in sampler.values()} == {"proportional", "uniform", "temperature"}

    def rest(p: Plan) -> dict[str, Any]:
        return {k: v for k, v in p.spec.items() if k not in ("name", "sampler")}

    assert len({yaml.safe_dump(rest(p)) for p in sampler.values()}) == 1
    mixture = [c for c in next(iter(sampler.values())).spec["intermediate"] if c]
    assert mixture == [PAPER_TASKS]
    grid = {s.key for s in plans["xstilts-paper-grid"].stages}
    for name, plan in sampler.items():
        keys = {s.key for s in plan.stages if s.kind != "report"}
        if plan.spec["sampler"]["kind"] == "proportional":
            assert keys <= grid  # the paper grid's own mixture: nothing new to train
        else:
            assert len(keys - grid) == 16, name  # the new mixture and its 15 targets/evaluations/retrievals



def test_complementarity_pipeline_is_one_all_but_one_line(tmp_path: Path) -> None:
    plans = _by_name(tmp_path)
    plan = plans["complementarity"]
    text = (REPO / "pipelines" / "complementarity.yaml").read_text()
    assert "all_but_one: [mnli, squad, hellaswag]" in text
    group = ["mnli", "squad", "hellaswag"]
    assert plan.spec["complementarity"] == [group]
    assert plan.by_kind("report")[0].params["complementarity"] == [group]
    configs = plan.spec["intermediate"]
    assert configs == [[], group, ["squad", "hellaswag"], ["mnli", "hellaswag"], ["mnli", "squad"], ["mnli"],
                       ["squad"], ["hellaswag"]]
    grid = {s.key for s in plans["xstilts-paper-grid"].stages}
    assert len({s.key for s in plan.stages} & grid) == 36  # as its header says


def test_xit_reads_a_pipeline_file_as_its_spec(tmp_path: Path) -> None:
    """`xit plan pipelines/paper-grid.yaml`: the spec inside the Workflow, with its recipe and the one SQuAD model
    that XQuAD and MLQA share per configuration."""
    import subprocess
    import sys

    path = REPO / "pipelines" / "paper-grid.yaml"
    plan = build_plan(load_spec(path))
    assert plan == _plan(_docs(path)[0], tmp_path)[1]
    assert {s.recipe for s in plan.stages if s.kind in ("target", "evaluate")} == {"x-stilts"}
    qa = [s for s in plan.by_kind("target") if s.params["task"] == "squad"]
    assert len(qa) == len(plan.by_kind("intermediate"))  # one per configuration (the baseline's included)
    for t in qa:
        assert sorted(s.params["task"] for s in plan.stages if s.inputs[:1] == [t.key]) == ["mlqa", "xquad"]
    out = subprocess.run([sys.executable, "-m", "xit.cli", "plan", str(path)], capture_output=True, text=True,
                         timeout=120, env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert f"{len(plan.stages)} stages" in out.stdout and "[x-stilts: lr 1e-05" in out.stdout
    # A workflow without the spec parameter, or with a spec that is not YAML: one line naming it.
    bad = tmp_path / "wf.yaml"
    for body, msg in (({"arguments": {"parameters": [{"name": "other", "value": "x"}]}}, "without a 'spec' parameter"),
                      ({"arguments": {"parameters": [{"name": "spec", "value": "a: [b"}]}}, "not valid YAML")):
        bad.write_text(yaml.safe_dump({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "spec": body}))
        with pytest.raises(XitError, match=msg):
            load_spec(bad)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_xit_validate_and_plan_read_every_pipeline_file(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    """`xit validate` and `xit plan` take a pipeline file as it is, one result per Workflow in it (a file of
    several Workflows, like sampler-temperature.yaml, once failed with "found another document")."""
    from test_cli_errors import cli

    names = []
    for i, doc in enumerate(_docs(path)):
        (tmp_path / str(i)).mkdir()
        names.append(_plan(doc, tmp_path / str(i))[1].name)
    code, out, err = cli(monkeypatch, capsys, "validate", str(path))
    assert code == 0, err
    assert [ln.split("sweep ")[1].split(",")[0].strip("'") for ln in out.splitlines() if ln.startswith("ok:")] \
        == names
    code, out, err = cli(monkeypatch, capsys, "plan", str(path))
    assert code == 0, err
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("sweep ")] == names
    code, out, err = cli(monkeypatch, capsys, "plan", "--json", str(path))
    if len(names) == 1:
        assert code == 0 and json.loads(out)["name"] == names[0]
    else:  # `stage run` reads one plan: a file of several specs is refused in one line, nothing printed
        assert code == 2 and out == ""
        assert f"{len(names)} Workflows in one file" in err and len(err.strip().splitlines()) == 1



def _cost_phrase(path: Path, tmp_path: Path) -> tuple[str, str]:
    """(hours, what was not estimated) as the README and the file's header state them, from `xit plan --cost`'s
    estimate of each Workflow's spec."""
    from xit.cost import DEFAULT_MFU, DEFAULT_PEAK_TFLOPS, Device, estimate

    found = []
    for i, doc in enumerate(_docs(path)):
        (tmp_path / str(i)).mkdir()
        plan = _plan(doc, tmp_path / str(i))[1]
        est = estimate(plan, Device(DEFAULT_PEAK_TFLOPS, DEFAULT_MFU, "A100"))
        found.append((f"{est.total():.1f}", len(est.missing), len(plan.stages)))
    assert len(set(found)) == 1, f"{path.name}: its Workflows differ in cost: {found}"
    hours, missing, stages = found[0]
    each = "" if len(found) == 1 else " each"
    return (hours if len(found) == 1 else f"{len(found)} × {hours}",
            f"{missing} of {stages} stages{each} not estimated" if missing else "")


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.name)
def test_stated_gpu_hours_are_what_xit_plan_cost_estimates(path: Path, tmp_path: Path) -> None:
    hours, missing = _cost_phrase(path, tmp_path)
    header = " ".join(ln.lstrip("# ") for ln in path.read_text().splitlines() if ln.startswith("#"))
    stated = re.search(r"Time: (.*?) GPU-hours by `xit plan --cost`([^.]*)\.", header)
    assert stated, f"{path.name}: the header's Time line states `xit plan --cost`'s GPU-hours"
    assert stated.group(1) == hours and missing in stated.group(2)
    assert ("not estimated" in stated.group(2)) == bool(missing)
    row = next(ln for ln in (REPO / "pipelines" / "README.md").read_text().splitlines()
               if ln.startswith(f"| `{path.name}` |"))
    cell = row.rstrip(" |").split(" | ")[-1]
    assert cell.startswith(hours) and (missing in cell if missing else "not estimated" not in cell), row
