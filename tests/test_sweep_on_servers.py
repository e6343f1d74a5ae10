"""A whole sweep against the real things: the S3 API (moto's server), a Pushgateway and Prometheus.

The sweep runs through the CLI in child processes, as pods would: artifacts go to
``s3://xit-test/runs``, metrics to the Pushgateway, and Prometheus (scraping the gateway)
is asked for them over its HTTP API. Then the failures: the gateway unreachable, and a
corrupted object in the store.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import (
    AWS_ENV_UNSET,
    TEST_AWS_ENV,
    MotoS3,
    free_port,
    require_binary,
    start_prometheus,
    start_pushgateway,
    wait_for_series,
)

from xit.plan import build_plan
from xit.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "xit-test"
SPEC = """\
name: servers
intermediate: [[], [demo-nli]]
targets: [demo-tag, demo-tatoeba]
hparams:
  intermediate: {epochs: 1, max_train_examples: 300}
  target: {epochs: 1, max_train_examples: 300}
"""
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    s3 = MotoS3()
    require_binary("prometheus")
    tmp = tmp_path_factory.mktemp("servers")
    s3.start()
    gateway = start_pushgateway(tmp / "gw")
    prometheus = start_prometheus(tmp / "prom", gateway)
    environ = {**os.environ, **TEST_AWS_ENV, "XIT_S3_ENDPOINT": s3.endpoint, "XIT_CACHE": str(tmp / "cache"),
               "XIT_PUSHGATEWAY": gateway.url}
    for var in AWS_ENV_UNSET:
        environ.pop(var, None)
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    (tmp / "spec.yaml").write_text(SPEC)
    try:
        yield {"env": environ, "tmp": tmp, "s3": client, "prometheus": prometheus, "spec": tmp / "spec.yaml",
               "server": s3}
    finally:
        prometheus.stop()
        gateway.stop()
        s3.stop()


def xit(env: dict[str, Any], *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xit.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**env["env"], **extra}, timeout=900)


def _keys(client: Any, prefix: str) -> set[str]:
    out = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        out.update(o["Key"] for o in page.get("Contents", []))
    return out


@pytest.fixture(scope="module")
def sweep(env: dict[str, Any]) -> dict[str, Any]:
    out = env["tmp"] / "out"
    r = xit(env, "run", str(env["spec"]), "--store", f"s3://{BUCKET}/runs", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    return {"out": out, "plan": build_plan(load_spec(env["spec"])), "result": r}


def test_sweep_commits_every_stage_to_s3(env: dict[str, Any], sweep: dict[str, Any]) -> None:
    plan = sweep["plan"]
    keys = _keys(env["s3"], "runs/")
    for s in plan.stages:
        assert f"runs/stages/{s.key}/MANIFEST.json" in keys
        manifest = json.loads(env["s3"].get_object(Bucket=BUCKET, Key=f"runs/stages/{s.key}/MANIFEST.json")["Body"]
                              .read())
        assert {f"runs/stages/{s.key}/{manifest['attempt']}/{f}" for f in manifest["files"]} <= keys
    assert f"runs/sweeps/servers/{plan.sweep_id}/plan.json" in keys
    rows = list(csv.DictReader(open(sweep["out"] / "results.csv")))
    assert [(x["intermediate"], x["target"]) for x in rows] == [
        ("[]", "demo-tag"), ("[]", "demo-tatoeba"), ("[demo-nli]", "demo-tag"), ("[demo-nli]", "demo-tatoeba")]

    again = xit(env, "run", str(env["spec"]), "--store", f"s3://{BUCKET}/runs", "--out", str(env["tmp"] / "o2"),
                "--no-progress")
    assert again.returncode == 0 and f"0 stage(s) run, {len(plan.stages)} skipped" in again.stderr


def test_prometheus_has_the_sweeps_metrics(env: dict[str, Any], sweep: dict[str, Any]) -> None:
    plan = sweep["plan"]
    per_lang = list(csv.DictReader(open(sweep["out"] / "per_language.csv")))
    want = {x["language"]: float(x["score"]) for x in per_lang
            if (x["intermediate"], x["target"]) == ("[demo-nli]", "demo-tag")}
    stage = next(s for s in plan.by_kind("evaluate") if s.label.startswith("evaluate demo-tag from [demo-nli]"))
    series = wait_for_series(env["prometheus"], f'xit_eval_score{{sweep="servers",stage="{stage.key}"}}')
    got = {s["metric"]["language"]: float(s["value"][1]) for s in series}
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k], abs=1e-3) for k in want)
    assert {s["metric"]["metric"] for s in series} == {"f1"}

    inter = next(s for s in plan.by_kind("intermediate") if s.params["tasks"])
    steps = wait_for_series(env["prometheus"], f'xit_steps_total{{stage="{inter.key}",task="demo-nli"}}')
    assert float(steps[0]["value"][1]) == math.ceil(300 / 16)  # one epoch of 300 examples in batches of 16
    done = wait_for_series(env["prometheus"], 'sum(xit_stage_status{sweep="servers",status="done"})')
    assert float(done[0]["value"][1]) == len(plan.stages)  # a later run that skips them pushes nothing over them


def test_unreachable_pushgateway_costs_a_warning_not_the_sweep(env: dict[str, Any]) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    r = xit(env, "run", str(env["spec"]), "--store", str(env["tmp"] / "local-store"), "--out",
            str(env["tmp"] / "o3"), "--no-progress", XIT_PUSHGATEWAY=closed)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Pushgateway" in r.stderr or "pushgateway" in r.stderr
    assert (env["tmp"] / "o3" / "results.csv").exists()


def test_corrupted_object_is_named_then_rebuilt(env: dict[str, Any], sweep: dict[str, Any]) -> None:
    plan, s3 = sweep["plan"], env["s3"]
    inter = next(s for s in plan.by_kind("intermediate") if s.params["tasks"])
    target = next(s for s in plan.by_kind("target") if s.inputs == [inter.key])
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=f"runs/stages/{inter.key}/MANIFEST.json")["Body"].read())
    weights = f"runs/stages/{inter.key}/{manifest['attempt']}/model/encoder/model.safetensors"
    head = s3.head_object(Bucket=BUCKET, Key=weights)
    s3.put_object(Bucket=BUCKET, Key=weights, Body=b"not the weights", Metadata=head["Metadata"])  # same sha256 tag
    s3.delete_object(Bucket=BUCKET, Key=f"runs/stages/{target.key}/MANIFEST.json")  # the target must read it again

    (env["tmp"] / "plan.json").write_text(plan.to_json())
    fresh_cache = str(env["tmp"] / "cache-2")
    r = xit(env, "stage", "run", "--plan", str(env["tmp"] / "plan.json"), "--key", target.key, "--store",
            f"s3://{BUCKET}/runs", "--no-progress", XIT_CACHE=fresh_cache)
    assert r.returncode == 1  # a failure during work, not bad input
    assert "checksum mismatch" in r.stderr and "model/encoder/model.safetensors" in r.stderr and inter.key in r.stderr
    assert f"runs/stages/{inter.key}/MANIFEST.json" not in _keys(s3, f"runs/stages/{inter.key}/")

    out = env["tmp"] / "o4"
    r = xit(env, "run", str(env["spec"]), "--store", f"s3://{BUCKET}/runs", "--out", str(out), "--no-progress",
            XIT_CACHE=fresh_cache)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 stage(s) run" in r.stderr  # the corrupt intermediate and the target, nothing else
    # Deterministic training rebuilds exactly what was there.
    assert (out / "per_language.csv").read_text() == (sweep["out"] / "per_language.csv").read_text()


def test_s3_down_mid_stage_then_back(env: dict[str, Any], sweep: dict[str, Any]) -> None:
    """The endpoint goes away for a few seconds while a stage runs; the stage retries and commits."""
    import threading
    import time

    plan = sweep["plan"]
    retrieval = next(s for s in plan.by_kind("retrieval") if s.inputs == [plan.stages[0].key])
    s3, server = env["s3"], env["server"]
    s3.delete_object(Bucket=BUCKET, Key=f"runs/stages/{retrieval.key}/MANIFEST.json")
    (env["tmp"] / "plan.json").write_text(plan.to_json())
    proc = subprocess.Popen(
        [sys.executable, "-m", "xit.cli", "stage", "run", "--plan", str(env["tmp"] / "plan.json"), "--key",
         retrieval.key, "--store", f"s3://{BUCKET}/runs", "--no-progress"],
        cwd=ROOT, env={**env["env"], "XIT_CACHE": str(env["tmp"] / "cache-outage")}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the stage is reading its input encoder / embedding by now
    server.stop()
    restart = threading.Timer(4.0, server.start)
    restart.start()
    out, err = proc.communicate(timeout=300)
    restart.join()
    assert proc.returncode == 0, err[-3000:]
    assert out.startswith("done:")
    assert f"runs/stages/{retrieval.key}/MANIFEST.json" in _keys(s3, f"runs/stages/{retrieval.key}/")


def test_s3_upload_failing_part_way_leaves_no_commit(env: dict[str, Any], sweep: dict[str, Any],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from xit.stage import is_committed, run_stage
    from xit.store.s3 import S3Store

    for k, v in env["env"].items():
        if k.startswith(("AWS_", "XIT_")):
            monkeypatch.setenv(k, v)
    plan = sweep["plan"]
    base = plan.stages[0]
    store = S3Store(f"s3://{BUCKET}/partial")
    real_put, calls = S3Store.put_file, []

    def dies_after_one(self: S3Store, src: Path, key: str) -> None:
        calls.append(key)
        if len(calls) > 1:
            raise ConnectionError("pod evicted mid-upload")
        real_put(self, src, key)

    monkeypatch.setattr(S3Store, "put_file", dies_after_one)
    with pytest.raises(ConnectionError):
        run_stage(plan, base.key, store)
    assert store.list(f"stages/{base.key}") and not is_committed(store, base.key)
    monkeypatch.setattr(S3Store, "put_file", real_put)
    assert run_stage(plan, base.key, store) == "done"
    manifest = json.loads(store.read_text(f"stages/{base.key}/MANIFEST.json"))
    assert {k.split("/")[2] for k in store.list(f"stages/{base.key}")} == {manifest["attempt"], "MANIFEST.json"}
