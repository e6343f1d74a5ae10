"""`xit submit` and `xit status` against a stand-in Kubernetes API server.

No Kubernetes can run here, so a small HTTP server on 127.0.0.1 answers the two calls xit makes
(create a Workflow, get a Workflow) the way the API server does, and the real `kubernetes` client
reaches it through a real kubeconfig. The server records every request: the tests check the method,
path, credentials and body the client sends, and what the CLI prints and exits with for realistic
Argo workflow status objects (Retry nodes with Pod attempts, a plan step with its outputs).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import one_line
from servers import free_port

from xit.argo import outputs
from xit.cluster import build_workflow, generate_name, label_value, summarize
from xit.errors import XitError
from xit.plan import build_plan
from xit.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo.yaml"
TOKEN = "xit-test-token-1234"
WF_PATH = "/apis/argoproj.io/v1alpha1/namespaces/{ns}/workflows"


# --------------------------------------------------------------------------- the stand-in API server


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class FakeApi:
    """Answers (method, path) from `routes`: a list of (status, body) used in turn, the last one repeated."""

    server: ThreadingHTTPServer
    routes: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, method: str, path: str, *responses: tuple[int, Any]) -> None:
        self.routes[(method, path)] = list(responses)


def _handler(api_ref: list[FakeApi]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            api = api_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            api.requests.append(Request(self.command, path, {k.lower(): v for k, v in self.headers.items()},
                                        json.loads(raw) if raw else None))
            queue = api.routes.get((self.command, path))
            if queue is None:
                status, body = 404, _status_body(404, "NotFound", "the server could not find the requested resource")
            else:
                status, body = queue.pop(0) if len(queue) > 1 else queue[0]
                if callable(body):
                    body = body(api.requests[-1])
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

    return Handler


@pytest.fixture
def api() -> Iterator[FakeApi]:
    ref: list[FakeApi] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    ref.append(FakeApi(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ref[0]
    server.shutdown()
    server.server_close()


def _status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A `metav1.Status`, as the API server sends with every error."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def _kubeconfig(path: Path, servers: dict[str, str], current: str) -> Path:
    """A kubeconfig with one context per server (bearer-token user), `current` selected."""
    cfg = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in servers.items()],
        "users": [{"name": "tester", "user": {"token": TOKEN}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "tester", "namespace": "default"}}
                     for n in servers],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def xit(*args: str, kubeconfig: Path | str | None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["KUBECONFIG"] = str(kubeconfig) if kubeconfig is not None else "/nonexistent/kubeconfig"
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.run([sys.executable, "-m", "xit.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO, timeout=120)


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    line = one_line(r.stderr)
    assert line.startswith("error: ")
    return line


# --------------------------------------------------------------------------- xit submit --dry-run


def test_dry_run_prints_the_workflow_and_contacts_nothing(api: FakeApi, tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    r = xit("submit", str(DEMO), "--dry-run", "--store", "s3://bucket/runs", "-l", "team=nlp", kubeconfig=kc)
    assert r.returncode == 0, r.stderr
    assert api.requests == []
    wf = yaml.safe_load(r.stdout)
    assert wf["apiVersion"] == "argoproj.io/v1alpha1" and wf["kind"] == "Workflow"
    assert wf["metadata"] == {"generateName": "xit-demo-",
                              "labels": {"app.kubernetes.io/part-of": "xit", "xit.dev/sweep": "demo", "team": "nlp"}}
    assert wf["spec"]["workflowTemplateRef"] == {"name": "xit-sweep"}
    params = {p["name"]: p["value"] for p in wf["spec"]["arguments"]["parameters"]}
    assert params["store"] == "s3://bucket/runs"
    # The spec round-trips: the parameter is the file's text (as a block scalar), and parses to the same spec.
    assert params["spec"] == DEMO.read_text()
    assert "value: |" in r.stdout
    spec_file = tmp_path / "roundtrip.yaml"
    spec_file.write_text(params["spec"])
    assert load_spec(spec_file) == load_spec(DEMO)
    assert wf == build_workflow(DEMO, store="s3://bucket/runs", labels={"team": "nlp"})


def test_dry_run_without_store_leaves_the_charts_default(tmp_path: Path) -> None:
    r = xit("submit", str(DEMO), "--dry-run", "--template", "my-sweep", kubeconfig=None)
    assert r.returncode == 0, r.stderr
    wf = yaml.safe_load(r.stdout)
    assert [p["name"] for p in wf["spec"]["arguments"]["parameters"]] == ["spec"]
    assert wf["spec"]["workflowTemplateRef"] == {"name": "my-sweep"}


@pytest.mark.parametrize(("args", "expect"), [
    (["missing.yaml"], "missing.yaml: no such spec file"),
    (["{bad}"], "field 'targets': unknown task 'demo-qaa'"),
    (["{demo}", "--store", "./xit-runs"], "--store './xit-runs'"),
    (["{demo}", "--label", "no-equals-sign"], "--label 'no-equals-sign': expected KEY=VALUE"),
    (["{demo}", "--label", "team=-bad-"], "not a valid label value"),
    (["{demo}", "--template", "Bad_Name"], "--template 'Bad_Name'"),
])
def test_bad_input_exits_2_with_one_line_and_sends_nothing(api: FakeApi, tmp_path: Path, args: list[str],
                                                           expect: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntargets: [demo-para, demo-qaa]\n")
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    args = [a.format(bad=bad, demo=DEMO) for a in args]
    for extra in (["--dry-run"], []):
        r = xit("submit", *args, *extra, kubeconfig=kc, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert expect in _one_line_error(r)
        assert r.stdout == ""
    assert api.requests == []


def test_a_spec_with_argo_template_braces_is_rejected(tmp_path: Path) -> None:
    spec = tmp_path / "braces.yaml"
    spec.write_text("# uses {{workflow.name}}\nname: braces\ntargets: [demo-para]\n")
    with pytest.raises(XitError, match=r"contains '\{\{'"):
        build_workflow(spec)


def test_names_and_labels_are_valid_for_any_spec_name() -> None:
    longest = "a" + "-b" * 24 + "c"  # 50 characters: the longest name a spec allows
    gen = generate_name(longest)
    assert gen.startswith("xit-a-b") and gen.endswith("-") and len(gen) + 5 <= 63
    assert generate_name("Weird__Name!") == "xit-weird-name-"
    assert label_value("-x" * 40).startswith("x") and len(label_value("-x" * 40)) <= 63
    assert label_value("a b/c") == "a-b-c"
    assert label_value("___") == "sweep"


# --------------------------------------------------------------------------- xit submit


def _created(request: Request) -> dict[str, Any]:
    """What the API server answers to a create: the object, named from generateName, with server fields."""
    obj = json.loads(json.dumps(request.body))
    meta = obj["metadata"]
    meta.update(name=meta["generateName"] + "k8x2q", namespace=request.path.split("/")[5],
                uid="0c6f5c1e-7d7a-4a8e-9f1e-3d6b1b2a9c11", resourceVersion="48213",
                creationTimestamp="2025-05-01T10:00:00Z", generation=1)
    return obj


def test_submit_posts_the_workflow_to_a_fake_api_server(api: FakeApi, tmp_path: Path) -> None:
    api.answer("POST", WF_PATH.format(ns="team-a"), (201, _created))
    kc = _kubeconfig(tmp_path / "kubeconfig", {"dead": f"http://127.0.0.1:{free_port()}", "fake": api.url}, "dead")
    r = xit("submit", str(DEMO), "-n", "team-a", "--context", "fake", "--store", "s3://xit/runs", kubeconfig=kc)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "xit-demo-k8x2q\n"
    assert "xit status xit-demo-k8x2q -n team-a --context fake --follow" in r.stderr
    assert len(api.requests) == 1
    req = api.requests[0]
    assert (req.method, req.path) == ("POST", "/apis/argoproj.io/v1alpha1/namespaces/team-a/workflows")
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"].startswith("application/json")
    assert req.body == build_workflow(DEMO, store="s3://xit/runs")


def test_submit_errors_are_one_line(api: FakeApi, tmp_path: Path) -> None:
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    # No Workflow CRD: the API server has no such resource.
    r = xit("submit", str(DEMO), kubeconfig=kc)
    assert r.returncode == 2
    assert "serves no argoproj.io/v1alpha1 workflows (is Argo Workflows installed" in _one_line_error(r)
    # RBAC says no.
    msg = ('workflows.argoproj.io is forbidden: User "alice" cannot create resource "workflows" in API group '
           '"argoproj.io" in the namespace "xit"')
    api.answer("POST", WF_PATH.format(ns="xit"),
               (403, _status_body(403, "Forbidden", msg, group="argoproj.io", kind="workflows")))
    r = xit("submit", str(DEMO), kubeconfig=kc)
    assert r.returncode == 2
    assert _one_line_error(r) == f"error: forbidden: {msg}"
    # Wrong context name.
    r = xit("submit", str(DEMO), "--context", "nope", kubeconfig=kc)
    assert r.returncode == 2
    assert "nope" in _one_line_error(r)


def test_no_kubeconfig_is_one_line(tmp_path: Path) -> None:
    r = xit("submit", str(DEMO), kubeconfig=tmp_path / "absent")
    assert r.returncode == 2
    line = _one_line_error(r)
    assert "no kubeconfig" in line and "set KUBECONFIG or use --context" in line


def test_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    kc = _kubeconfig(tmp_path / "kubeconfig", {"dead": dead}, "dead")
    for args in (["submit", str(DEMO)], ["status", "xit-demo-k8x2q"]):
        r = xit(*args, kubeconfig=kc)
        assert r.returncode == 2
        line = _one_line_error(r)
        assert f"cannot reach the Kubernetes API at {dead}" in line
        assert "refused" in line.lower() and "object at 0x" not in line


# --------------------------------------------------------------------------- a realistic workflow status

SMALL_SPEC = """\
name: demo
intermediate: [[], [demo-nli]]
targets: [demo-para, demo-qa, demo-tatoeba]
"""


@pytest.fixture
def plan(tmp_path: Path):  # noqa: ANN201 - a Plan
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL_SPEC)
    return build_plan(load_spec(spec))


def _node(wf: str, node_id: str, display: str, type_: str, phase: str, template: str | None, *,
          boundary: str | None = None, children: list[str] | None = None, key: str | None = None,
          message: str | None = None, started: str = "2025-05-01T10:01:00Z", finished: str | None = None,
          outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A node as Argo's controller writes it into status.nodes."""
    n: dict[str, Any] = {"id": node_id, "name": f"{wf}.{display}", "displayName": display, "type": type_,
                         "templateScope": f"local/{wf}", "phase": phase, "startedAt": started}
    if template is not None:
        n["templateName"] = template
    if boundary:
        n["boundaryID"] = boundary
    if children:
        n["children"] = children
    if key:
        n["inputs"] = {"parameters": [{"name": "key", "value": key}]}
    if message:
        n["message"] = message
    if finished:
        n["finishedAt"] = finished
        n["progress"] = "1/1" if phase == "Succeeded" else "0/1"
        n["resourcesDuration"] = {"cpu": 31, "memory": 250, "nvidia.com/gpu": 30}
    if type_ == "Pod":
        n["hostNodeName"] = "gpu-pool-a100-7c9f4"
    if outputs:
        n["outputs"] = {"parameters": [{"name": k, "value": v, "valueFrom": {"path": f"/tmp/outputs/{k}"}}
                                       for k, v in outputs.items()], "exitCode": "0"}
    return n


def running_workflow(plan, phase: str = "Running") -> dict[str, Any]:  # noqa: ANN001
    """The status of a sweep part-way through: real keys and plan outputs, Retry nodes with Pod attempts."""
    wf = "xit-demo-x7k2p"
    inter = plan.by_kind("intermediate")
    base, nli = inter[0], inter[1]
    target = {(s.label.split()[1], s.inputs[0]): s for s in plan.by_kind("target")}
    evaluate_of = {s.inputs[0]: s for s in plan.by_kind("evaluate")}
    tatoeba_base = next(s for s in plan.by_kind("retrieval") if s.inputs == [base.key])
    nodes: dict[str, dict[str, Any]] = {}

    def add(node_id: str, *args: Any, **kw: Any) -> None:
        nodes[node_id] = _node(wf, node_id, *args, boundary=kw.pop("boundary", wf), **kw)

    done = "2025-05-01T10:09:00Z"
    nodes[wf] = _node(wf, wf, wf, "DAG", phase, "sweep", children=[f"{wf}-1"])
    nodes[wf]["name"] = nodes[wf]["displayName"] = wf
    # The plan step (retried on error, like every stage): its outputs are on the attempt.
    add(f"{wf}-1", "plan", "Retry", "Succeeded", "plan", finished="2025-05-01T10:01:30Z", children=[f"{wf}-2"])
    add(f"{wf}-2", "plan(0)", "Pod", "Succeeded", "plan", finished="2025-05-01T10:01:30Z",
        outputs={**outputs(plan)}, children=[f"{wf}-3"])
    # The base encoder: a Retry node with one successful attempt, run before the branches ...
    add(f"{wf}-3", "base", "Retry", "Succeeded", "intermediate", key=base.key, children=[f"{wf}-4"], finished=done)
    add(f"{wf}-4", "base(0)", "Pod", "Succeeded", "intermediate", key=base.key, finished=done,
        children=[f"{wf}-10"])
    add(f"{wf}-10", "branch", "TaskGroup", "Running", None, children=[f"{wf}-11", f"{wf}-21"])
    # ... and again, skipped at once, in the first branch: still one stage.
    add(f"{wf}-11", "branch(0:base)", "DAG", "Running", "branch", children=[f"{wf}-12"])
    add(f"{wf}-12", "branch(0:base).intermediate", "Retry", "Succeeded", "intermediate", key=base.key,
        children=[f"{wf}-13"], finished=done)
    add(f"{wf}-13", "branch(0:base).intermediate(0)", "Pod", "Succeeded", "intermediate", key=base.key,
        finished=done)
    # [demo-nli]: the first attempt's pod was preempted, the retry succeeded — one stage, done.
    add(f"{wf}-21", "branch(1:[demo-nli])", "DAG", "Running", "branch", children=[f"{wf}-22"])
    add(f"{wf}-22", "branch(1:[demo-nli]).intermediate", "Retry", "Succeeded", "intermediate", key=nli.key,
        children=[f"{wf}-23", f"{wf}-24"], finished=done)
    add(f"{wf}-23", "branch(1:[demo-nli]).intermediate(0)", "Pod", "Failed", "intermediate", key=nli.key,
        message="pod deleted", started="2025-05-01T10:01:40Z", finished="2025-05-01T10:03:00Z")
    add(f"{wf}-24", "branch(1:[demo-nli]).intermediate(1)", "Pod", "Succeeded", "intermediate", key=nli.key,
        started="2025-05-01T10:03:10Z", finished=done)
    # Targets from the base: demo-para fine-tuned and scored in its pod (output `scored`: its evaluate stage);
    # demo-qa failed all three attempts.
    para, qa = target[("demo-para", base.key)], target[("demo-qa", base.key)]
    scored = {"scored": json.dumps([evaluate_of[para.key].key])}
    add(f"{wf}-31", "branch(0:base).target(0:para)", "Retry", "Succeeded", "target", key=para.key,
        children=[f"{wf}-32"], finished=done, outputs=scored)
    add(f"{wf}-32", "branch(0:base).target(0:para)(0)", "Pod", "Succeeded", "target", key=para.key, finished=done,
        outputs=scored)
    add(f"{wf}-41", "branch(0:base).target(1:qa)", "Retry", "Failed", "target", key=qa.key,
        children=[f"{wf}-42", f"{wf}-43", f"{wf}-44"], message="No more retries left", finished=done)
    for i, n in enumerate((42, 43, 44)):
        add(f"{wf}-{n}", f"branch(0:base).target(1:qa)({i})", "Pod", "Failed", "target", key=qa.key,
            message="OOMKilled (exit code 137)" if i == 2 else "Error (exit code 1)",
            started=f"2025-05-01T10:0{4 + i}:00Z", finished=f"2025-05-01T10:0{4 + i}:50Z")
    # Tatoeba on the base: a pod without a retry node counts itself.
    add(f"{wf}-51", "branch(0:base).retrieval(0)", "Pod", "Succeeded", "retrieval", key=tatoeba_base.key,
        finished=done)
    # demo-para from [demo-nli]: scheduled, waiting for a GPU.
    pn = target[("demo-para", nli.key)]
    add(f"{wf}-61", "branch(1:[demo-nli]).target(0:para)", "Retry", "Pending", "target", key=pn.key,
        children=[f"{wf}-62"])
    add(f"{wf}-62", "branch(1:[demo-nli]).target(0:para)(0)", "Pod", "Pending", "target", key=pn.key,
        message="0/4 nodes are available: 4 Insufficient nvidia.com/gpu.")
    status: dict[str, Any] = {
        "phase": phase, "startedAt": "2025-05-01T10:00:05Z", "progress": "6/13",
        "estimatedDuration": 1200, "nodes": nodes,
        "conditions": [{"type": "PodRunning", "status": "True"}],
        "storedWorkflowTemplateSpec": {"entrypoint": "sweep", "workflowTemplateRef": {"name": "xit-sweep"}},
    }
    if phase in ("Succeeded", "Failed", "Error"):
        status["finishedAt"] = "2025-05-01T10:30:05Z"
    if phase == "Failed":
        status["message"] = f"child '{wf}-41' failed"
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": wf, "generateName": "xit-demo-", "namespace": "xit", "uid": "5b0a7c1e",
                     "labels": {"app.kubernetes.io/part-of": "xit", "xit.dev/sweep": "demo",
                                "workflows.argoproj.io/phase": phase}},
        "spec": {"workflowTemplateRef": {"name": "xit-sweep"},
                 "arguments": {"parameters": [{"name": "spec", "value": SMALL_SPEC}]}},
        "status": status,
    }


def _expected_counts(plan) -> dict[str, dict[str, int]]:  # noqa: ANN001
    assert len(plan.stages) == 13  # 2 intermediate, 4 target, 4 evaluate, 2 retrieval, 1 report
    return {
        "intermediate": {"done": 2, "running": 0, "pending": 0, "failed": 0, "skipped": 0, "total": 2},
        "target": {"done": 1, "running": 0, "pending": 2, "failed": 1, "skipped": 0, "total": 4},
        "evaluate": {"done": 1, "running": 0, "pending": 3, "failed": 0, "skipped": 0, "total": 4},
        "retrieval": {"done": 1, "running": 0, "pending": 1, "failed": 0, "skipped": 0, "total": 2},
        "report": {"done": 0, "running": 0, "pending": 1, "failed": 0, "skipped": 0, "total": 1},
    }


def test_summarize_counts_each_stage_once(plan) -> None:  # noqa: ANN001
    s = summarize(running_workflow(plan))
    assert (s.name, s.namespace, s.phase, s.total, s.done, s.not_started) == ("xit-demo-x7k2p", "xit", "Running",
                                                                               13, 5, 6)
    assert s.sweep == f"demo/{plan.sweep_id}"
    assert {k: vars(v) for k, v in s.stages.items()} == _expected_counts(plan)
    qa = next(t for t in plan.by_kind("target") if "demo-qa" in t.label and t.inputs[0] == plan.stages[0].key)
    assert [(f.kind, f.key, f.attempts) for f in s.failed] == [("target", qa.key, 3)]
    assert s.failed[0].message == "OOMKilled (exit code 137); No more retries left"


def test_summarize_reads_compressed_nodes_and_old_retry_nodes(plan) -> None:  # noqa: ANN001
    wf = running_workflow(plan)
    nodes = wf["status"].pop("nodes")
    for n in nodes.values():  # controllers before v3 put templateName on the attempts only
        if n["type"] == "Retry":
            n.pop("templateName")
            n.pop("inputs", None)
    wf["status"]["compressedNodes"] = base64.b64encode(gzip.compress(json.dumps(nodes).encode())).decode()
    s = summarize(wf)
    assert {k: vars(v) for k, v in s.stages.items()} == _expected_counts(plan)
    assert s.failed[0].kind == "target" and s.failed[0].key.startswith("target-")


def test_summarize_before_the_plan_step_reports(plan) -> None:  # noqa: ANN001
    wf = running_workflow(plan)
    wf["status"]["nodes"] = {k: v for k, v in wf["status"]["nodes"].items() if v.get("templateName") != "plan"}
    s = summarize(wf)
    assert s.total is None and s.not_started is None
    assert s.stages["target"].total is None and s.stages["target"].pending == 1  # only the Pending node
    assert summarize({"metadata": {"name": "x"}, "status": {}}).stages == {}


# --------------------------------------------------------------------------- xit status


def _get_path(name: str, ns: str = "xit") -> str:
    return WF_PATH.format(ns=ns) + f"/{name}"


def test_status_table_and_json(api: FakeApi, plan, tmp_path: Path) -> None:  # noqa: ANN001
    api.answer("GET", _get_path("xit-demo-x7k2p"), (200, running_workflow(plan)))
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    r = xit("status", "xit-demo-x7k2p", "--json", kubeconfig=kc)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["phase"] == "Running" and got["total"] == 13 and got["done"] == 5 and got["not_started"] == 6
    assert got["stages"] == _expected_counts(plan)
    assert got["failed"][0]["attempts"] == 3 and "OOMKilled" in got["failed"][0]["message"]
    assert api.requests[0].method == "GET" and api.requests[0].headers["authorization"] == f"Bearer {TOKEN}"

    r = xit("status", "xit-demo-x7k2p", kubeconfig=kc)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Running" in out and "5 of 13 stages done" in out and "progress 6/13" in out
    stages_table = out.split("failed stages")[0]
    rows = {cells[0]: cells[1:] for line in stages_table.splitlines() if line.startswith("│")
            for cells in [[c.strip() for c in line.strip("│").split("│")]]}
    # kind │ done │ running │ pending │ failed │ total
    assert rows == {k: [str(v[c]) for c in ("done", "running", "pending", "failed", "total")]
                    for k, v in _expected_counts(plan).items()}
    assert "failed stages" in out and "OOMKilled (exit code 137); No more retries left" in out


@pytest.mark.parametrize(("phase", "code"), [("Succeeded", 0), ("Failed", 1), ("Error", 1)])
def test_status_exit_code_follows_the_workflow(api: FakeApi, plan, tmp_path: Path, phase: str,  # noqa: ANN001
                                               code: int) -> None:
    api.answer("GET", _get_path("xit-demo-x7k2p", "team-a"), (200, running_workflow(plan, phase)))
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    r = xit("status", "xit-demo-x7k2p", "-n", "team-a", kubeconfig=kc)
    assert r.returncode == code, r.stderr
    assert phase in r.stdout
    if phase == "Failed":
        assert "child 'xit-demo-x7k2p-41' failed" in r.stdout


def test_status_follow_polls_until_finished(api: FakeApi, plan, tmp_path: Path) -> None:  # noqa: ANN001
    path = _get_path("xit-demo-x7k2p")
    api.answer("GET", path, (200, running_workflow(plan)), (200, running_workflow(plan)),
               (200, running_workflow(plan, "Failed")))
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    r = xit("status", "xit-demo-x7k2p", "--follow", "--interval", "0.1", "--json", kubeconfig=kc)
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["phase"] == "Failed"
    assert [q.path for q in api.requests] == [path] * 3


def test_submit_follow_waits_for_the_result(api: FakeApi, plan, tmp_path: Path) -> None:  # noqa: ANN001
    api.answer("POST", WF_PATH.format(ns="xit"), (201, _created))
    done = running_workflow(plan, "Succeeded")
    done["metadata"]["name"] = "xit-demo-k8x2q"
    api.answer("GET", _get_path("xit-demo-k8x2q"), (200, running_workflow(plan)), (200, done))
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    r = xit("submit", str(DEMO), "--follow", "--interval", "0.1", kubeconfig=kc)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "xit-demo-k8x2q" and "Succeeded" in r.stdout
    assert [q.method for q in api.requests] == ["POST", "GET", "GET"]


def test_status_of_a_missing_workflow_is_one_line(api: FakeApi, tmp_path: Path) -> None:
    api.answer("GET", _get_path("xit-demo-nope1"), (404, _status_body(
        404, "NotFound", 'workflows.argoproj.io "xit-demo-nope1" not found',
        name="xit-demo-nope1", group="argoproj.io", kind="workflows")))
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    for extra in ([], ["--follow", "--interval", "0.1"]):
        r = xit("status", "xit-demo-nope1", *extra, kubeconfig=kc)
        assert r.returncode == 2
        assert _one_line_error(r) == "error: workflow xit-demo-nope1 not found in namespace xit"
        assert r.stdout == ""


def test_status_unauthorized_is_one_line(api: FakeApi, tmp_path: Path) -> None:
    api.answer("GET", _get_path("xit-demo-x7k2p"), (401, _status_body(401, "Unauthorized", "Unauthorized")))
    kc = _kubeconfig(tmp_path / "kubeconfig", {"fake": api.url}, "fake")
    r = xit("status", "xit-demo-x7k2p", kubeconfig=kc)
    assert r.returncode == 2
    assert "unauthorized by the Kubernetes API" in _one_line_error(r)
