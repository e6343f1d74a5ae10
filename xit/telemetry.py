"""Live metrics of a running stage, pushed to a Prometheus Pushgateway.

A stage is a batch job: it lives for minutes, so Prometheus cannot scrape it. Instead each stage
holds one `Telemetry`, which keeps the stage's metrics in its own `CollectorRegistry` and pushes
them (HTTP PUT: the push replaces the stage's group) to the Pushgateway named by `XIT_PUSHGATEWAY`;
Prometheus scrapes the gateway with `honor_labels: true`.

Metrics (all exposed as ``xit_*``):

===================================== ======= ======================== ====================================
name                                  type    labels                   meaning
===================================== ======= ======================== ====================================
xit_steps_total                       counter task                     optimizer steps taken
xit_examples_total                    counter task                     training examples consumed
xit_tokens_total                      counter task                     training tokens consumed
xit_loss                              gauge   task                     loss of the last step
xit_learning_rate                     gauge   task                     learning rate of the last step
xit_examples_per_second               gauge   task                     training throughput (see `step`)
xit_eval_score                        gauge   task, language, metric   last evaluation score, 0..100
xit_stage_duration_seconds            gauge                            seconds since start; final at finish
xit_stage_status                      gauge   status                   1 for the current status, 0 otherwise
xit_stage_last_push_timestamp_seconds gauge                            Unix time of the push carrying it
===================================== ======= ======================== ====================================

Grouping key: ``job="xit"``, ``sweep=<sweep>``, ``stage=<stage key>``, ``kind=<stage kind>``. The
gateway attaches these labels to every series of the group. The stage key names the group (so one
stage's pushes replace each other and stages never clobber one another); ``kind`` rides along in the
key because it is a function of the stage (it adds no series and no group) and, being on every
series, lets a query select e.g. ``xit_loss{kind="intermediate"}`` without a join. Series labels
stay low-cardinality: task, language, metric and status only.

Telemetry never fails the stage: a Pushgateway that is down, slow or answering errors costs one
logged warning per `Telemetry` (later failures are logged at debug level), pushes time out after
a few seconds, and later pushes keep trying, rate-limited and backing off while the gateway is
down, so a restarted gateway gets the data. Without a URL every method is a cheap no-op.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, delete_from_gateway, push_to_gateway
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

ENV_URL = "XIT_PUSHGATEWAY"
"""Environment variable holding the Pushgateway URL (``http://host:9091`` or ``host:9091``)."""

JOB = "xit"
STATUSES = ("running", "done", "failed", "skipped")
DEFAULT_PUSH_INTERVAL_S = 15.0
DEFAULT_TIMEOUT_S = 3.0
MAX_BACKOFF_S = 120.0
"""While the gateway fails, the wait between attempts doubles from the push interval up to this."""


class _TaskStats:
    """Training figures of one task within a stage."""

    __slots__ = ("steps", "examples", "tokens", "pending_tokens", "loss", "lr", "timed_examples", "timed_seconds")

    def __init__(self) -> None:
        self.steps = 0
        self.examples = 0
        self.tokens = 0
        self.pending_tokens: Any = None  # a device tensor summing the steps' token counts not read yet
        self.loss: Any = math.nan  # a float, or the last step's loss as a device tensor not read yet
        self.lr = math.nan
        self.timed_examples = 0  # examples of the steps that have a duration (all but the stage's first)
        self.timed_seconds = 0.0


class _StageCollector(Collector):
    """Builds the metric families from a `Telemetry`'s state at collect (push) time.

    A custom collector rather than `Counter`/`Gauge` objects: it exposes exactly the series listed
    in the module docstring (no ``*_created`` series) and reads one consistent snapshot under the lock.
    """

    def __init__(self, telemetry: Telemetry) -> None:
        self._t = telemetry

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def collect(self) -> Iterator[Metric]:
        return iter(self._t._families())


class Telemetry:
    """Pushes a stage's metrics to a Prometheus Pushgateway; never fails the stage.

    Call `step` after each optimizer step and `eval_score` for each score; both push when the last
    push is at least ``push_interval_s`` old. `finish` records the outcome and pushes at once.
    ``url=None`` (or ``""``) disables everything: no registry, no thread, no socket.

    ``clock`` (monotonic seconds) is for tests; ``timeout_s`` bounds one push.
    """

    def __init__(
        self,
        url: str | None,
        *,
        sweep: str,
        stage_key: str,
        kind: str,
        push_interval_s: float = DEFAULT_PUSH_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url or None
        self.grouping_key = {"sweep": sweep, "stage": stage_key, "kind": kind}
        self.push_interval_s = max(0.0, float(push_interval_s))
        self.timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.RLock()
        self._tasks: dict[str, _TaskStats] = {}
        self._scores: dict[tuple[str, str, str], float] = {}
        self._status = "running"
        self._duration: float | None = None  # set by finish; until then the elapsed time is reported
        self._started = clock()
        self._last_step: float | None = None
        self._last_attempt: float | None = None  # monotonic time of the last push attempt
        self._failures = 0  # consecutive failed pushes
        self._warned = False
        self._push_wall_time = math.nan
        self.pushes = 0  # successful pushes, for callers and tests
        self.registry: CollectorRegistry | None = None
        if self.url is not None:
            self.registry = CollectorRegistry(auto_describe=False)
            self.registry.register(_StageCollector(self))

    @classmethod
    def from_env(
        cls,
        *,
        sweep: str,
        stage_key: str,
        kind: str,
        url: str | None = None,
        push_interval_s: float = DEFAULT_PUSH_INTERVAL_S,
    ) -> Telemetry:
        """A `Telemetry` pushing to ``url``, else to ``$XIT_PUSHGATEWAY``; disabled when both are unset or empty."""
        return cls(
            url or os.environ.get(ENV_URL) or None,
            sweep=sweep,
            stage_key=stage_key,
            kind=kind,
            push_interval_s=push_interval_s,
        )

    @property
    def enabled(self) -> bool:
        """Whether this telemetry pushes anywhere."""
        return self.url is not None

    def step(self, task: str, *, loss: float, lr: float, examples: int, tokens: int) -> None:
        """Record one optimizer step on ``task``, then push if the last push is old enough.

        ``xit_examples_per_second`` is the task's examples over the time its steps took, each step
        timed from the previous `step` call of this stage (any task); the stage's first step has no
        such start and is left out of the rate, so model loading does not count as training time.

        ``loss`` and ``tokens`` may be 0-d device tensors (torch): they are kept as they are and read when the
        metrics are pushed, so a training step does not wait for the device to report them.
        """
        if self.url is None:
            return
        if examples < 0 or (not _is_tensor(tokens) and tokens < 0):
            raise ValueError(f"examples and tokens must be >= 0, got examples={examples}, tokens={tokens}")
        with self._lock:
            now = self._clock()
            stats = self._tasks.get(task)
            if stats is None:
                stats = self._tasks[task] = _TaskStats()
            stats.steps += 1
            stats.examples += int(examples)
            if _is_tensor(tokens):
                pending = tokens.detach().clone()
                stats.pending_tokens = pending if stats.pending_tokens is None else stats.pending_tokens + pending
            else:
                stats.tokens += int(tokens)
            stats.loss = loss.detach().clone() if _is_tensor(loss) else float(loss)
            stats.lr = float(lr)
            if self._last_step is not None:
                stats.timed_examples += int(examples)
                stats.timed_seconds += max(0.0, now - self._last_step)
            self._last_step = now
        self.push()

    def eval_score(self, task: str, language: str, metric: str, value: float) -> None:
        """Record an evaluation score (0..100) of ``task`` in ``language``, then push if due."""
        if self.url is None:
            return
        with self._lock:
            self._scores[(task, language, metric)] = float(value)
        self.push()

    def push(self, force: bool = False) -> None:
        """Push the current metrics, unless the last attempt is younger than the push interval.

        ``force`` pushes now. After failures the interval doubles (up to two minutes) until a push
        succeeds again. Never raises.
        """
        if self.url is None:
            return
        with self._lock:
            now = self._clock()
            if not force and self._last_attempt is not None and now - self._last_attempt < self._wait_s():
                return
            self._last_attempt = now
            self._push_wall_time = time.time()
            try:
                push_to_gateway(
                    self.url,
                    job=JOB,
                    registry=self.registry,
                    grouping_key=self.grouping_key,
                    timeout=self.timeout_s,
                )
            except Exception as exc:  # telemetry must never fail the stage
                self._failed(exc)
            else:
                if self._failures:
                    log.info("telemetry: pushes to the Pushgateway at %s work again", self.url)
                self._failures = 0
                self.pushes += 1

    def finish(self, status: str, seconds: float) -> None:
        """Record the stage's outcome (done, failed, skipped) and duration, and push now."""
        if status not in STATUSES:
            raise ValueError(f"unknown stage status {status!r}; expected one of {', '.join(STATUSES)}")
        if self.url is None:
            return
        with self._lock:
            self._status = status
            self._duration = float(seconds)
        self.push(force=True)

    def _wait_s(self) -> float:
        """Seconds to wait after the last attempt before a non-forced push."""
        if not self._failures:
            return self.push_interval_s
        backoff = self.push_interval_s * 2 ** (self._failures - 1)
        return min(backoff, max(self.push_interval_s, MAX_BACKOFF_S))

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        if self._warned:
            log.debug("telemetry: push to %s failed again (%d in a row): %s", self.url, self._failures, exc)
            return
        self._warned = True
        log.warning(
            "telemetry: cannot push metrics of stage %s to the Pushgateway at %s (%s: %s); the stage goes on, "
            "later pushes keep trying and further failures are not reported",
            self.grouping_key["stage"],
            self.url,
            type(exc).__name__,
            exc,
        )

    def _families(self) -> list[Metric]:
        """The metric families of the current state (called by the registry while pushing)."""
        with self._lock:
            steps = CounterMetricFamily("xit_steps", "Optimizer steps taken.", labels=["task"])
            examples = CounterMetricFamily("xit_examples", "Training examples consumed.", labels=["task"])
            tokens = CounterMetricFamily("xit_tokens", "Training tokens consumed.", labels=["task"])
            loss = GaugeMetricFamily("xit_loss", "Training loss of the last step.", labels=["task"])
            lr = GaugeMetricFamily("xit_learning_rate", "Learning rate of the last step.", labels=["task"])
            rate = GaugeMetricFamily(
                "xit_examples_per_second", "Training examples per second of step time.", labels=["task"]
            )
            for task, s in sorted(self._tasks.items()):
                if s.pending_tokens is not None:  # device values are read here, at push time
                    s.tokens += int(s.pending_tokens)
                    s.pending_tokens = None
                if _is_tensor(s.loss):
                    s.loss = float(s.loss)
                steps.add_metric([task], s.steps)
                examples.add_metric([task], s.examples)
                tokens.add_metric([task], s.tokens)
                loss.add_metric([task], s.loss)
                lr.add_metric([task], s.lr)
                if s.timed_seconds > 0:
                    rate.add_metric([task], s.timed_examples / s.timed_seconds)
            scores = GaugeMetricFamily(
                "xit_eval_score", "Last evaluation score, 0..100.", labels=["task", "language", "metric"]
            )
            for (task, language, metric), value in sorted(self._scores.items()):
                scores.add_metric([task, language, metric], value)
            duration = self._duration if self._duration is not None else self._clock() - self._started
            status = GaugeMetricFamily(
                "xit_stage_status", "1 for the stage's current status, 0 for the others.", labels=["status"]
            )
            for name in STATUSES:
                status.add_metric([name], 1.0 if name == self._status else 0.0)
            return [
                steps,
                examples,
                tokens,
                loss,
                lr,
                rate,
                scores,
                GaugeMetricFamily(
                    "xit_stage_duration_seconds",
                    "Seconds the stage has run; its total duration once finished.",
                    value=duration,
                ),
                status,
                GaugeMetricFamily(
                    "xit_stage_last_push_timestamp_seconds",
                    "Unix time of the push that carried these metrics.",
                    value=self._push_wall_time,
                ),
            ]


def _is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (duck-typed: this module does not import torch)."""
    return hasattr(x, "detach") and hasattr(x, "item")


def delete_sweep_groups(sweep: str, stages: list[tuple[str, str]], url: str | None = None,
                        timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    """Delete the Pushgateway groups of a finished sweep's stages (``job="xit"``, ``sweep``, ``stage``,
    ``kind``; HTTP DELETE), so the gateway does not keep every stage's series forever: the cluster's
    report step calls it once the report is written. Like pushing, it never fails its caller: a gateway
    that is down costs one warning. Returns the number of groups deleted; 0 without a URL."""
    url = url or os.environ.get(ENV_URL) or None
    if url is None:
        return 0
    deleted = 0
    for key, kind in stages:
        try:
            delete_from_gateway(url, job=JOB, grouping_key={"sweep": sweep, "stage": key, "kind": kind},
                                timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - telemetry never fails the caller
            log.warning("Pushgateway %s: could not delete the groups of sweep %s (%s); they stay until deleted",
                        url, sweep, exc)
            return deleted
        deleted += 1
    return deleted
