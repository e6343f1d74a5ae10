"""What the plan step emits for the xit-sweep WorkflowTemplate (xit/argo.py, `xit stage plan`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xit import argo
from xit.errors import XitError
from xit.plan import build_plan
from xit.spec import load_spec
from xit.store import LocalStore

ROOT = Path(__file__).resolve().parents[1]


def xit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xit.cli", *args], capture_output=True, text=True, cwd=cwd)


def spec_file(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "spec.yaml"
    f.write_text(text)
    return f


def test_branches_cover_every_stage_once_with_the_right_shape() -> None:
    plan = build_plan(load_spec(ROOT / "tests" / "specs" / "planner.yaml"))
    out = argo.outputs(plan)
    assert tuple(out) == argo.OUTPUTS
    items = json.loads(out["branches"])
    # Short items only: the branch's index (Argo copies items into node names); it looks the rest up.
    assert items == list(range(len(plan.by_kind("intermediate"))))
    listed = [out["report"]]
    for i in items:
        looked_up = argo.branch_outputs(plan, i)
        assert tuple(looked_up) == argo.BRANCH_OUTPUTS
        intermediate = looked_up.pop("intermediate")
        assert intermediate == plan.by_kind("intermediate")[i].key and (i > 0 or intermediate == out["base"])
        listed.append(intermediate)
        looked_up = {k: json.loads(v) for k, v in looked_up.items()}
        for t in looked_up["targets"]:
            assert plan.stage(t).kind == "target" and plan.stage(t).inputs == [intermediate]
            # The target pod then runs what scores it: here one evaluate stage each (no dual encoder, no shared
            # target in the demo).
            scored = argo.scorers(plan, t)
            assert [(plan.stage(k).kind, plan.stage(k).inputs) for k in scored] == [("evaluate", [t])]
            listed += [t, *scored]
        for r in looked_up["retrieval"]:
            assert plan.stage(r).kind == "retrieval" and plan.stage(r).inputs == [intermediate]
        listed += looked_up["retrieval"]
    assert sorted(listed) == sorted(s.key for s in plan.stages)  # each exactly once
    assert out["stages"] == str(len(plan.stages)) == "37"
    assert json.loads(out["totals"]) == {"intermediate": 4, "target": 12, "evaluate": 12, "retrieval": 8, "report": 1}
    assert out["sweep"] == f"demo/{plan.sweep_id}"
    # 4 configurations, 3 trained targets and 2 retrieval tasks each.
    assert [(len(b["targets"]), len(b["retrieval"])) for b in argo.branches(plan)] == [(3, 2)] * 4


def test_lookups_reject_what_is_not_in_the_plan() -> None:
    plan = build_plan(load_spec(ROOT / "tests" / "specs" / "planner.yaml"))
    with pytest.raises(XitError, match="--index 4: the plan has branches 0 to 3"):
        argo.branch_outputs(plan, 4)
    with pytest.raises(XitError, match="is a evaluate stage; only target stages"):
        argo.scorers(plan, plan.by_kind("evaluate")[0].key)


def test_a_dual_encoder_target_is_scored_by_its_retrieval_stage(tmp_path: Path) -> None:
    from xit.cluster import STAGE_KINDS, _plan_totals

    spec = spec_file(tmp_path, "name: s\nmodel: xit-tiny\nintermediate: [[], [demo-nli]]\n"
                               "targets: [demo-para, demo-tatoeba, lareqa]\n")
    plan = build_plan(load_spec(spec))
    branches = argo.branches(plan)
    for b in branches:
        by_task = {plan.stage(t["target"]).params["task"]: t for t in b["targets"]}
        assert by_task["demo-para"]["scorer"] == "evaluate"
        lareqa = by_task["lareqa"]  # the dual encoder, then LAReQA retrieval on it
        assert lareqa["scorer"] == plan.stage(lareqa["evaluate"]).kind == "retrieval"
        assert plan.stage(lareqa["evaluate"]).inputs == [lareqa["target"]]
        assert [plan.stage(r).params["task"] for r in b["retrieval"]] == ["demo-tatoeba"]
    listed = [b["intermediate"] for b in branches] + [plan.by_kind("report")[0].key]
    listed += [k for b in branches for t in b["targets"] for k in (t["target"], t["evaluate"])]
    listed += [r for b in branches for r in b["retrieval"]]
    assert sorted(listed) == sorted(s.key for s in plan.stages)  # each exactly once
    # LAReQA's dual encoder is a target like the others; its pod then runs the LAReQA retrieval stage on it.
    looked_up = json.loads(argo.branch_outputs(plan, 1)["targets"])
    assert sorted(plan.stage(t).params["task"] for t in looked_up) == ["demo-para", "lareqa"]
    (dual,) = [t for t in looked_up if plan.stage(t).params["task"] == "lareqa"]
    (scorer,) = argo.scorers(plan, dual)
    assert plan.stage(scorer).kind == "retrieval" and plan.stage(scorer).inputs == [dual]
    # `xit status` counts LAReQA's scoring stage as retrieval, as the plan does (from `totals`; and from
    # the full branch items of plan steps before it).
    totals = _plan_totals(None, len(plan.stages), argo.outputs(plan)["totals"])
    assert totals == _plan_totals(json.dumps(branches), len(plan.stages))
    assert totals == {k: len(plan.by_kind(k)) for k in STAGE_KINDS}
    assert totals["retrieval"] == 4 and totals["evaluate"] == 2


def test_seeds_share_the_baseline_branch(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, "name: s\nmodel: xit-tiny\nintermediate: [[], [demo-nli]]\n"
                               "targets: [demo-para, demo-tatoeba]\nseeds: [1, 2]\n")
    branches = argo.branches(build_plan(load_spec(spec)))
    # The baseline encoder is one stage for both seeds; demo-nli is trained once per seed.
    assert [b["name"] for b in branches] == ["[] (base encoder)", "[demo-nli] seed 1", "[demo-nli] seed 2"]
    assert len(branches[0]["targets"]) == 2  # demo-para for seed 1 and 2
    assert len(branches[0]["retrieval"]) == 1  # retrieval on the base encoder does not depend on the seed
    assert [len(b["targets"]) for b in branches[1:]] == [1, 1]


def test_a_thousand_stage_sweep_keeps_parameters_small(tmp_path: Path) -> None:
    """The plan goes through the store; what travels as parameters stays far below Argo's 256 KB cap."""
    configs = ["[]", "[mnli]", "[anli-plus]", "[qqp]", "[sst2]", "[squad]", "[squad2]", "[commonsenseqa]",
               "[cosmosqa]", "[hellaswag]", "[mnli, squad, hellaswag]"]
    spec = spec_file(tmp_path, f"name: big\nmodel: xlm-roberta-large\nintermediate: [{', '.join(configs)}]\n"
                               "targets: [xtreme]\nseeds: [1, 2, 3, 4, 5, 6, 7]\n")
    plan = build_plan(load_spec(spec))
    out = argo.outputs(plan)
    assert len(plan.stages) >= 1000
    assert len(out["branches"].encode()) < 256 * 1024 / 2
    assert len(plan.to_json().encode()) > len(out["branches"].encode())  # the plan itself would be bigger
    assert max(len(v) for k, v in out.items() if k != "branches") < 100


def test_stage_plan_saves_the_plan_and_stage_run_reads_it_by_sweep(tmp_path: Path) -> None:
    store = tmp_path / "store"
    outdir = tmp_path / "outputs"
    spec = spec_file(tmp_path, "name: one\nmodel: xit-tiny\nintermediate: [[]]\ntargets: [demo-tatoeba]\n")
    r = xit("stage", "plan", str(spec), "--store", str(store), "--outputs", str(outdir))
    assert r.returncode == 0, r.stderr
    values = {n: (outdir / n).read_text() for n in argo.OUTPUTS}
    plan_file = store / "sweeps" / values["sweep"] / "plan.json"
    assert json.loads(plan_file.read_text())["sweep_id"] == values["sweep"].split("/")[1]
    assert (store / "sweeps" / values["sweep"] / "spec.yaml").is_file()
    r = xit("stage", "branch", "--sweep", values["sweep"], "--index", "0", "--store", str(store), "--outputs",
            str(outdir / "b0"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"branch 0 of {values['sweep']}: 0 target(s), 1 retrieval stage(s)")
    for key in [values["base"], *json.loads((outdir / "b0" / "retrieval").read_text())]:
        r = xit("stage", "run", "--sweep", values["sweep"], "--key", key, "--store", str(store), "--no-progress")
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("done:")
    r = xit("report", "--sweep", values["sweep"], "--store", str(store))
    assert r.returncode == 0, r.stdout + r.stderr
    published = LocalStore(store).read_text(f"sweeps/{values['sweep']}/report/results.md")
    assert "demo-tatoeba" in published
    # Again: everything is committed, so the stage is skipped.
    r = xit("stage", "run", "--sweep", values["sweep"], "--key", values["base"], "--store", str(store), "--no-progress")
    assert r.returncode == 0 and r.stdout.startswith("skipped:")


def test_stage_run_bad_plan_references_exit_2_with_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    cases = {
        ("--key", "k"): "give exactly one of --plan FILE or --sweep NAME/ID",
        ("--key", "k", "--sweep", "a/b", "--plan", "p.json"): "give exactly one of --plan FILE or --sweep NAME/ID",
        ("--key", "k", "--sweep", "just-a-name"): "expected <name>/<sweep_id>",
        ("--key", "k", "--sweep", "demo/123"): "no plan at sweeps/demo/123/plan.json",
    }
    for args, message in cases.items():
        r = xit("stage", "run", *args, "--store", str(store))
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], (args, lines)
    assert not store.exists() or not any(store.rglob("MANIFEST.json"))


def test_version_names_the_git_revision(monkeypatch) -> None:  # noqa: ANN001
    from xit import git_revision

    monkeypatch.setenv("XIT_GIT_REVISION", "abc123def456")
    assert git_revision() == "abc123def456"
    r = subprocess.run([sys.executable, "-m", "xit.cli", "--version"], capture_output=True, text=True,
                       env={**__import__("os").environ, "XIT_GIT_REVISION": "0123456789ab"})
    assert r.stdout.strip() == "xit 0.1.0 (git 0123456789ab)"
    monkeypatch.delenv("XIT_GIT_REVISION")
    rev = git_revision()
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        assert rev.removesuffix("-dirty") == head


def test_a_shared_target_names_its_further_evaluate_stages(tmp_path: Path) -> None:
    """XQuAD and MLQA share one SQuAD-trained target: its pod scores it with both evaluate stages, and every
    stage is still reached exactly once."""
    spec = spec_file(tmp_path, "name: s\nmodel: xit-tiny\nintermediate: [[]]\ntargets: [xquad, mlqa]\n")
    plan = build_plan(load_spec(spec))
    (target,) = plan.by_kind("target")
    scored = argo.scorers(plan, target.key)
    assert sorted(scored) == sorted(s.key for s in plan.by_kind("evaluate")) and len(scored) == 2
    assert tuple(argo.scorer_outputs(scored)) == argo.SCORER_OUTPUTS
    assert json.loads(argo.scorer_outputs(scored)["scored"]) == scored
    looked_up = argo.branch_outputs(plan, 0)
    assert looked_up == {"intermediate": target.inputs[0], "targets": json.dumps([target.key]), "retrieval": "[]"}


def test_stage_lookups_on_the_cli_refuse_bad_input_with_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    outdir = tmp_path / "outputs"
    spec = spec_file(tmp_path, "name: one\nmodel: xit-tiny\nintermediate: [[]]\ntargets: [demo-tatoeba]\n")
    r = xit("stage", "plan", str(spec), "--store", str(store), "--outputs", str(outdir))
    assert r.returncode == 0, r.stderr
    sweep, base = (outdir / "sweep").read_text(), (outdir / "base").read_text()
    cases = {
        ("stage", "branch", "--sweep", sweep, "--index", "3"): "--index 3: the plan has branches 0 to 0",
        ("stage", "run", "--sweep", sweep, "--key", base, "--no-progress", "--scorers"):
            "only target stages have stages that score them",
        ("stage", "run", "--sweep", sweep, "--key", base, "--no-progress"): "--outputs: only with --scorers",
    }
    for args, message in cases.items():
        r = xit(*args, "--store", str(store), "--outputs", str(tmp_path / "o"))
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], (args, lines)
        assert not (tmp_path / "o").exists()
    assert not list(store.rglob("MANIFEST.json")), "the intermediate stage did not run"
