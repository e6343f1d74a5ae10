"""End to end: the demo sweep through the real CLI, into a temporary store.

Runs examples/demo.yaml (the same spec `make demo` runs), checks the report files and
every stage's manifest, runs it again and proves every stage was skipped, and kills a
run mid-sweep to prove it resumes to the same results.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xit.plan import build_plan
from xit.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "demo.yaml"
pytestmark = pytest.mark.slow


def xit(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xit.cli", *args], capture_output=True, text=True, cwd=ROOT, **kw)


@pytest.fixture(scope="module")
def plan():
    return build_plan(load_spec(SPEC))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _committed(store: Path) -> set[str]:
    return {p.parent.name for p in (store / "stages").glob("*/MANIFEST.json")}


def _out(store: Path, key: str) -> Path:
    """A committed stage's files: the attempt its manifest names."""
    d = store / "stages" / key
    return d / json.loads((d / "MANIFEST.json").read_text())["attempt"]


def test_demo_writes_report(demo_run, plan):
    store, out, r = demo_run
    spec = load_spec(SPEC)
    assert f"{len(plan.stages)} stage(s) run, 0 skipped" in r.stderr
    rows = _rows(out / "results.csv")
    assert list(rows[0]) == ["intermediate", "target", "metric", "score", "delta", "std", "n_seeds", "ci_low",
                             "ci_high", "delta_ci_low", "delta_ci_high", "p_value", "test"]
    seeds = len(spec.seeds)
    for x in rows:  # every cell has its interval (t over seeds; one seed: bootstrap over test examples / queries)
        if seeds > 1 or x["target"] != "demo-bucc":
            assert float(x["ci_low"]) <= float(x["score"]) <= float(x["ci_high"]), x
            assert int(x["n_seeds"]) == seeds
        if x["intermediate"] == "[]":
            assert x["test"] == x["p_value"] == ""
        elif x["target"] != "demo-bucc":  # per-example (per-query) scores: the paired bootstrap
            assert x["test"] == "paired bootstrap" and 0 < float(x["p_value"]) <= 1, x
        else:  # BUCC scores whole corpora: the paired t-test over seeds, or nothing with one seed
            assert x["test"] == ("paired t-test" if seeds > 1 else "")
    labels = ["[" + ", ".join(c) + "]" for c in spec.intermediate]
    assert [(x["intermediate"], x["target"]) for x in rows] == [(c, t) for c in labels for t in spec.targets]
    for x in rows:
        assert 0.0 <= float(x["score"]) <= 100.0
        if x["intermediate"] == "[]":
            assert float(x["delta"]) == 0.0
    base = {x["target"]: float(x["score"]) for x in rows if x["intermediate"] == "[]"}
    for x in rows:  # delta is the difference to the baseline, to the rounding of the file
        assert float(x["delta"]) == pytest.approx(float(x["score"]) - base[x["target"]], abs=2e-4)
    assert {x["metric"] for x in rows if x["target"] == "demo-qa"} == {"em_f1"}

    per_lang = _rows(out / "per_language.csv")
    assert list(per_lang[0]) == ["intermediate", "target", "language", "metric", "score"]
    # 4 languages for demo-para/qa/tag, 3 (non-English) for the two retrieval tasks, per configuration.
    assert len(per_lang) == len(labels) * (3 * 4 + 2 * 3)
    for x in rows:  # the headline is the mean over languages (one seed)
        langs = [float(y["score"]) for y in per_lang
                 if (y["intermediate"], y["target"]) == (x["intermediate"], x["target"])]
        assert float(x["score"]) == pytest.approx(sum(langs) / len(langs), abs=2e-4)

    md = (out / "results.md").read_text()
    assert "| [demo-nli, demo-mc] |" in md and "avg" in md
    assert (out / "deltas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "[demo-nli]" in r.stdout  # the terminal table


def test_every_stage_committed_with_a_true_manifest(demo_run, plan):
    store, _, _ = demo_run
    assert _committed(store) == {s.key for s in plan.stages}
    for s in plan.stages:
        manifest = json.loads((store / "stages" / s.key / "MANIFEST.json").read_text())
        d = _out(store, s.key)
        assert sorted(p.name for p in d.parent.iterdir()) == sorted([d.name, "MANIFEST.json"])
        files = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
        assert set(manifest["files"]) == files
        for rel, meta in manifest["files"].items():
            data = (d / rel).read_bytes()
            assert meta["size"] == len(data)
            assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    # The target stages start from their intermediate encoder and keep the best dev checkpoint.
    for s in plan.by_kind("target"):
        m = json.loads((_out(store, s.key) / "metrics.json").read_text())
        assert m["best"]["score"] == max(d["score"] for d in m["dev"])
    sweep = store / "sweeps" / plan.name / plan.sweep_id
    assert json.loads((sweep / "plan.json").read_text())["sweep_id"] == plan.sweep_id


def test_second_run_skips_every_stage(demo_run, plan, tmp_path):
    store, out, _ = demo_run
    before = {p: p.stat().st_mtime_ns for p in (store / "stages").glob("*/MANIFEST.json")}
    r = xit("run", str(SPEC), "--store", str(store), "--out", str(tmp_path / "again"), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"0 stage(s) run, {len(plan.stages)} skipped" in r.stderr
    assert r.stderr.count("skipped ") == len(plan.stages)
    assert {p: p.stat().st_mtime_ns for p in (store / "stages").glob("*/MANIFEST.json")} == before
    assert (tmp_path / "again" / "results.csv").read_text() == (out / "results.csv").read_text()


def _last_seed_stages(plan) -> set[str]:
    """The stages of the spec's last seed and everything downstream of them (its targets' evaluations and
    retrievals, the report): every kind of stage, about a third of the demo's work with three seeds."""
    last = max(s.params["seed"] for s in plan.stages if "seed" in s.params)
    out: set[str] = set()
    for s in plan.stages:  # inputs come first in a plan
        if s.params.get("seed") == last or any(i in out for i in s.inputs):
            out.add(s.key)
    return out


def test_killed_run_resumes_to_the_same_results(demo_run, plan, tmp_path):
    """The store starts with the uninterrupted run's stages except the last seed's (copied: the sweep is part
    done, as after an earlier interruption), so the kill and the resume redo those stages only, not the whole
    demo again; whatever they recompute must reproduce the uninterrupted run's results exactly."""
    demo_store, out, _ = demo_run
    store = tmp_path / "store"
    redo = _last_seed_stages(plan)
    assert {plan.stage(k).kind for k in redo} == {s.kind for s in plan.stages}
    for s in plan.stages:
        if s.key not in redo:
            shutil.copytree(demo_store / "stages" / s.key, store / "stages" / s.key)
    seeded = _committed(store)
    assert len(seeded) == len(plan.stages) - len(redo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xit.cli", "run", str(SPEC), "--store", str(store), "--out", str(tmp_path / "o1"),
         "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 600
    try:
        # Kill it for real (no cleanup handlers run) once a few stages have committed.
        while len(_committed(store) - seeded) < 4:
            assert proc.poll() is None, "the sweep ended before it could be interrupted"
            assert time.time() < deadline, "no progress within 10 minutes"
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done_before = _committed(store)
    assert 4 <= len(done_before) < len(plan.stages)
    assert len(done_before - seeded) >= 4 and done_before - seeded <= redo  # 4 stages committed by the killed run

    # A stage that died while uploading: files without a manifest. It must not count as done.
    half = next(s for s in plan.stages if s.key not in done_before and s.kind == "target")
    (store / "stages" / half.key / "model").mkdir(parents=True, exist_ok=True)
    (store / "stages" / half.key / "metrics.json").write_text("{truncated")
    (store / "stages" / half.key / "model" / "heads.json").write_text("")

    r = xit("run", str(SPEC), "--store", str(store), "--out", str(tmp_path / "o2"), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    n_skipped = len(done_before)
    assert f"{len(plan.stages) - n_skipped} stage(s) run, {n_skipped} skipped" in r.stderr
    for s in plan.stages:
        line = next(ln for ln in r.stderr.splitlines() if s.key in ln)
        assert ("skipped" in line) == (s.key in done_before), line
    assert json.loads((_out(store, half.key) / "metrics.json").read_text())["task"] == half.params["task"]
    assert not (store / "stages" / half.key / "metrics.json").exists()  # the dead attempt's files are gone
    # Seeded CPU training is repeatable: the resumed sweep reports exactly what the uninterrupted one did.
    assert (tmp_path / "o2" / "results.csv").read_text() == (out / "results.csv").read_text()
    assert (tmp_path / "o2" / "per_language.csv").read_text() == (out / "per_language.csv").read_text()


def test_training_killed_mid_stage_resumes_from_its_checkpoint(tmp_path):
    """SIGKILL during a target stage's training; the rerun resumes from the last checkpoint and ends
    with exactly the metrics of an uninterrupted run."""
    spec = tmp_path / "resume.yaml"
    spec.write_text("name: resume\ntargets: [demo-qa]\ncheckpoint_every: 10\n"
                    "hparams: {target: {lr: 1.0e-3, epochs: 2, evals_per_epoch: 2}}\n")
    plan = build_plan(load_spec(spec))
    target = plan.by_kind("target")[0]
    latest = tmp_path / "a" / "stages" / target.key / "checkpoint" / "latest.json"
    cmd = [sys.executable, "-m", "xit.cli", "run", str(spec), "--no-progress"]
    proc = subprocess.Popen([*cmd, "--store", str(tmp_path / "a"), "--out", str(tmp_path / "oa")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while not (latest.exists() and json.loads(latest.read_text())["step"] >= 40):
            assert proc.poll() is None, "the stage finished before it could be interrupted"
            assert time.time() < deadline
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert target.key not in _committed(tmp_path / "a")
    step = json.loads(latest.read_text())["step"]

    resumed = subprocess.run([*cmd, "--store", str(tmp_path / "a"), "--out", str(tmp_path / "oa")], cwd=ROOT,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    fresh = subprocess.run([*cmd, "--store", str(tmp_path / "b"), "--out", str(tmp_path / "ob")], cwd=ROOT,
                           capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr[-3000:]

    got = json.loads((_out(tmp_path / "a", target.key) / "metrics.json").read_text())
    want = json.loads((_out(tmp_path / "b", target.key) / "metrics.json").read_text())
    assert got.pop("resumed_from") >= [step] and "resumed_from" not in want
    assert got == want  # loss curve, every dev evaluation and the selected checkpoint
    assert (tmp_path / "oa" / "per_language.csv").read_text() == (tmp_path / "ob" / "per_language.csv").read_text()
    assert not (tmp_path / "a" / "stages" / target.key / "checkpoint").exists()  # cleared once committed
