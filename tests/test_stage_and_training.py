"""The pieces under a stage: the store, the commit protocol, the model files, the training recipe."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import Counts, no_dropout

from xit.errors import XitError
from xit.modeling import load_model, load_tokenizer, new_model, save_model
from xit.plan import build_plan
from xit.spec import GLOBAL_HPARAMS, parse_spec
from xit.stage import MANIFEST, check_commit, is_committed, run_stage
from xit.store import LocalStore, open_store
from xit.tasks.registry import get_task
from xit.tiny import build_tiny
from xit.train import Checkpoints, Job, sampling_probs, train

ROOT = Path(__file__).resolve().parents[1]


# --- store


def test_local_store_delete_tolerates_a_concurrent_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race's loser and winner remove one attempt folder at once: neither fails, nothing is left."""
    s = LocalStore(tmp_path)
    for i in range(3):
        s.write_text(f"stages/a/attempt-x/model/{i}.bin", "x")
    s.write_text("stages/a/attempt-x/metrics.json", "{}")
    s.write_text("stages/a/MANIFEST.json", "{}")
    real = os.unlink

    def other_runner_first(path, *args, **kwargs) -> None:  # noqa: ANN001
        real(path, *args, **kwargs)  # the other runner removes the file ...
        real(path, *args, **kwargs)  # ... just before this one does: FileNotFoundError

    monkeypatch.setattr(os, "unlink", other_runner_first)
    s.delete_prefix("stages/a/attempt-x")
    s.delete_prefix("stages/a/attempt-x/metrics.json")  # already gone: not an error either
    monkeypatch.undo()
    assert s.list("stages/a") == ["stages/a/MANIFEST.json"]
    assert not (tmp_path / "stages" / "a" / "attempt-x").exists()


def test_local_store_list_tolerates_a_concurrent_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race's winner lists the stage folder while the loser removes its own attempt."""
    import shutil

    s = LocalStore(tmp_path)
    for key in ("stages/a/MANIFEST.json", "stages/a/attempt-a/metrics.json", "stages/a/attempt-b/model/w.bin"):
        s.write_text(key, "x")
    real = os.scandir

    def loser_removes_first(path=".") -> object:  # noqa: ANN001
        if str(path).endswith("attempt-b"):
            shutil.rmtree(path)  # gone between listing stages/a and scanning it
        return real(path)

    monkeypatch.setattr(os, "scandir", loser_removes_first)
    got = s.list("stages/a")
    monkeypatch.undo()
    assert got == ["stages/a/MANIFEST.json", "stages/a/attempt-a/metrics.json"]
    assert s.list("stages/none") == [] and s.list("stages/a/MANIFEST.json") == []

    def unreadable(path=".") -> object:  # noqa: ANN001
        if str(path).endswith("attempt-a"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", unreadable)
    with pytest.raises(PermissionError):  # not a short listing: a missing checkpoint would mean a restart
        s.list("stages/a")


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "a/."])
def test_store_keys_cannot_escape(tmp_path: Path, key: str) -> None:
    with pytest.raises(XitError, match="invalid store key"):
        LocalStore(tmp_path).write_bytes(key, b"x")


def test_local_store_roundtrip_and_listing(tmp_path: Path) -> None:
    s = open_store(f"file://{tmp_path}/st")
    s.write_text("stages/a/metrics.json", "{}")
    s.put_file(Path(__file__), "stages/a/model/t.py")
    (tmp_path / "st" / "stages" / "a" / ".x.part").write_text("half")  # an interrupted write
    assert s.list("stages/a") == ["stages/a/metrics.json", "stages/a/model/t.py"]
    assert s.read_bytes("stages/a/model/t.py") == Path(__file__).read_bytes()
    s.delete_prefix("stages/a")
    assert s.list("stages/a") == [] and not s.exists("stages/a/metrics.json")
    with pytest.raises(XitError, match="no object"):
        s.read_text("stages/a/metrics.json")
    with pytest.raises(XitError, match="unsupported scheme 'gs'"):
        open_store("gs://bucket/x")


# --- the tiny model and model files


def _digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_tiny_model_is_deterministic(tmp_path: Path, tiny_model_dir: Path) -> None:
    # The fixture is the random-init build (pretrain=False); the same seed gives the same bytes, another seed others.
    assert _digest(build_tiny(tmp_path / "again", pretrain=False)) == _digest(tiny_model_dir)
    assert _digest(build_tiny(tmp_path / "seed1", seed=1, pretrain=False))["model.safetensors"] != _digest(
        tiny_model_dir)["model.safetensors"]


def test_saved_model_loads_back_exactly(tmp_path: Path, tiny_model_dir: Path) -> None:
    tasks = [get_task("demo-nli"), get_task("demo-tag")]
    model = new_model(tiny_model_dir, tasks)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))  # anything but the initial weights
    save_model(model, load_tokenizer(tiny_model_dir), tmp_path / "m")
    again, _ = load_model(tmp_path / "m", tasks)
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((tmp_path / "m").rglob("*.bin")) and not list((tmp_path / "m").rglob("*.pt"))
    with pytest.raises(XitError, match="no head for task 'demo-qa'"):
        load_model(tmp_path / "m", [get_task("demo-qa")])

    # A target model starts from the saved encoder with a fresh head.
    fresh = new_model(tmp_path / "m" / "encoder", [get_task("demo-para")])
    enc_a, enc_b = model.encoder.state_dict(), fresh.encoder.state_dict()
    assert all(torch.equal(enc_a[k], enc_b[k]) for k in enc_a)
    assert list(fresh.heads) == ["demo-para"]


# --- training


def test_sampling_probabilities() -> None:
    assert sampling_probs([100, 300], "proportional", 2.0) == pytest.approx([0.25, 0.75])
    assert sampling_probs([100, 300], "uniform", 2.0) == pytest.approx([0.5, 0.5])
    # size^(1/T), T=2: 10 and 30 → 10/(10+30), 30/(10+30)
    assert sampling_probs([100, 900], "temperature", 2.0) == pytest.approx([0.25, 0.75])


def _jobs(n: int = 48) -> list[Job]:
    jobs = []
    for name in ("demo-nli", "demo-tag"):
        t = get_task(name)
        hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 1.0, "batch_size": 8, "max_dev_examples": 16}
        jobs.append(Job(t, hp, t.load("en", "train")[:n], t.load("en", "dev")))
    return jobs


def test_multitask_training_is_repeatable_and_keeps_the_best(tiny_model_dir: Path) -> None:
    tok = load_tokenizer(tiny_model_dir)
    states, records = [], []
    for _ in range(2):
        model = new_model(tiny_model_dir, [j.task for j in _jobs()])
        records.append(train(model, tok, _jobs(), seed=3, sampler={"kind": "proportional"}))
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    rec = records[0]
    assert rec == records[1]
    assert rec["steps"] == 12 and rec["tasks"] == ["demo-nli", "demo-tag"]  # 48/8 steps per task
    assert rec["best"]["score"] == max(d["score"] for d in rec["dev"])
    for d in rec["dev"]:  # the selection score is the mean of the tasks' headline dev metrics
        assert d["score"] == pytest.approx(np.mean([d["metrics"]["demo-nli"]["accuracy"],
                                                    d["metrics"]["demo-tag"]["f1"]]))
    # Both heads were trained: they moved away from their (seeded) initialisation.
    init = new_model(tiny_model_dir, [j.task for j in _jobs()]).state_dict()
    for head in ("heads.demo-nli", "heads.demo-tag"):
        assert any(not torch.equal(states[0][k], init[k]) for k in states[0] if k.startswith(head))


def test_training_learns_a_demo_task(tiny_model_dir: Path) -> None:
    t = get_task("demo-tag")
    hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 2.0, "max_dev_examples": 100}
    model = new_model(tiny_model_dir, [t])
    rec = train(model, load_tokenizer(tiny_model_dir), [Job(t, hp, t.load("en", "train")[:600], t.load("en", "dev"))],
                seed=1, sampler={})
    assert rec["loss"][-1]["loss"] < rec["loss"][0]["loss"]
    assert rec["best"]["metrics"]["demo-tag"]["f1"] > 80.0  # chance-level tagging scores far below


# --- one stage through the CLI


def test_stage_run_commits_once_and_checks_inputs(tmp_path: Path) -> None:
    spec = parse_spec({"name": "one", "intermediate": [[], ["demo-nli"]], "targets": ["demo-tatoeba"]},
                      tmp_path / "s.yaml")
    plan = build_plan(spec)
    (tmp_path / "plan.json").write_text(plan.to_json())
    base = plan.stages[0]
    store = tmp_path / "store"

    def stage(key: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "xit.cli", "stage", "run", "--plan", str(tmp_path / "plan.json"),
                               "--key", key, "--store", str(store), "--no-progress"],
                              capture_output=True, text=True, cwd=ROOT)

    retrieval = next(s for s in plan.stages if s.kind == "retrieval" and s.inputs != [base.key])
    r = stage(retrieval.key)  # its intermediate stage has not run
    assert r.returncode == 2 and "not committed yet" in r.stderr and retrieval.inputs[0] in r.stderr
    assert not (store / "stages" / retrieval.key).exists()

    r = stage(base.key)
    assert r.returncode == 0 and r.stdout.startswith("done:"), r.stderr
    manifest = json.loads((store / "stages" / base.key / MANIFEST).read_text())
    assert {"model/encoder/config.json", "model/encoder/model.safetensors", "metrics.json"} <= set(manifest["files"])
    r = stage(base.key)
    assert r.returncode == 0 and r.stdout.startswith("skipped:")
    assert json.loads((store / "stages" / base.key / MANIFEST).read_text()) == manifest

    r = stage("intermediate-0000")
    assert r.returncode == 2 and "has no stage 'intermediate-0000'" in r.stderr


def test_a_stage_that_fails_leaves_nothing_committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = parse_spec({"name": "one", "targets": ["demo-tatoeba"]}, tmp_path / "s.yaml")
    plan = build_plan(spec)
    store = LocalStore(tmp_path / "store")
    calls = []
    real_put = LocalStore.put_file

    def flaky(self: LocalStore, src: Path, key: str) -> None:  # the upload dies after one file
        calls.append(key)
        if len(calls) > 1:
            raise OSError("disk full")
        real_put(self, src, key)

    monkeypatch.setattr(LocalStore, "put_file", flaky)
    key = plan.stages[0].key
    with pytest.raises(OSError):
        run_stage(plan, key, store)
    assert store.list(f"stages/{key}") and not is_committed(store, key)
    monkeypatch.setattr(LocalStore, "put_file", real_put)
    assert run_stage(plan, key, store) == "done" and is_committed(store, key)
    assert run_stage(plan, key, store) == "skipped"


def test_a_runner_whose_work_fails_because_another_committed_skips_and_clears(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The slower of two racers fails mid-work because the winner committed and cleared what it was
    writing: it answers "skipped" (the stage is done) and removes what it left, not "failed"."""
    from xit import stage as stage_mod

    spec = parse_spec({"name": "one", "targets": ["demo-tatoeba"]}, tmp_path / "s.yaml")
    plan = build_plan(spec)
    store = LocalStore(tmp_path / "store")
    key = plan.stages[0].key
    real = stage_mod.BODIES["intermediate"]

    def winner_commits_meanwhile(stage, ctx, out) -> None:  # noqa: ANN001
        real(stage, ctx, out)
        store.write_text(f"stages/{key}/attempt-winner/metrics.json", "{}")
        store.write_text(f"stages/{key}/{MANIFEST}", json.dumps({"attempt": "attempt-winner"}))
        store.write_text(f"stages/{key}/checkpoint/step-000000010-slow/model.safetensors", "re-created by the loser")
        raise FileNotFoundError("the checkpoint folder went away under this runner")

    pushes: list[dict] = []
    monkeypatch.setattr("xit.telemetry.push_to_gateway", lambda *a, **kw: pushes.append(kw["grouping_key"]))
    monkeypatch.setitem(stage_mod.BODIES, "intermediate", winner_commits_meanwhile)
    assert run_stage(plan, key, store, pushgateway="http://127.0.0.1:1") == "skipped"
    assert store.list(f"stages/{key}") == [f"stages/{key}/{MANIFEST}", f"stages/{key}/attempt-winner/metrics.json"]
    assert pushes == []  # the stage's metrics group is the winner's: the loser pushes no final status over it

    def plain_failure(stage, ctx, out) -> None:  # noqa: ANN001
        raise FileNotFoundError("no such input")

    monkeypatch.setitem(stage_mod.BODIES, "intermediate", plain_failure)
    with pytest.raises(FileNotFoundError):  # nobody committed: the error stands
        run_stage(plan, key, LocalStore(tmp_path / "other"), pushgateway="http://127.0.0.1:1")
    assert [g["stage"] for g in pushes] == [key]  # ... and is pushed as the stage's status


def test_two_runners_racing_on_one_stage_commit_once(tmp_path: Path) -> None:
    """Two `xit stage run` processes on one stage as on two machines (two pods: each its own $TMPDIR, so the
    machine lock does not keep them apart): both do the work, exactly one commits."""
    spec = parse_spec({"name": "race", "targets": ["demo-tatoeba"]}, tmp_path / "s.yaml")
    plan = build_plan(spec)
    (tmp_path / "plan.json").write_text(plan.to_json())
    key = plan.stages[0].key
    cmd = [sys.executable, "-m", "xit.cli", "stage", "run", "--plan", str(tmp_path / "plan.json"), "--key", key,
           "--store", str(tmp_path / "store"), "--no-progress"]
    machines = [tmp_path / "machine-a", tmp_path / "machine-b"]
    for m in machines:
        m.mkdir()
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(m)})
             for m in machines]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    statuses = sorted(o.split(":", 1)[0].strip() for o, _ in outs)
    assert statuses == ["done", "skipped"]
    store = LocalStore(tmp_path / "store")
    manifest = json.loads(store.read_text(f"stages/{key}/{MANIFEST}"))
    # Only the committed attempt is left, and it holds exactly the files its manifest lists.
    listed = store.list(f"stages/{key}")
    assert {k.split("/")[2] for k in listed} == {manifest["attempt"], MANIFEST}
    assert {k.split("/", 3)[3] for k in listed if k.split("/")[2] != MANIFEST} == set(manifest["files"])


def test_checkpoints_resume_from_the_newest_complete_one_even_with_a_racer(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A slower runner on the same stage saves an older step after a faster one saved a newer: the
    newer stays; half-written, half-pruned or damaged folders are passed over for the next older one."""
    store, prefix = LocalStore(tmp_path), "stages/k/checkpoint"
    fast, slow = Checkpoints(store, prefix, every=10), Checkpoints(store, prefix, every=10)

    def save(ck: Checkpoints, step: int, best: bool = False) -> None:
        record = {"at": step, **({"best": {"step": step}} if best else {})}
        ck.save(step, {"w": torch.full((2,), float(step))}, {"w": torch.zeros(2)} if best else None,
                {"step": step}, {"record": record})

    def folders() -> list[str]:
        return sorted({k.split("/")[3] for k in store.list(prefix) if "/step-" in k})

    assert fast.load() is None
    save(fast, 10)
    save(fast, 20)
    assert folders() == [f"step-000000020-{fast.runner}"]
    save(slow, 10)  # the racer, a checkpoint behind, in a folder of its own: step 20 stays
    assert folders() == [f"step-000000010-{slow.runner}", f"step-000000020-{fast.runner}"]
    assert json.loads(store.read_text(f"{prefix}/latest.json"))["step"] == 10
    got = Checkpoints(store, prefix, every=10).load()
    assert got["step"] == 20 and got["record"] == {"at": 20} and got["model"]["w"].tolist() == [20.0, 20.0]
    assert got["best_state"] is None
    save(fast, 30)  # prunes every folder older than 30, the racer's too
    assert folders() == [f"step-000000030-{fast.runner}"]

    def partial(step: int, files: dict[str, bytes]) -> None:
        for f, data in files.items():
            store.write_bytes(f"{prefix}/step-{step:09d}-dead/{f}", data)

    d30 = tmp_path / prefix / f"step-000000030-{fast.runner}"
    good = {f: (d30 / f).read_bytes() for f in ("model.safetensors", "state.pt", "progress.json")}
    # Killed mid-checkpoint: everything but progress.json (uploaded last) went up.
    partial(40, {f: good[f] for f in ("model.safetensors", "state.pt")})
    # Damaged weights.
    partial(60, {**good, "model.safetensors": b"not safetensors"})
    assert Checkpoints(store, prefix, every=10).load()["step"] == 30
    # Listed complete, then its best weights pruned by a racer before they were read (the racer
    # pruned step 30 as well): nothing usable is left, so training starts over.
    save(slow, 50, best=True)
    (tmp_path / prefix / f"step-000000050-{slow.runner}" / "best.safetensors").unlink()
    assert not d30.exists() and Checkpoints(store, prefix, every=10).load() is None
    assert "step-000000060-dead cannot be read (SafetensorError" in caplog.text
    save(slow, 70, best=True)
    got = Checkpoints(store, prefix, every=10).load()
    assert got["step"] == 70 and got["best_state"]["w"].tolist() == [0.0, 0.0]
    assert folders() == [f"step-000000070-{slow.runner}"]


def test_a_slower_racer_stops_or_steps_aside_when_it_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its folder pruned mid-write by a racer past its step, a runner goes on without that checkpoint;
    once another runner committed the stage, saving stops the training."""
    store, prefix = LocalStore(tmp_path), "stages/k/checkpoint"
    fast, slow = Checkpoints(store, prefix, every=10), Checkpoints(store, prefix, every=10)
    state = ({"w": torch.ones(2)}, None, {"step": 0}, {"record": {}})
    real_put = LocalStore.put_file

    def pruned_after_first_file(self: LocalStore, src: Path, key: str) -> None:
        real_put(self, src, key)
        if "-" + slow.runner in key and not fast._folders()[0][0].startswith("step-000000020"):
            fast.save(20, *state)  # the faster racer saves step 20 and prunes the slow one's step 10 ...
            raise FileNotFoundError(key)  # ... under the file the slow one writes next

    monkeypatch.setattr(LocalStore, "put_file", pruned_after_first_file)
    slow.save(10, *state)  # no error: the newer checkpoint stands
    assert [f for f, _ in slow._folders()] == [f"step-000000020-{fast.runner}"]
    assert json.loads(store.read_text(f"{prefix}/latest.json"))["step"] == 20
    monkeypatch.setattr(LocalStore, "put_file", real_put)

    def always_gone(self: LocalStore, src: Path, key: str) -> None:
        raise FileNotFoundError(key)

    monkeypatch.setattr(LocalStore, "put_file", always_gone)
    with pytest.raises(FileNotFoundError):  # nothing newer there: a real error
        slow.save(30, *state)
    monkeypatch.setattr(LocalStore, "put_file", real_put)
    committed = Checkpoints(store, prefix, every=10, committed=lambda: True)
    with pytest.raises(XitError, match="committed by another runner; this one stops training"):
        committed.save(40, *state)
    assert Checkpoints(store, prefix, every=10).load()["step"] == 20


# --------------------------------------------------------------------------- batch order and length grouping


def test_batch_order_is_a_pure_function_of_position_and_covers_each_epoch() -> None:
    from xit.train import BatchOrder

    order = BatchOrder(103, 8, seed=5, task_index=1)
    epoch = np.concatenate([order(p) for p in range(order.per_epoch)])
    assert sorted(epoch.tolist()) == list(range(103))  # every example once per epoch
    # position 20 (second epoch) from a fresh object equals the sequential walk's: resume sees the same batch
    walked = [order(p) for p in range(order.per_epoch, 2 * order.per_epoch)]
    np.testing.assert_array_equal(BatchOrder(103, 8, 5, 1)(20), walked[20 - order.per_epoch])
    assert not np.array_equal(order(0), order(order.per_epoch))  # epochs differ


def test_length_grouping_pads_less_and_keeps_epochs_complete() -> None:
    from xit.train import BatchOrder

    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(3.3, 0.5, size=2000).astype(int), 8, 256).tolist()  # XNLI-like spread

    def real_share(order: BatchOrder) -> float:
        batches = [order(p) for p in range(order.per_epoch)]
        real = sum(sum(lengths[i] for i in b) for b in batches)
        return real / sum(max(lengths[i] for i in b) * len(b) for b in batches)

    grouped = BatchOrder(2000, 32, 3, 0, lengths)
    epoch = np.concatenate([grouped(p) for p in range(grouped.per_epoch)])
    assert sorted(epoch.tolist()) == list(range(2000))
    assert real_share(grouped) >= 0.9 > real_share(BatchOrder(2000, 32, 3, 0)) + 0.2
    np.testing.assert_array_equal(BatchOrder(2000, 32, 3, 0, lengths)(70), grouped(70))  # resumable


def test_group_by_length_trains_repeatably_and_is_part_of_the_key_only_when_set(tiny_model_dir: Path,
                                                                                  tmp_path: Path) -> None:
    plain = parse_spec({"name": "k", "targets": ["demo-nli"]}, tmp_path / "s.yaml")
    grouped = parse_spec({"name": "k", "targets": ["demo-nli"],
                          "hparams": {"target": {"group_by_length": True}}}, tmp_path / "s.yaml")
    task = get_task("demo-nli")
    assert "group_by_length" not in plain.hparams_for(task, "target")  # older specs keep their stage keys
    assert grouped.hparams_for(task, "target")["group_by_length"] is True
    assert build_plan(plain).stages[-1].key != build_plan(grouped).stages[-1].key

    tok = load_tokenizer(tiny_model_dir)
    records, states = [], []
    for _ in range(2):
        jobs = [Job(j.task, {**j.hp, "group_by_length": True}, j.train_rows, j.dev_rows) for j in _jobs()]
        model = new_model(tiny_model_dir, [j.task for j in jobs])
        records.append(train(model, tok, jobs, seed=3, sampler={"kind": "proportional"}))
        states.append(model.state_dict())
    assert records[0] == records[1] and records[0]["steps"] == 12
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_dev_rows_are_featurised_once_per_training(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xit.formats import get_format

    fmt = get_format("classification")
    calls: list[bool] = []
    real = type(fmt).featurize

    def counting(self, rows, tokenizer, task, hp, train):
        calls.append(train)
        return real(self, rows, tokenizer, task, hp, train)

    monkeypatch.setattr(type(fmt), "featurize", counting)
    t = get_task("demo-nli")
    hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 2.0, "batch_size": 8, "evals_per_epoch": 2}
    rec = train(new_model(tiny_model_dir, [t]), load_tokenizer(tiny_model_dir),
                [Job(t, hp, t.load("en", "train")[:32], t.load("en", "dev")[:20])], seed=1, sampler={})
    assert len(rec["dev"]) == 4  # four evaluations...
    assert calls == [True, False]  # ...from one featurisation of the training rows and one of the dev rows


def test_training_steps_hand_device_values_to_telemetry_and_use_foreach_adamw(
        tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No per-step device sync: each step's loss reaches telemetry as a tensor (read when it pushes), with the
    numbers the record's running loss averages, and its token count as an int counted on the host from the
    features (the batch's real tokens, padding left out); AdamW runs in its foreach mode on CPU (fused on CUDA)."""
    kernels: list[dict] = []
    real_adamw = torch.optim.AdamW

    class Recording(real_adamw):
        def __init__(self, *args, **kwargs):
            kernels.append({k: kwargs.get(k) for k in ("foreach", "fused")})
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", Recording)

    class Telemetry:
        def __init__(self) -> None:
            self.steps: list[tuple[str, object, object]] = []

        def step(self, task, *, loss, lr, examples, tokens):
            self.steps.append((task, loss, tokens))

        def eval_score(self, *args) -> None:
            pass

    telemetry = Telemetry()
    t = get_task("demo-nli")
    hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 1.0, "batch_size": 8, "evals_per_epoch": 1}
    rows = t.load("en", "train")[:32]
    tok = load_tokenizer(tiny_model_dir)
    rec = train(new_model(tiny_model_dir, [t]), tok, [Job(t, hp, rows, t.load("en", "dev")[:8])], seed=1,
                sampler={}, telemetry=telemetry)
    assert kernels == [{"foreach": True, "fused": None}]
    assert len(telemetry.steps) == 4
    assert all(isinstance(loss, torch.Tensor) and type(n) is int for _, loss, n in telemetry.steps)
    assert rec["loss"] == [{"step": 4, "loss": sum(float(loss) for _, loss, _ in telemetry.steps) / 4}]
    from xit.formats import get_format

    feats = get_format(t.format).featurize(rows, tok, t, {**hp, "seed": 1}, train=True)
    assert sum(int(n) for _, _, n in telemetry.steps) == sum(len(f["input_ids"]) for f in feats)


def test_telemetry_tokens_count_every_sequence_a_step_encodes(tiny_model_dir: Path) -> None:
    """A dual encoder's step encodes each pair's query and candidate: both count as training tokens (only the
    queries' did, under-reporting tokens against the examples of the same steps); padding never counts."""
    from xit.formats import get_format
    from xit.tasks.registry import Task
    from xit.train import feature_tokens

    assert feature_tokens({"input_ids": [0, 5, 2, 1], "attention_mask": [1, 1, 1, 0]}) == 3
    assert feature_tokens({"input_ids": [[0, 5, 2], [0, 2]], "attention_mask": [[1, 1, 1], [1, 1]]}) == 5
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]
    rows = [{"query": f"what is {w}?", "candidate": f"{w} is the {i}th word " + " ".join(words[: i + 1])}
            for i, w in enumerate(words)]
    task = Task(name="pairs", format="dual_encoder", languages=("en",), metric="mrr", source="test",
                family="test", load_fn=lambda *a: [])
    hp = {**GLOBAL_HPARAMS, "epochs": 1.0, "batch_size": 3, "max_query_length": 16, "max_length": 32}

    tok = load_tokenizer(tiny_model_dir)
    counts = Counts()
    train(new_model(tiny_model_dir, [task]), tok, [Job(task, hp, rows, rows[:3])], seed=1, sampler={},
          telemetry=counts)
    feats = get_format("dual_encoder").featurize(rows, tok, task, {**hp, "seed": 1}, train=True)
    queries = sum(len(f["input_ids"]) for f in feats)
    candidates = sum(len(f["c_input_ids"]) for f in feats)
    assert [e for _, e, _, _ in counts.steps] == [3, 3]
    assert sum(n for _, _, n, _ in counts.steps) == queries + candidates and candidates > queries


def test_encoders_load_with_sdpa_attention_and_fall_back_without_it(tiny_model_dir: Path) -> None:
    from xit.modeling import _with_sdpa, load_encoder

    assert load_encoder(tiny_model_dir).config._attn_implementation == "sdpa"
    calls: list[dict] = []

    def eager_only(path: str, **kwargs):
        calls.append(kwargs)
        if "attn_implementation" in kwargs:
            raise ValueError("this architecture does not support an attention implementation of type sdpa")
        return path

    assert _with_sdpa(eager_only, "m", trust_remote_code=False) == "m"
    assert calls == [{"attn_implementation": "sdpa", "trust_remote_code": False}, {"trust_remote_code": False}]


# ------------------------------------------------------------------ accumulation, evaluation points, early stop


@pytest.mark.parametrize("field,value", [("grad_accum_steps", 8), ("eval_every_steps", 1000), ("patience", 30),
                                         ("compile", True)])
def test_recipe_hparams_are_part_of_the_key_only_when_set(tmp_path: Path, field: str, value: int) -> None:
    plain = parse_spec({"name": "k", "targets": ["demo-nli"]}, tmp_path / "s.yaml")
    spec = parse_spec({"name": "k", "targets": ["demo-nli"], "hparams": {"target": {field: value}}},
                      tmp_path / "s.yaml")
    task = get_task("demo-nli")
    assert field not in plain.hparams_for(task, "target")  # older specs keep their stage keys
    assert spec.hparams_for(task, "target")[field] == value
    keys = [{s.kind: s.key for s in build_plan(x).stages} for x in (plain, spec)]
    assert keys[0]["target"] != keys[1]["target"] and keys[0]["intermediate"] == keys[1]["intermediate"]


def test_gradient_accumulation_trains_as_one_larger_batch(tiny_model_dir: Path) -> None:
    """Two accumulated batches of 8 take the optimizer step one batch of 16 takes (same examples, mean loss)."""
    t = get_task("demo-nli")
    tok = load_tokenizer(tiny_model_dir)
    states, records = [], []
    for bs, accum in ((16, 1), (8, 2)):
        hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 1.0, "batch_size": bs, "grad_accum_steps": accum,
              "max_dev_examples": 8}
        model = no_dropout(new_model(tiny_model_dir, [t]))
        records.append(train(model, tok, [Job(t, hp, t.load("en", "train")[:48], t.load("en", "dev"))], seed=2,
                             sampler={}))
        states.append(model.state_dict())
    assert records[0]["steps"] == records[1]["steps"] == 3  # 48 examples / 16 a step
    assert records[1]["loss"][0]["loss"] == pytest.approx(records[0]["loss"][0]["loss"], rel=1e-5)
    for k in states[0]:
        torch.testing.assert_close(states[1][k], states[0][k], rtol=1e-4, atol=1e-5)


def test_one_process_training_without_telemetry_counts_no_tokens_or_loss_terms(
        tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Feature tokens are read by telemetry only and loss terms by ranks that split a batch: a one-process run
    without telemetry counts neither (both went over every training feature at the start of each run)."""
    import xit.train

    def unused(feature: dict) -> int:
        raise AssertionError("counted where nothing reads it")

    monkeypatch.setattr(xit.train, "feature_tokens", unused)
    monkeypatch.setattr(xit.train, "loss_terms", unused)
    t = get_task("demo-nli")
    hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 1.0, "batch_size": 8, "max_dev_examples": 8}
    record = train(new_model(tiny_model_dir, [t]), load_tokenizer(tiny_model_dir),
                   [Job(t, hp, t.load("en", "train")[:16], t.load("en", "dev"))], seed=1, sampler={})
    assert record["steps"] == 2


def test_compile_wraps_the_training_model_on_gpus_only(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """`compile: true` puts torch.compile around the module the training steps call, on CUDA; on CPU (where
    compiling a small model costs more than it saves) the option is accepted, said to be left out, and training
    gives the eager result. Compiling itself is not run here: the wiring is."""
    from xit.train import compiled

    calls: list[object] = []

    def fake_compile(module, **kwargs):  # noqa: ANN001, ANN003
        calls.append(module)
        return ("compiled", module)

    monkeypatch.setattr(torch, "compile", fake_compile)
    m = torch.nn.Linear(2, 2)
    assert compiled(m, {"compile": True}, torch.device("cuda")) == ("compiled", m) and calls == [m]
    assert compiled(m, {"compile": False}, torch.device("cuda")) is m
    assert compiled(m, {}, torch.device("cuda")) is m
    with caplog.at_level("INFO", logger="xit.train"):
        assert compiled(m, {"compile": True}, torch.device("cpu")) is m
    assert "GPUs only" in caplog.text and calls == [m]

    t = get_task("demo-nli")
    tok = load_tokenizer(tiny_model_dir)
    records = []
    for flag in (False, True):
        hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 1.0, "batch_size": 8, "max_dev_examples": 8, "compile": flag}
        records.append(train(new_model(tiny_model_dir, [t]), tok, [Job(t, hp, t.load("en", "train")[:16],
                                                                        t.load("en", "dev"))], seed=2, sampler={}))
    assert records[0] == records[1] and calls == [m]  # nothing compiled on CPU, the same training


def test_compile_must_be_a_boolean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    from fakes import one_line
    from test_cli_errors import cli

    (tmp_path / "s.yaml").write_text("name: k\ntargets: [demo-nli]\nhparams: {target: {compile: maybe}}\n")
    code, _, err = cli(monkeypatch, capsys, "validate", str(tmp_path / "s.yaml"))
    assert code == 2 and "hparams.target.compile" in one_line(err)
    (tmp_path / "s.yaml").write_text("name: k\ntargets: [demo-nli]\nhparams: {target: {compile: true}}\n")
    assert cli(monkeypatch, capsys, "validate", str(tmp_path / "s.yaml"))[0] == 0


def test_evaluation_points_and_early_stopping(tiny_model_dir: Path) -> None:
    from xit.train import evaluation_steps

    t = get_task("demo-nli")
    hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 1.0, "batch_size": 4, "max_dev_examples": 16}
    job = Job(t, {**hp, "eval_every_steps": 3}, [], [])
    assert evaluation_steps([job], 10) == {3, 6, 9, 10}  # every 3 steps and the last one
    assert evaluation_steps([Job(t, {**hp, "evals_per_epoch": 2}, [], [])], 10) == {5, 10}
    # An lr too small to change a prediction: the first evaluation stays the best, and with patience 2 training
    # stops at the second evaluation after it.
    still = {**hp, "lr": 1e-12, "eval_every_steps": 1, "patience": 2}
    rec = train(new_model(tiny_model_dir, [t]), load_tokenizer(tiny_model_dir),
                [Job(t, still, t.load("en", "train")[:40], t.load("en", "dev"))], seed=1, sampler={})
    assert rec["steps"] == 10 and rec["stopped_early"] == 3
    assert [d["step"] for d in rec["dev"]] == [1, 2, 3] and rec["best"]["step"] == 1


class _Killed(Exception):
    pass


class _KilledAfter(Checkpoints):
    """Saves like Checkpoints, then dies right after saving step `after` (a pod killed mid-training)."""

    def __init__(self, *a, after: int, **kw) -> None:  # noqa: ANN002, ANN003
        super().__init__(*a, **kw)
        self.after = after

    def save(self, step: int, *a) -> None:  # noqa: ANN002
        super().save(step, *a)
        if step == self.after:
            raise _Killed


def test_accumulation_and_early_stopping_resume_to_the_same_result(tiny_model_dir: Path, tmp_path: Path) -> None:
    t = get_task("demo-nli")
    tok = load_tokenizer(tiny_model_dir)
    hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 4.0, "batch_size": 4, "grad_accum_steps": 2, "lr": 1e-4,
          "eval_every_steps": 2, "patience": 3, "max_dev_examples": 24}

    def run(ckpt: Checkpoints | None) -> tuple[dict, dict]:
        model = new_model(tiny_model_dir, [t])
        rec = train(model, tok, [Job(t, hp, t.load("en", "train")[:24], t.load("en", "dev"))], seed=4, sampler={},
                    checkpoints=ckpt)
        return rec, model.state_dict()

    want, want_state = run(None)
    assert want["steps"] == 12 and want["stopped_early"] == 8  # 4 epochs x 6 batches / 2 a step; 3 evals w/o gain
    store = LocalStore(tmp_path)
    with pytest.raises(_Killed):
        run(_KilledAfter(store, "stages/k/checkpoint", 2, after=4))
    got, got_state = run(Checkpoints(store, "stages/k/checkpoint", 2))
    assert got.pop("resumed_from") == [4]
    assert got == want
    assert all(torch.equal(got_state[k], want_state[k]) for k in want_state)


def test_checkpoints_keep_and_restore_the_cuda_rng_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On GPUs the CUDA generators' state is saved beside the CPU one and restored on resume (checked here with
    torch.cuda's state functions standing in for a device)."""
    from xit.train import rng_state, set_rng_state

    device_state = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([4, 5], dtype=torch.uint8)]
    restored: list = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [x.clone() for x in device_state])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.extend(states))
    store = LocalStore(tmp_path)
    Checkpoints(store, "p", 1).save(1, {"w": torch.ones(1)}, None, {"optimizer": {}, **rng_state()}, {"record": {}})
    state = Checkpoints(store, "p", 1).load()["state"]
    cpu = torch.get_rng_state()
    torch.rand(3)  # the CPU generator moves on; restoring puts it back
    set_rng_state(state)
    assert torch.equal(torch.get_rng_state(), cpu)
    assert [x.tolist() for x in restored] == [[1, 2, 3], [4, 5]]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored.clear()
    set_rng_state(state)  # resumed without GPUs: the CPU part only
    assert restored == []


@pytest.mark.slow  # a whole sweep (or several stages) through the local runner
def test_a_sweep_runs_stages_of_different_precisions_in_one_process(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """accelerate keeps one state per process: a bf16 intermediate stage then a full-precision target stage
    in one local run must each get the precision asked for (it used to fail: "AcceleratorState has already
    been initialized")."""
    import accelerate

    from xit.runner import run_sweep

    small = {"epochs": 1, "max_train_examples": 16, "max_dev_examples": 8, "batch_size": 8, "max_eval_examples": 8}
    spec = parse_spec({"name": "prec", "intermediate": [["demo-nli"]], "targets": ["demo-para"],
                       "hparams": {"intermediate": {**small, "precision": "bf16"},
                                   "target": {**small, "precision": "no"}}}, tmp_path / "s.yaml")
    seen: list[tuple[str, str]] = []
    real = accelerate.Accelerator.__init__

    def recording(self, *a, **kw) -> None:  # noqa: ANN001
        real(self, *a, **kw)
        seen.append((kw.get("mixed_precision"), str(self.state.mixed_precision)))

    monkeypatch.setattr(accelerate.Accelerator, "__init__", recording)
    summary = run_sweep(spec, LocalStore(tmp_path / "store"), tmp_path / "out", show_progress=False)
    assert set(summary.statuses.values()) == {"done"}
    assert seen == [("bf16", "bf16"), ("no", "no")]
    assert (tmp_path / "out" / "results.csv").is_file()


@pytest.mark.slow  # a whole sweep (or several stages) through the local runner
def test_one_squad_model_is_evaluated_on_xquad_and_mlqa(tmp_path: Path, shared_data: Path) -> None:
    """The shared target stage trains once (head `squad`); XQuAD's and MLQA's evaluate stages both load it."""
    from test_xtreme_r import SQUAD_TRAIN, write_squad

    from xit.runner import run_sweep
    from xit.stage import read_metrics

    d = tmp_path / "squad"
    write_squad(d / "train-v1.1.json")
    write_squad(d / "dev-v1.1.json", SQUAD_TRAIN[1:])
    write_squad(d / "test-context-de-question-de.json", SQUAD_TRAIN[:1])  # an MLQA-format test file
    spec = parse_spec({"name": "qa", "targets": ["xquad", "mlqa"], "languages": {"xquad": ["de"], "mlqa": ["de"]},
                       "hparams": {"target": {"epochs": 1, "max_length": 256, "doc_stride": 64, "batch_size": 2,
                                              "max_eval_examples": 3}},
                       "data": {"xquad": {"data_dir": str(d), "data_files": {"de.test": str(shared_data / "xquad" /
                                                                                            "xquad.de.json")}},
                                "mlqa": {"data_dir": str(d)}}}, tmp_path / "s.yaml")
    store = LocalStore(tmp_path / "store")
    summary = run_sweep(spec, store, tmp_path / "report", show_progress=False)
    plan = summary.plan
    (target,) = plan.by_kind("target")
    assert target.params["task"] == "squad" and summary.statuses[target.key] == "done"
    assert read_metrics(store, target.key)["task"] == "squad"
    got = {s.params["task"]: read_metrics(store, s.key) for s in plan.by_kind("evaluate")}
    assert set(got) == {"xquad", "mlqa"}
    assert got["xquad"]["languages"]["de"]["n"] == 3 and got["mlqa"]["languages"]["de"]["n"] == 2
    assert all(0 <= m["score"] <= 100 for m in got.values())


def test_a_second_runner_on_one_machine_waits_and_skips_without_doing_the_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runners on one machine and one store: the second waits for the stage's machine lock, then finds
    the stage committed and skips it; the stage's body runs once."""
    import threading

    from xit import stage as stage_mod

    spec = parse_spec({"name": "one", "targets": ["demo-tatoeba"]}, tmp_path / "s.yaml")
    plan = build_plan(spec)
    store = LocalStore(tmp_path / "store")
    key = plan.stages[0].key
    real = stage_mod.BODIES["intermediate"]
    inside, second_waits = threading.Event(), threading.Event()
    calls: list[str] = []

    def body(stage, ctx, out) -> None:  # noqa: ANN001
        calls.append(threading.current_thread().name)
        inside.set()
        assert second_waits.wait(timeout=120), "the second runner never reached the lock"
        real(stage, ctx, out)

    monkeypatch.setitem(stage_mod.BODIES, "intermediate", body)
    monkeypatch.setattr(stage_mod, "_say_waiting", lambda k: second_waits.set())
    results: dict[str, str] = {}

    def runner(name: str) -> None:
        results[name] = run_stage(plan, key, store)

    first = threading.Thread(target=runner, args=("first",), name="first")
    first.start()
    assert inside.wait(timeout=120)
    second = threading.Thread(target=runner, args=("second",), name="second")
    second.start()
    first.join(timeout=300)
    second.join(timeout=300)
    assert results == {"first": "done", "second": "skipped"}
    assert calls == ["first"] and second_waits.is_set()
    assert check_commit(store, key) is None


def test_a_killed_runner_leaves_no_stage_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine lock is an flock: the kernel drops it with its process, so a runner killed with SIGKILL
    while holding a stage never blocks the next one."""
    from xit.scratch import machine_lock

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom xit.scratch import machine_lock\n"
                               "with machine_lock('stage x'):\n    print('held', flush=True)\n    time.sleep(600)"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        probe = subprocess.run([sys.executable, "-c", "import fcntl, pathlib, sys\n"
                                "[f] = pathlib.Path(sys.argv[1]).glob('xit-locks-*/*.lock')\n"
                                "h = open(f, 'a')\n"
                                "try:\n    fcntl.flock(h, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n"
                                "    sys.exit(3)", str(tmp_path)], env=env, check=False)
        assert probe.returncode == 3  # held by the live holder
    finally:
        holder.kill()
        holder.wait()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the holder's $TMPDIR: the same lock file
    waited: list[bool] = []
    with machine_lock("stage x", lambda: waited.append(True)):
        pass
    assert waited == []  # taken at once: the killed holder's lock went with it
