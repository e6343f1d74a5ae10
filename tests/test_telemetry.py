"""Telemetry against a real Pushgateway and Prometheus (started as subprocesses by tests/servers.py).

Without the binaries the server tests skip (fail under CI=true); the others run anywhere.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from servers import (
    Server,
    free_port,
    http_get,
    prometheus_query,
    start_prometheus,
    start_pushgateway,
    wait_for_series,
)

import xit.telemetry
from xit.telemetry import Telemetry

GROUPING = ("job", "sweep", "stage", "kind")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_pushgateway(tmp_path_factory.mktemp("pushgateway"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, pushgateway: Server) -> Iterator[Server]:
    server = start_prometheus(tmp_path_factory.mktemp("prometheus"), pushgateway)
    yield server
    server.stop()


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "xit.telemetry" and r.levelno >= logging.WARNING]


def gateway_samples(gateway: Server, sweep: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The gateway's ``xit_*`` samples of ``sweep``: (name, sorted non-grouping labels) -> value.

    Checks on the way that every sample carries the full grouping key.
    """
    status, body = http_get(f"{gateway.url}/metrics")
    assert status == 200
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    stages: set[tuple[str, ...]] = set()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if not sample.name.startswith("xit_") or sample.labels.get("sweep") != sweep:
                continue
            assert all(k in sample.labels for k in GROUPING), sample
            stages.add(tuple(sample.labels[k] for k in GROUPING))
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k not in (*GROUPING, "instance")))
            samples[(sample.name, labels)] = sample.value
    assert len(stages) <= 1, f"one group per sweep in these tests, got {stages}"
    return samples


def grouping_of(gateway: Server, sweep: str) -> set[tuple[str, ...]]:
    _, body = http_get(f"{gateway.url}/metrics")
    return {
        tuple(s.labels[k] for k in GROUPING)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name.startswith("xit_") and s.labels.get("sweep") == sweep
    }


def training_run(telemetry: Telemetry, clock: FakeClock) -> None:
    """Eight steps half a second apart on two tasks, then four scores."""
    plan = ["demo-qa", "demo-tag", "demo-qa", "demo-tag", "demo-qa", "demo-qa", "demo-tag", "demo-qa"]
    losses = {"demo-qa": [2.0, 1.5, 1.25, 1.0, 0.75], "demo-tag": [3.0, 2.5, 2.25]}
    lrs = {"demo-qa": [0.001, 0.0008, 0.0006, 0.0004, 0.0002], "demo-tag": [0.002, 0.001, 0.0005]}
    for i, task in enumerate(plan):
        if i:
            clock.advance(0.5)
        examples, tokens = (8, 256) if task == "demo-qa" else (16, 512)
        telemetry.step(task, loss=losses[task].pop(0), lr=lrs[task].pop(0), examples=examples, tokens=tokens)
    telemetry.eval_score("demo-qa", "pig", "f1", 87.5)
    telemetry.eval_score("demo-qa", "pig", "exact_match", 75.0)
    telemetry.eval_score("demo-tag", "pig", "f1", 62.25)
    telemetry.eval_score("demo-qa", "en", "f1", 90.0)
    telemetry.eval_score("demo-qa", "pig", "f1", 88.0)  # a later score replaces the earlier one


STATUS = ("running", "done", "failed", "skipped")


def status_samples(current: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {("xit_stage_status", (("status", s),)): 1.0 if s == current else 0.0 for s in STATUS}


def test_pushgateway_holds_exact_values(pushgateway: Server) -> None:
    clock = FakeClock()
    sweep = "exact"
    t = Telemetry(pushgateway.url, sweep=sweep, stage_key="intermediate-3f2a9c", kind="intermediate", clock=clock)
    training_run(t, clock)
    assert t.pushes == 1, "the first step pushes, the rest fall within the 15 s interval"

    # The first push carried the state after one step, status running.
    first = gateway_samples(pushgateway, sweep)
    assert first[("xit_steps_total", (("task", "demo-qa"),))] == 1
    assert ("xit_steps_total", (("task", "demo-tag"),)) not in first
    assert {k: v for k, v in first.items() if k[0] == "xit_stage_status"} == status_samples("running")
    assert not [k for k in first if k[0] in ("xit_examples_per_second", "xit_eval_score")]

    before = time.time()
    t.finish("done", 42.5)
    after = time.time()
    assert t.pushes == 2
    samples = gateway_samples(pushgateway, sweep)
    pushed_at = samples.pop(("xit_stage_last_push_timestamp_seconds", ()))
    assert before <= pushed_at <= after
    qa, tag = (("task", "demo-qa"),), (("task", "demo-tag"),)
    assert samples == {
        ("xit_steps_total", qa): 5,
        ("xit_steps_total", tag): 3,
        ("xit_examples_total", qa): 40,
        ("xit_examples_total", tag): 48,
        ("xit_tokens_total", qa): 1280,
        ("xit_tokens_total", tag): 1536,
        ("xit_loss", qa): 0.75,
        ("xit_loss", tag): 2.25,
        ("xit_learning_rate", qa): 0.0002,
        ("xit_learning_rate", tag): 0.0005,
        # qa: the stage's first step is untimed, 4 more x 8 examples in 4 x 0.5 s; tag: 3 x 16 in 1.5 s
        ("xit_examples_per_second", qa): 16.0,
        ("xit_examples_per_second", tag): 32.0,
        ("xit_eval_score", (("language", "pig"), ("metric", "f1"), ("task", "demo-qa"))): 88.0,
        ("xit_eval_score", (("language", "pig"), ("metric", "exact_match"), ("task", "demo-qa"))): 75.0,
        ("xit_eval_score", (("language", "pig"), ("metric", "f1"), ("task", "demo-tag"))): 62.25,
        ("xit_eval_score", (("language", "en"), ("metric", "f1"), ("task", "demo-qa"))): 90.0,
        ("xit_stage_duration_seconds", ()): 42.5,
        **status_samples("done"),
    }
    assert grouping_of(pushgateway, sweep) == {("xit", "exact", "intermediate-3f2a9c", "intermediate")}


def test_prometheus_scrapes_the_pushed_scores(pushgateway: Server, prometheus: Server) -> None:
    sweep = "scraped"
    train = Telemetry(pushgateway.url, sweep=sweep, stage_key="target-77b1", kind="target", clock=FakeClock())
    training_run(train, FakeClock())
    train.finish("done", 3.0)
    # An evaluate stage pushes scores only: its training families are empty, which the gateway accepts.
    evaluate = Telemetry(pushgateway.url, sweep=sweep, stage_key="evaluate-01c4", kind="evaluate")
    evaluate.eval_score("demo-qa", "pig", "f1", 55.5)
    evaluate.finish("done", 1.0)
    assert (train.pushes, evaluate.pushes) == (2, 2)

    result = wait_for_series(prometheus, f'xit_eval_score{{task="demo-qa",language="pig",sweep="{sweep}"}}')
    by_stage = {(r["metric"]["stage"], r["metric"]["metric"]): float(r["value"][1]) for r in result}
    assert by_stage == {
        ("target-77b1", "f1"): 88.0,
        ("target-77b1", "exact_match"): 75.0,
        ("evaluate-01c4", "f1"): 55.5,
    }
    labels = next(r["metric"] for r in result if r["metric"]["stage"] == "evaluate-01c4")
    # honor_labels: the pushed job label wins over the scrape job's "pushgateway"
    expected = {"job": "xit", "sweep": sweep, "stage": "evaluate-01c4", "kind": "evaluate"}
    assert {k: labels[k] for k in GROUPING} == expected

    steps = prometheus_query(prometheus, f'xit_steps_total{{sweep="{sweep}"}}')
    assert {r["metric"]["task"]: float(r["value"][1]) for r in steps} == {"demo-qa": 5.0, "demo-tag": 3.0}
    done = prometheus_query(prometheus, f'sum by (kind) (xit_stage_status{{sweep="{sweep}",status="done"}})')
    assert {r["metric"]["kind"]: float(r["value"][1]) for r in done} == {"target": 1.0, "evaluate": 1.0}


def test_unreachable_gateway_warns_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="xit.telemetry")
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    t = Telemetry(url, sweep="down", stage_key="s1", kind="target", push_interval_s=0)
    for i in range(30):
        t.step("demo-qa", loss=1.0 / (i + 1), lr=1e-3, examples=4, tokens=64)
    for _ in range(5):
        t.eval_score("demo-qa", "pig", "f1", 50.0)
        t.push(force=True)
    t.finish("failed", 1.0)
    assert time.monotonic() - start < 10
    assert t.pushes == 0
    warned = warnings_of(caplog)
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert url in warned[0].getMessage() and "s1" in warned[0].getMessage()
    quiet = [r for r in caplog.records if r.name == "xit.telemetry" and r.levelno == logging.DEBUG]
    assert len(quiet) == 30 + 10 + 1 - 1, "every push was tried; all failures but the first are logged at debug"

    # One warning per Telemetry: the next stage's telemetry reports its own failure.
    Telemetry(url, sweep="down", stage_key="s2", kind="target").finish("done", 1.0)
    assert len(warnings_of(caplog)) == 2


class _Failing(BaseHTTPRequestHandler):
    """A gateway that answers every push with 503."""

    requests: list[str] = []

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Failing.requests.append(self.path)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_erroring_gateway_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Failing.requests.clear()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        t = Telemetry(url, sweep="a/b", stage_key="s", kind="target", push_interval_s=0)
        for _ in range(10):
            t.step("demo-qa", loss=1.0, lr=1e-3, examples=4, tokens=64)
        t.finish("done", 1.0)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Failing.requests) == 11, "every push was tried"
    # Grouping values with a slash travel base64-encoded, as the gateway's API asks.
    assert _Failing.requests[0] == "/metrics/job/xit/kind/target/stage/s/sweep@base64/YS9i"
    warned = warnings_of(caplog)
    assert len(warned) == 1 and "503" in warned[0].getMessage()


def test_silent_gateway_times_out(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        t = Telemetry(url, sweep="x", stage_key="s", kind="target", timeout_s=0.5)
        start = time.monotonic()
        t.finish("done", 1.0)
        assert time.monotonic() - start < 3
    assert Telemetry(None, sweep="x", stage_key="s", kind="target").timeout_s == 3.0
    assert len(warnings_of(caplog)) == 1


def test_restarted_gateway_gets_the_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = start_pushgateway(tmp_path)
    attempts: list[float] = []
    real_push = xit.telemetry.push_to_gateway

    def spy(*args: Any, **kwargs: Any) -> None:
        attempts.append(clock.now)
        real_push(*args, **kwargs)

    monkeypatch.setattr(xit.telemetry, "push_to_gateway", spy)
    clock = FakeClock(0.0)
    t = Telemetry(gateway.url, sweep="restart", stage_key="s", kind="intermediate", clock=clock)

    def step() -> None:
        t.step("demo-qa", loss=1.0, lr=1e-3, examples=2, tokens=10)

    try:
        step()
        assert t.pushes == 1
        gateway.stop()
        clock.advance(16)
        step()  # due: tried, fails, the one warning
        clock.advance(1)
        step()  # within the back-off: not tried
        t.push(force=True)  # tried, fails quietly
        assert len(warnings_of(caplog)) == 1 and t.pushes == 1
        gateway.start()  # same port, empty: it keeps metrics in memory only
        assert gateway_samples(gateway, "restart") == {}
        clock.advance(20)
        step()  # 20 s since the last try, the back-off is now 30 s: not tried
        clock.advance(11)
        step()  # tried, works
        assert attempts == [0.0, 16.0, 17.0, 48.0]
        assert t.pushes == 2
        samples = gateway_samples(gateway, "restart")
        assert samples[("xit_steps_total", (("task", "demo-qa"),))] == 5, "all steps, those of the outage too"
        assert samples[("xit_stage_status", (("status", "running"),))] == 1
        t.finish("failed", 48.0)
        samples = gateway_samples(gateway, "restart")
        assert samples[("xit_stage_status", (("status", "failed"),))] == 1
        assert samples[("xit_stage_status", (("status", "running"),))] == 0
        assert samples[("xit_stage_duration_seconds", ())] == 48.0
        assert len(warnings_of(caplog)) == 1
    finally:
        gateway.stop()


def fake_push(attempts: list[float], clock: FakeClock, fail: bool) -> Callable[..., None]:
    def push(*args: Any, **kwargs: Any) -> None:
        attempts.append(clock.now)
        if fail:
            raise OSError("down")

    return push


def test_pushes_are_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, attempts = FakeClock(0.0), []
    monkeypatch.setattr(xit.telemetry, "push_to_gateway", fake_push(attempts, clock, fail=False))
    t = Telemetry("http://127.0.0.1:1", sweep="s", stage_key="k", kind="target", push_interval_s=10, clock=clock)
    for _ in range(25):
        t.step("demo-qa", loss=1.0, lr=1e-3, examples=1, tokens=1)
        t.eval_score("demo-qa", "pig", "f1", 1.0)
        clock.advance(1)
    assert attempts == [0.0, 10.0, 20.0]
    t.push(force=True)
    t.finish("done", 25.0)
    assert attempts == [0.0, 10.0, 20.0, 25.0, 25.0]


def test_failing_pushes_back_off(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    clock, attempts = FakeClock(0.0), []
    monkeypatch.setattr(xit.telemetry, "push_to_gateway", fake_push(attempts, clock, fail=True))
    t = Telemetry("http://127.0.0.1:1", sweep="s", stage_key="k", kind="target", push_interval_s=10, clock=clock)
    for _ in range(400):
        t.step("demo-qa", loss=1.0, lr=1e-3, examples=1, tokens=1)
        clock.advance(1)
    assert attempts == [0.0, 10.0, 30.0, 70.0, 150.0, 270.0, 390.0]  # waits 10, 20, 40, 80, then 120 at most
    assert len(warnings_of(caplog)) == 1


def test_exposition_has_exactly_the_documented_series(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(xit.telemetry, "push_to_gateway", fake_push([], clock, fail=False))
    t = Telemetry("http://127.0.0.1:1", sweep="s", stage_key="k", kind="target", clock=clock)
    t.step("demo-qa", loss=1.0, lr=1e-3, examples=1, tokens=1)
    t.eval_score("demo-qa", "pig", "f1", 1.0)
    assert t.registry is not None
    text = generate_latest(t.registry).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    assert names == {
        "xit_steps_total",
        "xit_examples_total",
        "xit_tokens_total",
        "xit_loss",
        "xit_learning_rate",
        "xit_eval_score",
        "xit_stage_duration_seconds",
        "xit_stage_status",
        "xit_stage_last_push_timestamp_seconds",
    }  # xit_examples_per_second appears from the second step on; no *_created series
    assert "# TYPE xit_steps_total counter" in text and "# TYPE xit_loss gauge" in text


def test_disabled_telemetry_makes_no_network_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("disabled telemetry touched the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(xit.telemetry, "push_to_gateway", no_network)
    monkeypatch.delenv("XIT_PUSHGATEWAY", raising=False)
    disabled = [
        Telemetry.from_env(sweep="s", stage_key="k", kind="target"),
        Telemetry(None, sweep="s", stage_key="k", kind="target"),
    ]
    monkeypatch.setenv("XIT_PUSHGATEWAY", "")
    disabled.append(Telemetry.from_env(sweep="s", stage_key="k", kind="target"))
    for t in disabled:
        assert not t.enabled and t.registry is None
        for _ in range(100):
            t.step("demo-qa", loss=1.0, lr=1e-3, examples=1, tokens=1)
            t.eval_score("demo-qa", "pig", "f1", 1.0)
            t.push(force=True)
        t.finish("done", 1.0)
        assert t.pushes == 0


def test_from_env_and_status_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XIT_PUSHGATEWAY", "http://gateway.example:9091")
    t = Telemetry.from_env(sweep="s", stage_key="k", kind="target")
    assert t.enabled and t.url == "http://gateway.example:9091"
    assert t.grouping_key == {"sweep": "s", "stage": "k", "kind": "target"}
    assert Telemetry.from_env(sweep="s", stage_key="k", kind="target", url="http://127.0.0.1:9").url == (
        "http://127.0.0.1:9"
    )
    for telemetry in (t, Telemetry(None, sweep="s", stage_key="k", kind="target")):
        with pytest.raises(ValueError, match="unknown stage status"):
            telemetry.finish("exploded", 1.0)


def test_device_tensors_are_read_at_push_time_with_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training loop hands `step` its loss and token count as device tensors (no sync per step): the pushed
    series equal those of plain numbers, and nothing reads a tensor's value until a push collects the metrics."""
    import torch

    reads: list[str] = []

    class Watched(torch.Tensor):  # counts value reads (a device sync on a GPU)
        def __float__(self) -> float:
            reads.append("float")
            return super().__float__()

        def __int__(self) -> int:
            reads.append("int")
            return super().__int__()

    def lines(t: Telemetry) -> list[str]:
        assert t.registry is not None
        keep = ("xit_tokens_total", "xit_loss", "xit_steps_total", "xit_examples_total", "xit_learning_rate")
        return sorted(x for x in generate_latest(t.registry).decode().splitlines() if x.startswith(keep))

    clock = FakeClock()
    monkeypatch.setattr(xit.telemetry, "push_to_gateway", fake_push([], clock, fail=False))
    plain = Telemetry("http://127.0.0.1:1", sweep="s", stage_key="k", kind="target", clock=clock)
    lazy = Telemetry("http://127.0.0.1:1", sweep="s", stage_key="k", kind="target", push_interval_s=1e9,
                     clock=clock)
    lazy.push(force=True)  # the next pushes fall within the interval
    steps = [("demo-qa", 2.5, 37), ("demo-tag", 1.25, 12), ("demo-qa", 0.75, 40)]
    for task, loss, tokens in steps:
        plain.step(task, loss=loss, lr=1e-3, examples=4, tokens=tokens)
        lazy.step(task, loss=torch.tensor(loss, dtype=torch.float64).as_subclass(Watched), lr=1e-3, examples=4,
                  tokens=torch.tensor(tokens).as_subclass(Watched))
    assert reads == []
    assert lines(lazy) == lines(plain)
    assert "xit_tokens_total{task=\"demo-qa\"} 77.0" in lines(lazy) and "xit_loss{task=\"demo-qa\"} 0.75" in lines(lazy)
    assert reads, "the tensors were read when the metrics were collected"


def test_report_step_deletes_the_sweeps_groups_from_the_gateway(pushgateway: Server,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Once a sweep's report is written its stages' groups go (no series kept forever); other sweeps' stay."""
    from xit.telemetry import delete_sweep_groups

    stages = [("intermediate-1a", "intermediate"), ("target-2b", "target")]
    for sweep in ("finished", "still-running"):
        for key, kind in stages:
            Telemetry(pushgateway.url, sweep=sweep, stage_key=key, kind=kind).finish("done", 1.0)
    assert len(grouping_of(pushgateway, "finished")) == 2
    # A stage another sweep ran (pushed under that sweep) and one never pushed: deleting them is harmless.
    assert delete_sweep_groups("finished", [*stages, ("evaluate-3c", "evaluate")], url=pushgateway.url) == 3
    assert grouping_of(pushgateway, "finished") == set()
    assert len(grouping_of(pushgateway, "still-running")) == 2
    assert delete_sweep_groups("finished", stages, url=None) == 0  # no gateway configured: nothing to do
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert delete_sweep_groups("x", stages, url=dead, timeout_s=1) == 0
    assert len(warnings_of(caplog)) == 1
