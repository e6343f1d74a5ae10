"""Sweeps on a Kubernetes cluster: build the Argo Workflow for a spec, submit it, read its status.

The Helm chart installs a WorkflowTemplate (``xit-sweep`` by default) that takes two workflow
parameters: ``spec`` (the experiment spec's YAML text) and ``store`` (optional; the chart has a
default S3 store). A sweep is a small Workflow that references it (`build_workflow`); the same
shape is what ``pipelines/*.yaml`` hold for ``argo submit``.

Status comes from the Workflow's ``status.nodes``: every stage runs a template named after its
kind (`STAGE_KINDS`) with an input parameter ``key``; stages have a retryStrategy, so a stage is
a node of type ``Retry`` whose children are its ``Pod`` attempts (counted once, as the stage). A
target pod also runs the stages that score its model and names them in its output ``scored``: they
count as done when it succeeds. The plan step (template ``plan``) emits ``stages`` (and ``branches``,
``totals``), the size of the whole plan.

The Kubernetes API is reached with the user's kubeconfig (or the pod's service account in a
cluster) through the ``kubernetes`` client (extra ``cluster``). Every failure to reach or use it
becomes a one-line `XitError`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from xit.errors import XitError
from xit.plan import key_kind
from xit.stages import KIND_NAMES as STAGE_KINDS

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "workflows"
DEFAULT_TEMPLATE = "xit-sweep"
DEFAULT_NAMESPACE = "xit"
PART_OF = ("app.kubernetes.io/part-of", "xit")
SWEEP_LABEL = "xit.dev/sweep"
PLAN_TEMPLATE = "plan"
# Workflow phases after which nothing changes.
DONE_PHASES = ("Succeeded", "Failed", "Error")
# Node phase -> the column it counts in.
NODE_STATES = {"Succeeded": "done", "Running": "running", "Pending": "pending", "Failed": "failed",
               "Error": "failed", "Skipped": "skipped", "Omitted": "skipped"}
# When one stage has several nodes, the state it counts in: the furthest along.
_STATE_RANK = {"done": 0, "running": 1, "pending": 2, "failed": 3, "skipped": 4}
# (connect, read) seconds for each API request.
REQUEST_TIMEOUT = (10, 60)

_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
# Argo labels each pod with its workflow's name, so a workflow name must stay a label value (<= 63);
# generateName adds 5 characters.
_GENERATE_NAME_MAX = 58


# --------------------------------------------------------------------------- building the Workflow


def label_value(text: str) -> str:
    """``text`` as a valid Kubernetes label value: [A-Za-z0-9._-], at most 63, alphanumeric at both ends."""
    v = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("._-")
    return v or "sweep"


def generate_name(sweep: str) -> str:
    """``xit-<sweep>-``: a DNS-1123 prefix short enough that the generated name stays a label value."""
    v = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "-", sweep.lower())).strip("-")
    prefix = f"xit-{v}" if v else "xit"
    return prefix[: _GENERATE_NAME_MAX - 1].rstrip("-") + "-"


def _check_labels(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if not _LABEL_NAME.match(name) or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
            raise XitError(f"label {key!r}: not a valid label key ([prefix/]name; name: up to 63 of "
                           "[A-Za-z0-9._-], alphanumeric at both ends; prefix: a DNS subdomain)")
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise XitError(f"label {key}={value!r}: not a valid label value (up to 63 of [A-Za-z0-9._-], "
                           "alphanumeric at both ends)")


def _spec_text(path: Path) -> str:
    """The spec file's text, with trailing whitespace dropped where that changes nothing (so it prints as a
    YAML block scalar), ending in one newline."""
    text = path.read_text()
    tidy = "\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n"
    try:
        same = yaml.safe_load(tidy) == yaml.safe_load(text)
    except yaml.YAMLError:  # pragma: no cover - load_spec parsed it already
        same = False
    return tidy if same else text


def build_workflow(
    spec_path: str | Path,
    *,
    store: str | None = None,
    template: str = DEFAULT_TEMPLATE,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Workflow that runs the sweep of ``spec_path`` on the cluster's ``template`` WorkflowTemplate.

    The spec is validated first (`load_spec`); a bad one raises `XitError` and nothing is built. Its text
    travels as the ``spec`` parameter; ``store`` (when given) overrides the template's default store.
    """
    from xit.spec import load_spec

    path = Path(spec_path)
    spec = load_spec(path)
    text = _spec_text(path)
    if "{{" in text:
        raise XitError(f"{path}: the spec contains '{{{{', which Argo would read as a template expression; "
                       "remove it (comments included)")
    if not _DNS_SUBDOMAIN.match(template):
        raise XitError(f"--template {template!r}: not a WorkflowTemplate name (lowercase letters, digits, '-', '.')")
    if store is not None and not (store.startswith("s3://") or store.startswith("/")):
        raise XitError(f"--store {store!r}: on the cluster the store is s3://bucket/prefix or an absolute path "
                       "on a volume every stage pod mounts (a relative path would be private to one pod)")
    extra = dict(labels or {})
    _check_labels(extra)
    params: list[dict[str, str]] = [{"name": "spec", "value": text}]
    if store is not None:
        params.append({"name": "store", "value": store})
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Workflow",
        "metadata": {
            "generateName": generate_name(spec.name),
            "labels": {PART_OF[0]: PART_OF[1], SWEEP_LABEL: label_value(spec.name), **extra},
        },
        "spec": {
            "workflowTemplateRef": {"name": template},
            "arguments": {"parameters": params},
        },
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(workflow: dict[str, Any]) -> str:
    """The Workflow as YAML (multi-line strings as block scalars), for ``argo submit -`` or ``kubectl create -f -``."""
    return yaml.dump(workflow, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)


# --------------------------------------------------------------------------- the Kubernetes API


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _kubeconfig_paths() -> list[str]:
    env = os.environ.get("KUBECONFIG")
    paths = [p for p in env.split(os.pathsep) if p] if env else [os.path.expanduser("~/.kube/config")]
    return paths


class Cluster:
    """The Argo Workflow objects of one Kubernetes API (kubeconfig context, or in-cluster)."""

    def __init__(self, context: str | None = None):
        try:
            from kubernetes import client, config
            from kubernetes.config.config_exception import ConfigException
        except ImportError:
            raise XitError("the Kubernetes client is not installed: pip install 'xit[cluster]'") from None

        cfg = client.Configuration()
        paths = _kubeconfig_paths()
        have_file = any(os.path.isfile(p) for p in paths)
        where = os.pathsep.join(paths)
        if have_file or context is not None:
            try:
                config.load_kube_config(context=context, client_configuration=cfg, persist_config=False)
            except ConfigException as e:
                if not have_file:
                    raise XitError(f"no kubeconfig: {where} does not exist, so there is no context {context!r}; "
                                   "set KUBECONFIG or use --context") from None
                raise XitError(f"kubeconfig {where}: {_one_line(str(e))}"
                               + ("" if context else " (set KUBECONFIG or use --context)")) from None
            except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as e:
                why = _one_line(str(e)) or type(e).__name__
                raise XitError(f"kubeconfig {where}: cannot read it ({why})") from None
            self.where = f"context {context}" if context else f"kubeconfig {where}"
        else:
            try:
                config.load_incluster_config(client_configuration=cfg)
            except ConfigException:
                raise XitError(f"no kubeconfig: {where} does not exist and this is not a pod in a cluster; "
                               "set KUBECONFIG or use --context") from None
            self.where = "in-cluster service account"
        self.host = cfg.host
        self._api = client.CustomObjectsApi(client.ApiClient(cfg))

    def _call(self, what: str, fn: Callable[..., Any], namespace: str, obj: str | None = None,
              **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            return fn(group=GROUP, version=VERSION, namespace=namespace, plural=PLURAL,
                      _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as e:
            raise self._api_error(e, what, namespace, obj) from None
        except (Urllib3Error, OSError) as e:
            raise XitError(f"cannot reach the Kubernetes API at {self.host} ({self.where}): {_reason(e)}") from None

    def _api_error(self, e: Any, what: str, namespace: str, name: str | None) -> XitError:
        message = ""
        details: dict[str, Any] = {}
        try:
            body = json.loads(e.body or "")
            if isinstance(body, dict):
                message = str(body.get("message") or "")
                details = body.get("details") or {}
        except (TypeError, ValueError):
            message = str(e.body or "")[:300]
        message = _one_line(message or e.reason or "")
        if e.status == 404:
            if name is not None and details.get("name") == name:
                return XitError(f"workflow {name} not found in namespace {namespace}")
            if "could not find the requested resource" in message:
                return XitError(f"the Kubernetes API at {self.host} serves no {GROUP}/{VERSION} workflows "
                                "(is Argo Workflows installed in this cluster?)")
            return XitError(f"cannot {what} in namespace {namespace}: {message}")
        if e.status == 401:
            return XitError(f"unauthorized by the Kubernetes API at {self.host} ({self.where}): {message}; "
                            "log in again or check the kubeconfig's credentials")
        if e.status == 403:
            return XitError(f"forbidden: {message}")
        if e.status in (400, 422):
            return XitError(f"the Kubernetes API rejected the workflow: {message}")
        return XitError(f"cannot {what} in namespace {namespace}: HTTP {e.status} {e.reason}: {message}")

    def create(self, workflow: dict[str, Any], namespace: str) -> dict[str, Any]:
        return self._call("create the workflow", self._api.create_namespaced_custom_object, namespace,
                          body=workflow)

    def get(self, name: str, namespace: str) -> dict[str, Any]:
        return self._call(f"read workflow {name}", self._api.get_namespaced_custom_object, namespace, name,
                          name=name)


def _reason(e: BaseException) -> str:
    """The cause of a connection failure, without urllib3's object reprs."""
    reason = getattr(e, "reason", None)
    while reason is not None and getattr(reason, "reason", None) not in (None, reason):
        reason = reason.reason
    text = str(reason if isinstance(reason, BaseException) else e)
    text = re.sub(r"<[^<>]*object at 0x[0-9a-f]+>:?\s*", "", text)
    text = re.sub(r"^\w*Connection(Pool)?\([^()]*\):\s*", "", text)
    return _one_line(text) or type(e).__name__


def _created_name(created: Any) -> str:
    name = (created.get("metadata") or {}).get("name") if isinstance(created, dict) else None
    if not name:
        raise XitError(f"the Kubernetes API answered the create with no workflow name: {str(created)[:200]}")
    return str(name)


# --------------------------------------------------------------------------- status


@dataclass
class KindCounts:
    """Stages of one kind: how many are in each state; ``total`` from the plan when it is known.

    ``pending`` counts the stages waiting to run: nodes in phase Pending, plus, once the plan's per-kind
    totals are known, the stages that have no node yet.
    """

    done: int = 0
    running: int = 0
    pending: int = 0
    failed: int = 0
    skipped: int = 0
    total: int | None = None

    def seen(self) -> int:
        return self.done + self.running + self.pending + self.failed + self.skipped


@dataclass
class FailedStage:
    kind: str
    key: str
    message: str
    attempts: int


@dataclass
class WorkflowSummary:
    name: str
    namespace: str
    phase: str
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = None
    progress: str | None = None
    sweep: str | None = None  # <name>/<sweep_id>, from the plan step
    total: int | None = None  # stages in the plan, from the plan step
    stages: dict[str, KindCounts] = field(default_factory=dict)
    not_started: int | None = None  # stages of the plan with no node yet (None until the plan step reports)
    failed: list[FailedStage] = field(default_factory=list)
    note: str | None = None

    @property
    def finished(self) -> bool:
        return self.phase in DONE_PHASES

    @property
    def done(self) -> int:
        return sum(c.done for c in self.stages.values())

    def elapsed_s(self, now: datetime | None = None) -> float | None:
        start = _time(self.started_at)
        if start is None:
            return None
        end = _time(self.finished_at) or now or datetime.now(UTC)
        return max(0.0, (end - start).total_seconds())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(done=self.done, elapsed_s=self.elapsed_s())
        return d


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _nodes(status: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], str | None]:
    nodes = status.get("nodes")
    if nodes:
        return nodes, None
    packed = status.get("compressedNodes")
    if packed:  # Argo gzips and base64-encodes the node map of a large workflow
        try:
            return json.loads(gzip.decompress(base64.b64decode(packed))), None
        except (binascii.Error, OSError, ValueError, EOFError):
            return {}, "the workflow's compressed node status could not be read"
    if status.get("offloadNodeStatusVersion"):
        return {}, "node status is offloaded to Argo's database; per-stage counts need `argo get`"
    return {}, None


def _param(params: Any, name: str) -> str | None:
    for p in params or []:
        if isinstance(p, dict) and p.get("name") == name and p.get("value") is not None:
            return str(p["value"])
    return None


def _template_of(node: dict[str, Any]) -> str | None:
    return node.get("templateName") or (node.get("templateRef") or {}).get("template")


def _plan_totals(branches: str | None, total: int | None, totals: str | None = None) -> dict[str, int] | None:
    """Per-kind totals from the plan step's ``totals`` output (or, from plan steps before it, the full
    ``branches`` items), if they add up to its ``stages``."""
    if total is None:
        return None
    if totals is not None:
        try:
            counts = {k: int(json.loads(totals).get(k, 0)) for k in STAGE_KINDS}
        except (ValueError, TypeError, AttributeError):
            return None
        return counts if sum(counts.values()) == total else None
    if branches is None:
        return None
    try:
        items = json.loads(branches)
        counts = {
            "intermediate": len(items),
            "target": sum(len(b["targets"]) for b in items),
            # A target is scored by an evaluate stage, or (dual encoders) a retrieval stage: its item's `scorer`.
            "evaluate": sum((t.get("scorer", "evaluate") == "evaluate") + len(t.get("evaluate_also", []))
                            for b in items for t in b["targets"]),
            "retrieval": sum(len(b["retrieval"]) for b in items)
            + sum(t.get("scorer") == "retrieval" for b in items for t in b["targets"]),
            "report": 1,
        }
    except (ValueError, TypeError, KeyError):
        return None
    return counts if sum(counts.values()) == total else None


def summarize(workflow: dict[str, Any]) -> WorkflowSummary:
    """Where a sweep's Workflow stands: its phase, and per stage kind how many stages are in each state."""
    meta = workflow.get("metadata") or {}
    status = workflow.get("status") or {}
    summary = WorkflowSummary(
        name=str(meta.get("name", "?")), namespace=str(meta.get("namespace", "?")),
        phase=status.get("phase") or "Pending", started_at=status.get("startedAt"),
        finished_at=status.get("finishedAt"), message=status.get("message") or None,
        progress=status.get("progress") or None,
    )
    nodes, summary.note = _nodes(status)
    stages = {k: KindCounts() for k in STAGE_KINDS}
    attempt_ids = {c for n in nodes.values() if n.get("type") == "Retry" for c in n.get("children") or []}
    branches = totals = None
    seen: dict[tuple[str, str], tuple[str, str, dict[str, Any], list[dict[str, Any]]]] = {}
    for node_id, node in nodes.items():
        kind = _template_of(node)
        children = [nodes[c] for c in node.get("children") or [] if c in nodes]
        if node.get("type") == "Retry" and kind is None:  # older controllers leave it on the attempts only
            kind = next((k for c in children if (k := _template_of(c))), None)
        if kind == PLAN_TEMPLATE:
            for n in (node, *children):
                outputs = (n.get("outputs") or {}).get("parameters")
                summary.total = _int(_param(outputs, "stages")) if summary.total is None else summary.total
                summary.sweep = summary.sweep or _param(outputs, "sweep")
                branches = branches or _param(outputs, "branches")
                totals = totals or _param(outputs, "totals")
            continue
        if kind not in stages:
            continue
        if node.get("type") == "Retry":
            attempts = children
        elif node.get("type") == "Pod" and node_id not in attempt_ids:
            attempts = [node]
        else:
            continue
        state = NODE_STATES.get(node.get("phase") or "Pending", "pending")
        key = _param((node.get("inputs") or {}).get("parameters"), "key")
        key = key or next((k for a in attempts if (k := _param((a.get("inputs") or {}).get("parameters"), "key"))),
                          None)
        # One stage can have two nodes (the template runs the base encoder's stage before the branches
        # and again, skipped at once, inside the first branch): count its key once, in its furthest state.
        ident = (kind, key or node_id)
        if ident not in seen or _STATE_RANK[state] < _STATE_RANK[seen[ident][0]]:
            seen[ident] = (state, key or node.get("displayName") or node_id, node, attempts)
        if kind == "target" and state == "done":
            # A target pod also ran the stages that score it and named them (output `scored`): done with it.
            for scored in _scored(node, attempts):
                seen[(key_kind(scored), scored)] = ("done", scored, node, attempts)
    for (kind, _), (state, key, node, attempts) in seen.items():
        setattr(stages[kind], state, getattr(stages[kind], state) + 1)
        if state == "failed":
            summary.failed.append(FailedStage(kind, key, _failure_message(node, attempts), max(1, len(attempts))))
    if summary.total is not None:
        summary.not_started = max(0, summary.total - sum(c.seen() for c in stages.values()))
    per_kind = _plan_totals(branches, summary.total, totals)
    if per_kind is not None:
        for kind, counts in stages.items():
            counts.total = per_kind[kind]
            counts.pending += max(0, counts.total - counts.seen())
    summary.stages = {k: c for k, c in stages.items() if c.seen() or c.total}
    return summary


def _scored(node: dict[str, Any], attempts: list[dict[str, Any]]) -> list[str]:
    """The keys a succeeded target pod scored its model with (its output ``scored``, a JSON list of stage keys
    ``<kind>-<hash>``), on the Retry node or its attempts; none from pods before it or unreadable values."""
    for n in (node, *attempts):
        value = _param((n.get("outputs") or {}).get("parameters"), "scored")
        if value is not None:
            try:
                keys = json.loads(value)
            except ValueError:
                return []
            ok = isinstance(keys, list) and all(isinstance(k, str) and key_kind(k) in STAGE_KINDS for k in keys)
            return keys if ok else []
    return []


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _failure_message(node: dict[str, Any], attempts: list[dict[str, Any]]) -> str:
    """The last attempt's message (what the pod died of), with the retry node's verdict if it adds to it."""
    ordered = sorted(attempts, key=lambda a: a.get("startedAt") or "")
    last = next((a.get("message") for a in reversed(ordered) if a.get("message")), None)
    own = node.get("message")
    parts = [m for m in (last, own if own != last else None) if m]
    return _one_line("; ".join(parts)) or node.get("phase") or "failed"


WATCH_MAX_MISSES = 3  # connection failures in a row that end a watch


def watch(cluster: Cluster, name: str, namespace: str, *, interval: float = 5.0,
          on_update: Callable[[WorkflowSummary], None] | None = None) -> WorkflowSummary:
    """Poll the workflow every ``interval`` seconds until it has finished; the last summary.

    The first poll comes after one interval (the caller has just read the workflow). A connection failure is
    retried on the next poll, up to WATCH_MAX_MISSES in a row.
    """
    misses = 0
    while True:
        time.sleep(interval)
        try:
            summary = summarize(cluster.get(name, namespace))
            misses = 0
        except XitError as e:
            misses += 1
            if misses >= WATCH_MAX_MISSES or not str(e).startswith("cannot reach"):
                raise
            continue
        if on_update is not None:
            on_update(summary)
        if summary.finished:
            return summary


def exit_code(summary: WorkflowSummary) -> int:
    """0 unless the workflow ended Failed or Error (1)."""
    return 1 if summary.phase in ("Failed", "Error") else 0


# --------------------------------------------------------------------------- terminal output


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


_PHASE_STYLE = {"Succeeded": "green", "Failed": "red", "Error": "red", "Running": "cyan", "Pending": "yellow"}


def headline(summary: WorkflowSummary) -> str:
    """One line (rich markup): the phase, how many stages are done, the Argo progress, the time taken."""
    from rich.markup import escape

    style = _PHASE_STYLE.get(summary.phase, "white")
    parts = [f"workflow [bold]{escape(summary.name)}[/] (namespace {escape(summary.namespace)}): "
             f"[{style}]{escape(summary.phase)}[/]"]
    if summary.total is not None:
        parts.append(f"{summary.done} of {summary.total} stages done")
    elif summary.stages:
        parts.append(f"{summary.done} stages done (plan size not reported yet)")
    if summary.progress:
        parts.append(f"progress {escape(summary.progress)}")
    elapsed = summary.elapsed_s()
    parts.append("not started" if elapsed is None else f"elapsed {_duration(elapsed)}")
    return ", ".join(parts)


def render(summary: WorkflowSummary) -> list[Any]:
    """What `xit status` prints: the headline, a table per stage kind, the failed stages with their messages."""
    from rich.markup import escape
    from rich.table import Table

    out: list[Any] = [headline(summary)]
    if summary.sweep:
        out.append(f"sweep {escape(summary.sweep)} (store: sweeps/{escape(summary.sweep)}/)")
    if summary.message and summary.phase != "Succeeded":
        out.append(f"[dim]message:[/] {escape(summary.message)}")
    if summary.note:
        out.append(f"[yellow]note:[/] {escape(summary.note)}")
    if summary.stages:
        skipped = any(c.skipped for c in summary.stages.values())
        table = Table(title="stages")
        cols = ["kind", "done", "running", "pending", "failed"] + (["skipped"] if skipped else []) + ["total"]
        for col in cols:
            table.add_column(col, justify="left" if col == "kind" else "right")
        for kind, c in summary.stages.items():
            row = [kind, str(c.done), str(c.running), str(c.pending), f"[red]{c.failed}[/]" if c.failed else "0"]
            row += [str(c.skipped)] if skipped else []
            row.append("?" if c.total is None else str(c.total))
            table.add_row(*row)
        out.append(table)
        if summary.not_started and all(c.total is None for c in summary.stages.values()):
            out.append(f"{summary.not_started} more stage(s) of the plan not started yet")
    elif summary.note is None:
        out.append("no stage has started yet")
    if summary.failed:
        table = Table(title="failed stages", title_style="red")
        for col in ("kind", "key", "attempts", "message"):
            table.add_column(col, overflow="fold")
        for f in summary.failed:
            table.add_row(f.kind, escape(f.key), str(f.attempts), escape(f.message))
        out.append(table)
    return out


def print_status(summary: WorkflowSummary, as_json: bool = False) -> None:
    import sys

    from xit import ui

    if as_json:
        sys.stdout.write(json.dumps(summary.to_dict(), indent=1) + "\n")
        return
    for part in render(summary):
        ui.out.print(part)


def follow(cluster: Cluster, name: str, namespace: str, *, interval: float = 5.0,
           progress: bool = True) -> WorkflowSummary:
    """Poll until the workflow finishes, with a progress bar of stages done (on stderr)."""
    from xit import ui

    first = summarize(cluster.get(name, namespace))  # a missing workflow fails here, before any bar is drawn
    if first.finished:
        return first
    with ui.progress(progress) as bars:
        p = bars.progress
        task = p.add_task(name, total=None) if p is not None else None

        def update(s: WorkflowSummary) -> None:
            if p is not None and task is not None:
                failed = sum(c.failed for c in s.stages.values())
                desc = f"{name} {s.phase}" + (f" ({failed} failed)" if failed else "")
                p.update(task, description=desc, total=s.total, completed=s.done)

        update(first)
        return watch(cluster, name, namespace, interval=interval, on_update=update)


def _parse_labels(items: list[str] | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise XitError(f"--label {item!r}: expected KEY=VALUE")
        labels[key] = value
    return labels


def submit_command(spec: Path, *, namespace: str, context: str | None, store: str | None, template: str,
                   labels: list[str] | None, dry_run: bool, follow_it: bool, interval: float) -> int:
    """`xit submit`: the exit code."""
    import sys

    from xit import ui

    workflow = build_workflow(spec, store=store, template=template, labels=_parse_labels(labels))
    if dry_run:
        sys.stdout.write(to_yaml(workflow))
        return 0
    cluster = Cluster(context)
    name = _created_name(cluster.create(workflow, namespace))
    sys.stdout.write(name + "\n")
    ctx = f" --context {context}" if context else ""
    ui.console.print(f"submitted workflow {name} to namespace {namespace} ({cluster.host}); follow it with\n"
                     f"  xit status {name} -n {namespace}{ctx} --follow\n  argo watch -n {namespace} {name}",
                     highlight=False, soft_wrap=True)
    if not follow_it:
        return 0
    summary = follow(cluster, name, namespace, interval=interval)
    print_status(summary)
    return exit_code(summary)


def status_command(name: str, *, namespace: str, context: str | None, follow_it: bool, as_json: bool,
                   interval: float) -> int:
    """`xit status`: the exit code (0 unless the workflow ended Failed/Error)."""
    cluster = Cluster(context)
    if follow_it:
        summary = follow(cluster, name, namespace, interval=interval, progress=not as_json)
    else:
        summary = summarize(cluster.get(name, namespace))
    print_status(summary, as_json)
    return exit_code(summary)
