"""Data-parallel training: a stage given N GPUs trains as N processes (torch.distributed.run), here 2 processes
on CPU with gloo. The ranks' shares of each global batch make the step one process takes on the whole batch;
rank 0 alone checkpoints, writes and commits."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import distributed_train as dt
import pytest
import torch
from fakes import one_line
from test_cli_errors import cli

from xit import ranks
from xit.plan import build_plan
from xit.spec import parse_spec
from xit.stage import MANIFEST, read_metrics, run_stage
from xit.store import LocalStore

ROOT = Path(__file__).resolve().parents[1]


def two_ranks(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.slow
def test_two_ranks_take_the_one_process_steps_and_resume_exactly(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Three tasks (an example-level, a token-level and an in-batch loss: the dual encoder's, each rank gathering
    the others' candidates), batches of 5 split 3/2 and a last batch of 1 (one rank's share empty): without
    dropout the two ranks' weights and losses are the one process's up to float rounding, and the telemetry
    counts the same examples and tokens. With dropout, a run resumed from the
    checkpoint the first left (every rank's random state restored) ends with the very same weights."""
    r = two_ranks(str(ROOT / "tests" / "distributed_train.py"), str(tiny_model_dir), str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    one = dt.run(tiny_model_dir, dropout=False)
    two = json.loads((tmp_path / "exact.json").read_text())
    two_state = torch.load(tmp_path / "exact.pt")
    assert one["record"]["steps"] == two["record"]["steps"] == 30  # 3 tasks x 2 epochs x ceil(21 / 5)
    assert [(t, e, n) for t, e, n, _ in one["steps"]] == [tuple(s[:3]) for s in two["steps"]]
    assert 1 in [s[1] for s in two["steps"]]  # a batch of one example: rank 1 had none of it
    # Float rounding only: the dual encoder's logits are cosines x 100, which scales the rounding of the gathered
    # embeddings (1e-5 relative before it trained here; 1.2e-5 seen with it).
    assert [s[3] for s in two["steps"]] == pytest.approx([s[3] for s in one["steps"]], rel=5e-5)
    assert [d["loss"] for d in two["record"]["loss"]] == pytest.approx([d["loss"] for d in one["record"]["loss"]],
                                                                      rel=5e-6)
    assert [d["metrics"] for d in two["record"]["dev"]] == [d["metrics"] for d in one["record"]["dev"]]
    init = dt.new_model(tiny_model_dir, [j.task for j in dt.jobs()], seed=5).state_dict()
    for k, v in one["state"].items():
        # atol: after 30 AdamW steps a weight whose gradients are near zero moves by their normalised rounding
        # (one embedding of 44,032 differed by 1.7e-5 with the dual encoder's task; tests/test_dual_encoder_ranks.py
        # checks its gradients themselves to 1e-6).
        torch.testing.assert_close(two_state[k], v, rtol=1e-4, atol=5e-5)
    assert any(not torch.equal(v, init[k]) for k, v in one["state"].items())  # it trained

    fresh, resumed = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("fresh", "resumed"))
    assert resumed["record"].pop("resumed_from") == [27]  # the last checkpoint (every 3 steps) before step 30
    assert resumed["record"] == fresh["record"]
    a, b = torch.load(tmp_path / "fresh.pt"), torch.load(tmp_path / "resumed.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], two_state[k]) for k in a)  # dropout on: another run than the exact one


def _plan(tmp_path: Path) -> tuple[object, str, str, str]:
    spec = parse_spec({"name": "dp", "targets": ["demo-nli"], "checkpoint_every": 2,
                       "hparams": {"target": {"max_train_examples": 21, "batch_size": 5, "epochs": 2,
                                              "max_dev_examples": 24, "lr": 5e-4}}}, tmp_path / "s.yaml")
    plan = build_plan(spec)
    (tmp_path / "plan.json").write_text(plan.to_json())
    base = next(s.key for s in plan.stages if s.kind == "intermediate")
    target = next(s.key for s in plan.stages if s.kind == "target")
    return plan, base, target, next(s.key for s in plan.stages if s.kind == "evaluate")


def _stage_run(tmp: Path, key: str, store: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xit.cli", "stage", "run", "--plan", str(tmp / "plan.json"),
                           "--key", key, "--store", str(tmp / store), "--no-progress", "--nproc", "2", *extra],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def two_process_stage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `xit stage run --nproc 2` of the target stage, which the tests below share: store "one" has the base
    and the target trained in one process; store "two" the same base stage (copied: the base encoder, the same
    bytes) and the target trained by the two-process run, then scored (`--scorers`)."""
    tmp = tmp_path_factory.mktemp("dp")
    plan, base, target, evaluate = _plan(tmp)
    one = LocalStore(tmp / "one")
    assert run_stage(plan, base, one) == "done"
    assert run_stage(plan, target, one) == "done"
    shutil.copytree(tmp / "one" / "stages" / base, tmp / "two" / "stages" / base)
    r = _stage_run(tmp, target, "two", "--scorers", "--outputs", str(tmp / "outputs"))
    assert r.returncode == 0, r.stderr[-3000:]
    return {"tmp": tmp, "plan": plan, "base": base, "target": target, "evaluate": evaluate, "run": r}


@pytest.mark.slow
def test_stage_run_with_two_processes_commits_once(two_process_stage: dict[str, Any]) -> None:
    """`xit stage run --nproc 2` trains the target stage in 2 processes: one commit (one attempt, rank 0's), the
    checkpoints gone after it, a model that loads, and the one-process run's schedule. Its losses are not
    compared with that run's: each rank draws its own dropout masks (how far apart that puts them depends on the
    model; a 5 % tolerance failed once the tiny model changed), and that two ranks take the one-process step is
    what the dropout-free test above asserts exactly."""
    from xit.modeling import load_model
    from xit.stage import output_dir
    from xit.tasks.registry import get_task

    tmp_path, target, evaluate, r = (two_process_stage[k] for k in ("tmp", "target", "evaluate", "run"))
    one, two = LocalStore(tmp_path / "one"), LocalStore(tmp_path / "two")
    # The target trained in 2 processes (rank 0 said done once), then its evaluate stage ran here, on one device.
    assert r.stderr.count("training with 2 processes") == 1
    assert [line.split()[:2] for line in r.stdout.splitlines()] == [["done:", "target"], ["done:", "evaluate"]]
    assert json.loads((tmp_path / "outputs" / "scored").read_text()) == [evaluate]
    # The manifest and the one attempt it names: no other rank's attempt, no checkpoint left.
    manifest = json.loads((tmp_path / "two" / "stages" / target / MANIFEST).read_text())
    assert sorted(p.name for p in (tmp_path / "two" / "stages" / target).iterdir()) == [MANIFEST, manifest["attempt"]]
    m1, m2 = read_metrics(one, target), read_metrics(two, target)
    assert m1["steps"] == m2["steps"] == 10
    assert [d["step"] for d in m2["loss"]] == [d["step"] for d in m1["loss"]] == [5, 10]
    assert all(0 < d["loss"] < 10 for d in m2["loss"])  # finite, a classification loss (ln 3 = 1.1 at chance)
    assert [d["step"] for d in m2["dev"]] == [d["step"] for d in m1["dev"]]
    model, _ = load_model(output_dir(two, target, "model"), [get_task("demo-nli")])
    reference, _ = load_model(output_dir(one, target, "model"), [get_task("demo-nli")])
    mine, theirs = model.state_dict(), reference.state_dict()
    assert mine.keys() == theirs.keys() and all(mine[k].shape == theirs[k].shape for k in mine)
    assert all(bool(torch.isfinite(v).all()) for v in mine.values() if v.is_floating_point())
    # Skipped at once when run again, without starting any process.
    r = _stage_run(tmp_path, target, "two")
    assert r.returncode == 0 and r.stdout.startswith("skipped:") and "processes" not in r.stderr


def test_nproc_is_checked_before_any_work(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                          tmp_path: Path) -> None:
    _, _, target, _ = _plan(tmp_path)
    args = ["stage", "run", "--plan", str(tmp_path / "plan.json"), "--key", target, "--store", str(tmp_path / "st")]
    code, _, err = cli(monkeypatch, capsys, *args, "--nproc", "0")
    assert code == 2 and "--nproc must be at least 1, got 0" in one_line(err)
    monkeypatch.setenv(ranks.ENV_NPROC, "two")
    code, _, err = cli(monkeypatch, capsys, *args)
    assert code == 2 and "$XIT_NPROC must be a whole number of processes, got 'two'" in one_line(err)
    assert not (tmp_path / "st").exists()


def test_launch_count_and_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ranks.ENV_NPROC, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ranks.launch_count(None) == 1  # no GPU: one process
    assert ranks.launch_count(3) == 3  # on CPU as asked (gloo)
    monkeypatch.setenv(ranks.ENV_NPROC, "2")
    assert ranks.launch_count(None) == 2 and ranks.launch_count(4) == 4  # --nproc wins over the environment
    monkeypatch.delenv(ranks.ENV_NPROC)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert ranks.launch_count(None) == 4  # every visible GPU
    with pytest.raises(Exception, match="--nproc 8: only 4 GPU"):
        ranks.launch_count(8)
    cmd = ranks.launch_command(4, ["stage", "run", "--key", "k"])
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in cmd and "--nproc-per-node=4" in cmd
    assert cmd[cmd.index("--nproc-per-node=4") + 1:] == ["-m", "xit.cli", "stage", "run", "--key", "k"]
    assert ranks.stage_trains("target", {}) and ranks.stage_trains("intermediate", {"tasks": [{"name": "x"}]})
    assert not ranks.stage_trains("intermediate", {"tasks": []}) and not ranks.stage_trains("evaluate", {})


@pytest.mark.slow
def test_the_other_ranks_stop_when_rank_0_does_not_train(two_process_stage: dict[str, Any], tmp_path: Path) -> None:
    """Started by torch.distributed.run directly: rank 0 finds the stage's input missing (bad input) or the
    stage committed, tells the other rank, and every process ends: no rank waits for a training that never
    starts, and nothing is committed by a rank other than 0. The committed stage is the one the two-process
    run above committed (store "two"); the missing input, a fresh store's."""
    plan, target, shared = (two_process_stage[k] for k in ("plan", "target", "tmp"))

    def args(store: Path) -> list[str]:
        return ["-m", "xit.cli", "stage", "run", "--plan", str(shared / "plan.json"), "--key", target,
                "--store", str(store), "--no-progress"]

    r = two_ranks(*args(tmp_path / "st"))
    assert r.returncode != 0 and "input stage(s) not committed yet" in r.stderr and not r.stdout.strip()
    assert not (tmp_path / "st" / "stages" / target).exists()
    manifest = (shared / "two" / "stages" / target / MANIFEST).read_text()
    r = two_ranks(*args(shared / "two"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.splitlines() == [f"skipped: {plan.stage(target).label} ({target})"]
    assert (shared / "two" / "stages" / target / MANIFEST).read_text() == manifest
