"""A store's committed stages are trusted only as far as their manifests vouch for them.

Every file of a committed stage is checked against its MANIFEST.json (sha256 and size) before it is
used; a stage whose commit is unreadable or inconsistent (truncated manifest, a listed file gone, the
attempt folder gone) or whose bytes changed is taken as not done: one line says so and it is rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from xit.errors import WorkError
from xit.plan import build_plan
from xit.runner import run_sweep
from xit.spec import parse_spec
from xit.stage import MANIFEST, DamagedStage, check_commit, is_committed, output_dir, read_metrics
from xit.store import LocalStore

SPEC = {"name": "trust", "targets": ["demo-tatoeba"]}  # base encoder, one retrieval stage, report: seconds


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("good")
    spec = parse_spec(SPEC, d / "s.yaml")
    run_sweep(spec, LocalStore(d / "store"), d / "out", show_progress=False)
    return d


@pytest.fixture
def sweep(good_store: Path, tmp_path: Path) -> tuple:
    shutil.copytree(good_store / "store", tmp_path / "store", symlinks=True)
    spec = parse_spec(SPEC, tmp_path / "s.yaml")
    plan = build_plan(spec)
    return spec, plan, LocalStore(tmp_path / "store"), tmp_path, good_store


def _kinds(plan) -> dict[str, str]:  # noqa: ANN001
    return {s.kind: s.key for s in plan.stages}


def _attempt(store: LocalStore, key: str) -> Path:
    d = store.root / "stages" / key
    return d / json.loads((d / MANIFEST).read_text())["attempt"]


def _rerun(spec, store, tmp: Path, capsys: pytest.CaptureFixture) -> tuple[dict, str]:  # noqa: ANN001
    capsys.readouterr()
    summary = run_sweep(spec, store, tmp / "out2", show_progress=False)
    return {summary.plan.stage(k).kind: v for k, v in summary.statuses.items()}, capsys.readouterr().err


def test_intact_stages_are_skipped_and_hashed_once(sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, plan, store, tmp, good = sweep
    from xit.store import local

    calls: list[Path] = []
    real = local.sha256_file
    monkeypatch.setattr(local, "sha256_file", lambda p: calls.append(p) or real(p))
    for key in _kinds(plan).values():
        assert check_commit(store, key) is None
    n = len(calls)
    assert n >= 4  # the copied store's files are new file identities: hashed once each
    for key in _kinds(plan).values():
        assert check_commit(store, key) is None
    output_dir(store, _kinds(plan)["intermediate"], "model/encoder")
    assert len(calls) == n  # cached by file identity: nothing hashed again


def test_flipped_bytes_in_a_model_rebuild_the_stage(sweep, capsys: pytest.CaptureFixture) -> None:
    spec, plan, store, tmp, good = sweep
    base = _kinds(plan)["intermediate"]
    weights = _attempt(store, base) / "model" / "encoder" / "model.safetensors"
    good = weights.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(DamagedStage, match=r"checksum mismatch for .*model/encoder/model.safetensors") as e:
        output_dir(store, base, "model/encoder")  # what the next stage reads: refused, and the stage un-committed
    assert isinstance(e.value, WorkError) and "\n" not in str(e.value)
    assert not is_committed(store, base)


def test_a_changed_file_is_found_when_the_stage_is_next_seen(sweep, capsys: pytest.CaptureFixture) -> None:
    spec, plan, store, tmp, good = sweep
    keys = _kinds(plan)
    weights = _attempt(store, keys["intermediate"]) / "model" / "encoder" / "model.safetensors"
    good = weights.read_bytes()
    data = bytearray(good)
    data[100] ^= 0x01
    weights.write_bytes(bytes(data))
    statuses, err = _rerun(spec, store, tmp, capsys)
    assert statuses == {"intermediate": "done", "retrieval": "skipped", "report": "skipped"}
    lines = [ln for ln in err.splitlines() if "not taken as done" in ln]
    assert len(lines) == 1 and keys["intermediate"] in lines[0] and "model.safetensors" in lines[0]
    assert weights.parent.parent.parent != _attempt(store, keys["intermediate"])  # a new attempt, the old one gone
    assert not weights.exists()
    assert (_attempt(store, keys["intermediate"]) / "model" / "encoder" / "model.safetensors").read_bytes() == good


def test_an_edited_score_never_reaches_the_report(sweep, capsys: pytest.CaptureFixture) -> None:
    spec, plan, store, tmp, good = sweep
    keys = _kinds(plan)
    metrics = _attempt(store, keys["retrieval"]) / "metrics.json"
    real = json.loads(metrics.read_text())
    forged = {**real, "score": 3.0}
    metrics.write_text(json.dumps(forged))
    with pytest.raises(DamagedStage, match=r"checksum mismatch for .*metrics.json"):
        read_metrics(store, keys["retrieval"])
    assert not is_committed(store, keys["retrieval"])
    # a forged score with the same size and the old mtime is caught as well (the ctime cannot be set back)
    shutil.rmtree(store.root)
    shutil.copytree(good / "store", store.root, symlinks=True)
    metrics = _attempt(store, keys["retrieval"]) / "metrics.json"
    text = metrics.read_text()
    assert check_commit(store, keys["retrieval"]) is None  # hashed and cached
    st = metrics.stat()
    i = text.index('"score": ') + len('"score": ')
    flipped = text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1:]  # same size, another score
    metrics.write_text(flipped)
    os.utime(metrics, ns=(st.st_atime_ns, st.st_mtime_ns))
    statuses, err = _rerun(spec, store, tmp, capsys)
    assert statuses["retrieval"] == "done"
    assert json.loads((_attempt(store, keys["retrieval"]) / "metrics.json").read_text()) == real


def test_a_report_is_aggregated_once_and_its_table_printed_from_those_numbers(
        sweep, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report stage aggregates (bootstraps) once; its files, research sections and the printed table all
    come from that one aggregation, made per base model like the report's. A run that finds the report
    committed aggregates once, from the committed stages, and prints the same table."""
    from xit.stages import report as report_kind

    spec, plan, store, tmp, good = sweep
    keys = _kinds(plan)
    (store.root / "stages" / keys["report"] / MANIFEST).unlink()  # the report stage runs again
    calls: list[dict] = []
    real = report_kind.aggregate
    monkeypatch.setattr(report_kind, "aggregate", lambda scores, **kw: calls.append(kw) or real(scores, **kw))

    def rerun() -> tuple[set[str], str]:
        capsys.readouterr()
        summary = run_sweep(spec, store, tmp / "out2", show_progress=False)
        return {s for k, s in summary.statuses.items() if k == keys["report"]}, capsys.readouterr().out

    status, ran = rerun()
    assert status == {"done"}
    params = plan.stage(keys["report"]).params
    assert calls == [{"baseline": "[]", "title": "xit sweep trust", "complementarity": [],
                      "model": params["model"]}] and params["model"] == spec.model
    status, again = rerun()
    assert status == {"skipped"} and len(calls) == 2 and calls[1] == calls[0]
    assert "demo-tatoeba" in ran and ran == again


def test_xit_report_aggregates_once_when_it_runs_the_report_stage(
        sweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`xit report` runs the report stage, then exports it: the export prints the tables the stage computed (handed
    back by run_stage), not a second aggregation; with the stage committed, the export aggregates once itself."""
    from typer.testing import CliRunner

    from xit.cli import app
    from xit.stages import report as report_kind

    spec, plan, store, tmp, good = sweep
    (store.root / "stages" / _kinds(plan)["report"] / MANIFEST).unlink()  # the report stage runs again
    (tmp / "s.yaml").write_text(json.dumps(SPEC))
    calls: list[dict] = []
    real = report_kind.aggregate
    monkeypatch.setattr(report_kind, "aggregate", lambda scores, **kw: calls.append(kw) or real(scores, **kw))
    args = ["report", str(tmp / "s.yaml"), "--store", str(store.root), "--out", str(tmp_path / "rep")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert len(calls) == 1 and "demo-tatoeba" in r.output
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert len(calls) == 2 and "demo-tatoeba" in r.output


@pytest.mark.parametrize("damage", ["truncated manifest", "manifest not this stage's", "metrics.json deleted",
                                    "attempt folder deleted", "results.csv deleted", "manifest lists no metrics"])
def test_a_damaged_commit_is_rebuilt_with_one_line(sweep, capsys: pytest.CaptureFixture, damage: str) -> None:
    spec, plan, store, tmp, good = sweep
    keys = _kinds(plan)
    key = keys["report"] if damage == "results.csv deleted" else keys["retrieval"]
    manifest = store.root / "stages" / key / MANIFEST
    attempt = _attempt(store, key)
    if damage == "truncated manifest":
        manifest.write_text(manifest.read_text()[:40])
    elif damage == "manifest not this stage's":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "key": "other"}))
    elif damage == "metrics.json deleted":
        (attempt / "metrics.json").unlink()
    elif damage == "attempt folder deleted":
        shutil.rmtree(attempt)
    elif damage == "results.csv deleted":
        (attempt / "results.csv").unlink()
    else:
        m = json.loads(manifest.read_text())
        del m["files"]["metrics.json"]
        manifest.write_text(json.dumps(m))
    assert check_commit(store, key) is not None
    statuses, err = _rerun(spec, store, tmp, capsys)
    assert statuses[plan.stage(key).kind] == "done"
    assert sum("not taken as done" in ln for ln in err.splitlines()) == 1
    assert check_commit(store, key) is None
    assert (tmp / "out2" / "results.csv").read_text() == (good / "out" / "results.csv").read_text()


def test_a_checksum_failure_during_work_exits_1_in_one_line(sweep, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    import sys

    from xit.cli import main

    spec, plan, store, tmp, good = sweep
    keys = _kinds(plan)
    (tmp / "plan.json").write_text(plan.to_json())
    (store.root / "stages" / keys["retrieval"] / MANIFEST).unlink()  # the retrieval stage must read its input
    weights = _attempt(store, keys["intermediate"]) / "model" / "encoder" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(sys, "argv", ["xit", "stage", "run", "--plan", str(tmp / "plan.json"), "--key",
                                      keys["retrieval"], "--store", str(store.root), "--no-progress"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 1
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("failed:") and "checksum mismatch" in lines[0] and "model.safetensors" in lines[0]
    assert keys["intermediate"] in lines[0] and not is_committed(store, keys["intermediate"])


# --- garbage


def test_leftovers_of_a_committed_stage_are_tidied_when_it_is_next_seen(sweep) -> None:
    """A kill between the manifest write and the clean-up leaves a dead attempt, checkpoints (GBs of optimizer
    state with real models) and temporary manifest files: the next run that sees the stage removes them."""
    from xit.stage import run_stage

    spec, plan, store, tmp, good = sweep
    key = _kinds(plan)["intermediate"]
    d = store.root / "stages" / key
    keep = _attempt(store, key)
    files_before = sorted(p.relative_to(keep) for p in keep.rglob("*"))
    (d / "attempt-20260101T000000-deadbeef" / "model").mkdir(parents=True)
    (d / "attempt-20260101T000000-deadbeef" / "model" / "w.bin").write_bytes(b"dead attempt")
    (d / "checkpoint" / "step-000000010-abc").mkdir(parents=True)
    (d / "checkpoint" / "step-000000010-abc" / "state.pt").write_bytes(b"optimizer state")
    (d / ".MANIFEST.json.k2j3h4.part").write_text("{")
    assert run_stage(plan, key, store) == "skipped"
    assert sorted(p.name for p in d.iterdir()) == sorted([MANIFEST, keep.name])
    assert sorted(p.relative_to(keep) for p in keep.rglob("*")) == files_before


def test_scratch_lives_in_one_folder_per_run_and_the_next_run_removes_a_dead_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from xit import scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(scratch, "_RUN_DIR", None)
    base = scratch.base_dir()
    assert base.parent == tmp_path
    dead = base / "run-killed"  # a run killed with SIGKILL: its folder stays, its lock is free
    (dead / "xit-intermediate-x-abc" / "model").mkdir(parents=True)
    (dead / ".lock").write_text("")
    (dead / "xit-intermediate-x-abc" / "model" / "model.safetensors").write_bytes(b"0" * 1000)
    live = base / "run-alive"  # another runner, still going: it holds its lock
    live.mkdir()
    held = open(live / ".lock", "w")  # noqa: SIM115
    try:
        assert scratch._try_lock(held)
        mine = scratch.run_dir()
        assert not dead.exists() and live.is_dir() and mine.parent == base and mine.name.startswith("run-")
        with scratch.temp_dir("xit-stage-") as t:
            assert Path(t).parent == mine
    finally:
        held.close()
        monkeypatch.setattr(scratch, "_RUN_DIR", None)
    # its lock released (the runner ended without clean-up): the next run removes it; this one's is held
    scratch.clean_stale(base)
    assert not live.exists() and mine.is_dir()


def test_a_fresh_commit_is_not_hashed_again_when_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digests computed for the manifest are remembered for the files the local store now holds."""
    from xit.stage import run_stage
    from xit.store import local

    plan = build_plan(parse_spec(SPEC, tmp_path / "s.yaml"))
    store = LocalStore(tmp_path / "store")
    key = _kinds(plan)["intermediate"]
    assert run_stage(plan, key, store) == "done"
    calls: list[Path] = []
    real = local.sha256_file
    monkeypatch.setattr(local, "sha256_file", lambda p: calls.append(p) or real(p))
    assert check_commit(store, key) is None
    output_dir(store, key, "model/encoder")
    assert calls == []
    weights = _attempt(store, key) / "model" / "encoder" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # touched: hashed again, and caught
    assert "checksum mismatch" in (check_commit(store, key) or "")
    assert calls == [weights]


def test_a_layer_beyond_a_hub_models_depth_stops_the_run_once_the_base_is_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub model's depth is unknown until the base stage fetches it: the run stops right after that stage,
    before any stage that would pool the missing layer (the tiny model stands in for a hub model here)."""
    from xit import spec as spec_mod
    from xit.errors import XitError

    monkeypatch.setattr(spec_mod, "model_depth", lambda model: None)
    spec = parse_spec({**SPEC, "retrieval": {"layer": 9}}, tmp_path / "s.yaml")  # passes: depth not known
    store = LocalStore(tmp_path / "store")
    with pytest.raises(XitError, match=r"'retrieval.layer': layer 9 is beyond the depth of xit-tiny \(4 layers"):
        run_sweep(spec, store, tmp_path / "out", show_progress=False)
    plan = build_plan(spec)
    assert is_committed(store, _kinds(plan)["intermediate"])
    assert not (store.root / "stages" / _kinds(plan)["retrieval"]).exists()
