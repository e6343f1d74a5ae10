"""The rendered chart against Argo's and Kubernetes' runtime rules (tests/argo_rules.py), for every values
file: what a schema accepts but a real controller or API server would refuse or run wrongly."""

from __future__ import annotations

import copy
from pathlib import Path

import argo_rules as rules
import pytest
import strict_schemas as ss
from chart_tools import CHART, ROOT, by_kind, render
from test_chart import VALUES as CHART_VALUES
from test_chart import sweep_template, templates, value_sets

from xit.argo import GPU_POD_KINDS as GPU_KINDS
from xit.argo import POD_KINDS


@pytest.fixture(scope="module", params=value_sets(), ids=lambda s: s[0])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    name, files = request.param
    return name, render(*files)


def argo_docs(docs: list[dict]) -> list[dict]:
    return [d for d in docs if ss.is_argo(d)]


def test_every_container_of_every_template_has_a_command(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    assert [t for d in argo_docs(docs) for t in rules.containers_without_command(d)] == [], name
    # The rule sees a container without one (the chart before this rule gave only args).
    bad = copy.deepcopy(sweep_template(docs))
    del bad["spec"]["templates"][-1]["container"]["command"]
    assert rules.containers_without_command(bad) == [f"{bad['spec']['templates'][-1]['name']}/container"]


def test_retry_window_lets_every_attempt_use_its_timeout(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    ts = templates(docs)
    assert [p for t in ts.values() for p in rules.retry_window_problems(t)] == [], name
    for kind in POD_KINDS:
        rs = ts[kind]["retryStrategy"]
        assert rs["backoff"]["cap"] and max(rules.backoff_waits(rs)) <= rules.parse_duration(rs["backoff"]["cap"])
        # Preempted just before its timeout, on the last attempt, a stage is still retried.
        window = rules.parse_duration(rs["backoff"]["maxDuration"])
        assert window >= (int(rs["limit"]) + 1) * ts[kind]["activeDeadlineSeconds"], (name, kind)
    # The old setting: maxDuration 1h as if it were a cap, on a 48 h stage.
    old = copy.deepcopy(ts["intermediate"])
    old["retryStrategy"]["backoff"] = {"duration": "1m", "factor": 2, "maxDuration": "1h"}
    assert len(rules.retry_window_problems(old)) == 2


# Messages Argo puts on a failed node: the pod's status.message (operator.go, inferFailedReason), written by
# the kubelet (pkg/kubelet/eviction/helpers.go; nodeshutdown/nodeshutdown_manager_linux.go;
# lifecycle/predicate.go), or Argo's own "pod deleted" (operator.go, podReconciliation) with status Error.
RETRIED = [
    ("Failed", "The node was low on resource: memory. Threshold quantity: 100Mi, available: 84Mi. Container main "
               "was using 31Gi, request is 32Gi, has larger consumption of memory."),
    ("Failed", "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 9Gi."),
    ("Failed", "Pod was terminated in response to imminent node shutdown."),
    ("Failed", "Pod was rejected: Node didn't have enough resource: nvidia.com/gpu, requested: 1, used: 4, "
               "capacity: 4"),
    ("Failed", "Pod Predicate NodeAffinity failed"),
    ("Failed", "Preempted in order to admit critical pod"),  # pkg/kubelet/preemption/preemption.go
    ("Error", "pod deleted"),
    ("Error", "failed to create pod: etcdserver: request timed out"),
]
NOT_RETRIED = [
    ("Failed", "Error (exit code 1)"),
    ("Failed", "Error (exit code 2)"),
    ("Failed", "OOMKilled (exit code 137)"),
    ("Failed", "Pod ephemeral local storage usage exceeds the total limit of containers 100Gi."),
    ("Failed", 'Usage of EmptyDir volume "cache" exceeds the limit "100Gi".'),
    ("Failed", "Pod was active on the node longer than the specified deadline"),
]


def test_retries_follow_evictions_preemptions_and_shutdowns_not_stage_failures(
        rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    for kind in POD_KINDS:
        expr = templates(docs)[kind]["retryStrategy"]["expression"]
        for status, message in RETRIED:
            assert rules.retry_expression(expr, status, message), (name, kind, message)
        for status, message in NOT_RETRIED:
            assert not rules.retry_expression(expr, status, message), (name, kind, message)


def test_every_pod_meets_the_restricted_pod_security_standard(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    for d in argo_docs(docs):
        for spec in rules.workflow_specs(d):
            for t in spec.get("templates", []):
                if any(True for _ in rules.user_containers(t)):
                    assert rules.template_pod_violations(spec, t) == [], (name, t["name"])
                for _, c in rules.user_containers(t):
                    assert c["securityContext"]["readOnlyRootFilesystem"] is True, (name, t["name"])
                    # Writable places: /tmp (HOME, matplotlib), /cache where xit caches (HF_HOME, XIT_CACHE),
                    # /work where a step writes output parameters.
                    mounts = {m["mountPath"] for m in c["volumeMounts"]}
                    env = {e["name"]: e.get("value") for e in c.get("env", [])}
                    assert "/tmp" in mounts and env["HOME"] == "/tmp", (name, t["name"])
                    for var in ("HF_HOME", "XIT_CACHE", "XDG_CACHE_HOME", "TRITON_CACHE_DIR", "MPLCONFIGDIR"):
                        if var in env:
                            assert any(env[var].startswith(m + "/") for m in mounts), (name, t["name"], var)
                    paths = [p.get("valueFrom", {}).get("path", "") for p in t.get("outputs", {}).get("parameters", [])]
                    assert all(any(p.startswith(m + "/") for m in mounts) for p in paths), (name, t["name"])
    # The checker is not vacuous.
    assert rules.restricted_violations({"runAsNonRoot": True}, [{"securityContext": {"allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]}}}], [{"name": "h", "hostPath": {}}])


def test_every_pod_argo_builds_passes_restricted_with_the_documented_executor_setting() -> None:
    """The whole pod Argo builds (its init/wait containers and volumes too) passes the "restricted" profile
    the `xit` namespace enforces, given the controller's executor securityContext the chart README asks
    for (infra/argo-executor-patch.yaml, what kind-up.sh applies); Argo's default (none) does not."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    patch = yaml.safe_load((root / "infra" / "argo-executor-patch.yaml").read_text())
    executor = yaml.safe_load(patch["data"]["executor"])
    sets = ("notify.webhookSecret.name=hook", "stages.target.runtimeClassName=nvidia",
            "extraVolumes[0].name=data", "extraVolumes[0].persistentVolumeClaim.claimName=corpora",
            "extraVolumeMounts[0].name=data", "extraVolumeMounts[0].mountPath=/data")
    for name, files in [*value_sets(), ("platform", [])]:
        docs = render(*files, sets=sets if name == "platform" else ())
        seen = 0
        for d in argo_docs(docs):
            for spec in rules.workflow_specs(d):
                for t in spec.get("templates", []):
                    if any(True for _ in rules.user_containers(t)):
                        seen += 1
                        assert rules.argo_pod_violations(spec, t, executor) == [], (name, t["name"])
                        assert "wait: allowPrivilegeEscalation is not false" in rules.argo_pod_violations(spec, t, None)
        assert seen >= len(POD_KINDS) + 2, name
    # A host path in extraVolumes, or a podSpecPatch that shares the host's IPC, is refused by the profile.
    t = templates(render(sets=("extraVolumes[0].name=h", "extraVolumes[0].hostPath.path=/srv",
                               "stages.target.podSpecPatch.hostIPC=true")))["target"]
    spec = sweep_template(render())["spec"]
    assert {"volume h: type ['hostPath']", "hostIPC"} <= set(rules.argo_pod_violations(spec, t, executor))
    # The helm test pod: a plain pod in the same namespace.
    test_pods = [d for d in render() if d["kind"] == "Pod"]
    assert test_pods
    for pod in test_pods:
        assert rules.restricted_violations(pod["spec"].get("securityContext"), pod["spec"]["containers"],
                                           pod["spec"].get("volumes", []), pod["spec"]) == []


def test_xit_containers_get_no_api_token(rendered: tuple[str, list[dict]]) -> None:
    """Argo mounts executor.serviceAccountName's token into its own containers only; the pod has none
    (workflow/controller/workflowpod.go, setupServiceAccount)."""
    name, docs = rendered
    spec = sweep_template(docs)["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["executor"]["serviceAccountName"] == spec["serviceAccountName"]
    for sa in by_kind(docs, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False
        (token,) = [s for s in by_kind(docs, "Secret")
                    if s["metadata"]["annotations"]["kubernetes.io/service-account.name"] == sa["metadata"]["name"]]
        assert token["metadata"]["name"] == f"{sa['metadata']['name']}.service-account-token"  # TokenName()


def test_a_stage_shared_by_two_sweeps_runs_once_at_a_time(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    ts = templates(docs)
    for kind in POD_KINDS:
        t = ts[kind]
        a = rules.lock_names(t, {"sweep": "grid/1111", "key": "k" * 16})
        b = rules.lock_names(t, {"sweep": "xnli-only/2222", "key": "k" * 16})
        c = rules.lock_names(t, {"sweep": "grid/1111", "key": "j" * 16})
        assert a and a == b and set(a).isdisjoint(c), (name, kind, a, c)
        if kind in GPU_KINDS:
            assert t["synchronization"]["semaphores"], (name, kind)


# What each argo command does with the API (argo-workflows workflow/util/util.go, server/workflow/workflow_server.go).
ARGO_COMMANDS = {
    "submit": [("argoproj.io", "workflows", "create"), ("argoproj.io", "workflowtemplates", "get")],
    "list/get/watch": [("argoproj.io", "workflows", v) for v in ("get", "list", "watch")],
    "logs": [("", "pods", "get"), ("", "pods/log", "get")],
    "stop/terminate": [("argoproj.io", "workflows", "patch")],  # patchShutdownStrategy
    "suspend/resume": [("argoproj.io", "workflows", "update")],  # SuspendWorkflow, ResumeWorkflow
    "retry": [("argoproj.io", "workflows", "update"), ("", "pods", "delete")],  # workflowServer.RetryWorkflow
    "resubmit": [("argoproj.io", "workflows", "create")],  # workflowServer.ResubmitWorkflow
    "delete": [("argoproj.io", "workflows", "delete"), ("argoproj.io", "workflows", "patch")],  # DeleteWorkflow
}


def allowed(role: dict, group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in role["rules"])


def test_submitter_role_can_control_its_sweeps() -> None:
    (role,) = [r for r in by_kind(render(), "Role") if r["metadata"]["name"].endswith("-submitter")]
    missing = {cmd: need for cmd, need in ARGO_COMMANDS.items() if not all(allowed(role, *n) for n in need)}
    assert missing == {}
    assert not allowed(role, "", "secrets", "get") and not allowed(role, "", "pods/exec", "create")


def test_rules_hold_on_the_pipelines_and_e2e_objects() -> None:
    """pipelines/ and infra/ Workflows only reference the template; any inline template obeys the rules too."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "pipelines").glob("*.yaml")):
        for d in yaml.safe_load_all(path.read_text()):
            if d and ss.is_argo(d):
                assert rules.containers_without_command(d) == [], path
                assert all(not rules.retry_window_problems(t) for t in rules.templates(d)), path


def test_two_releases_in_one_namespace_do_not_collide() -> None:
    """Every object, and the WorkflowTemplate the CronWorkflows and sweeps reference, is named after the release;
    only the per-stage-key mutexes are shared on purpose (a stage is the same stage for both)."""
    cron = ("cronWorkflows[0].name=n", "cronWorkflows[0].schedules[0]=0 3 * * *", "cronWorkflows[0].spec=x")
    a, b = render(release="xit"), render(release="team-b", sets=cron)
    names = lambda docs: {(d["kind"], d["metadata"]["name"]) for d in docs}  # noqa: E731
    assert names(a) and names(a).isdisjoint(names(b))
    assert sweep_template(a)["metadata"]["name"] == "xit-sweep"  # what pipelines/ and `xit submit` reference
    (cron,) = by_kind(b, "CronWorkflow")
    assert cron["spec"]["workflowSpec"]["workflowTemplateRef"]["name"] == sweep_template(b)["metadata"]["name"]
    for docs in (a, b):
        ts = templates(docs)
        for kind in GPU_KINDS:
            (sem,) = ts[kind]["synchronization"]["semaphores"]
            assert (("ConfigMap", sem["configMapKeyRef"]["name"]) in names(docs))


def test_parse_duration_matches_argo() -> None:
    assert rules.parse_duration("90") == 90 and rules.parse_duration("1h30m") == 5400
    assert rules.parse_duration("15m") == 900 and rules.parse_duration(120) == 120
    with pytest.raises(ValueError):
        rules.parse_duration("1d")


def paper_grid(seeds: list[int]) -> tuple[dict, str]:
    """pipelines/paper-grid.yaml's Workflow and its spec, with these seeds."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    wf = yaml.safe_load((root / "pipelines" / "paper-grid.yaml").read_text())
    (param,) = wf["spec"]["arguments"]["parameters"]
    spec = yaml.safe_load(param["value"])
    assert spec["seeds"] == [1]
    spec_text = param["value"].replace("seeds: [1]", f"seeds: {seeds}")
    assert yaml.safe_load(spec_text)["seeds"] == seeds
    return wf, spec_text


def measure_sweep(docs: list[dict], workflow: dict, spec_text: str, tmp_path: Path) -> dict[str, int]:
    """Expand the rendered template the way Argo does (tests/chart_tools.ArgoLocal, real plan and lookup
    steps, stage pods not run) and measure the Workflow it becomes: nodes, longest node name, bytes (with
    each pod's archived-log artifact when the chart's artifact repository archives logs)."""
    import json

    import yaml
    from chart_tools import ArgoLocal

    from xit import argo
    from xit.argo import load_sweep_plan
    from xit.store import open_store

    store = tmp_path / "store"
    name = workflow["metadata"]["generateName"] + "x7k2q"  # generateName + 5 random characters
    scored: list[str] = []

    def dry(template: str, args: list[str]) -> dict[str, str]:
        if "--scorers" not in args:
            return {}
        plan = load_sweep_plan(open_store(str(store)), args[args.index("--sweep") + 1])
        keys = argo.scorers(plan, args[args.index("--key") + 1])
        scored.extend(keys)
        return argo.scorer_outputs(keys)

    wt = sweep_template(docs)
    repos = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-artifact-repositories")]
    repo = yaml.safe_load(repos[0]["data"]["default"]) if repos else {}
    log_keys = repo["s3"]["keyFormat"] if repo.get("archiveLogs") else None
    runner = ArgoLocal(wt, tmp_path, {"spec": spec_text, "store": str(store)}, dry=dry, name=name)
    runner.run()
    ran = [a[a.index("--key") + 1] if "--key" in a else "report" for t, a in runner.ran
           if a[:2] == ["stage", "run"] or a[:1] == ["report"]]
    wf = {**workflow, "metadata": {**workflow["metadata"], "name": name}}
    wf["spec"] = {**wf["spec"], "arguments": {"parameters": [{"name": "spec", "value": spec_text}]}}
    own = len(json.dumps(wf, separators=(",", ":")))
    plain, compressed = rules.estimated_status(name, runner.nodes, wt["spec"], log_keys, runner.parameters)
    (plan_file,) = (store / "sweeps").glob("*/*/plan.json")
    planned = len(json.loads(plan_file.read_text())["stages"])
    return {"nodes": len(runner.nodes), "stage pods": len(ran), "stages run": len(set(ran + scored)),
            "plan stages": planned,
            "longest name": max(len(n["name"]) for n in runner.nodes), "bytes": own + plain,
            "bytes compressed": own + compressed}


def test_paper_grid_with_three_seeds_fits_argo_limits(tmp_path: Path) -> None:
    """The rendered paper-grid Workflow for 3 seeds, measured: every node name stays under 200 characters,
    and the whole Workflow (spec, stored template, node statuses with archived-log artifacts) stays under
    Argo's 1 MiB, where the controller starts compressing status.nodes (and beyond which it needs node status
    offloading). Measured here: 571 stages in 319 stage pods, 813 nodes, names up to 89 characters, about
    0.91 MB of JSON. Before target pods scored their own models (a DAG per target, a pod per stage) and a
    branch was its index alone: 1,637 nodes, names up to 177 characters, about 1.7 MB by this estimate;
    before short items: about 2,100 nodes, names up to 2.5 KB."""
    wf, spec_text = paper_grid([1, 2, 3])
    m = measure_sweep(render(), wf, spec_text, tmp_path)
    print(f"paper grid, 3 seeds: {m}")
    assert m["stages run"] == m["plan stages"] > 500, m  # each stage once: the measurement covers the whole sweep
    assert m["longest name"] < rules.MAX_NODE_NAME / 2, m
    # A target and its scoring are one pod: fewer pods than stages, each two nodes (Retry and its Pod), plus a
    # few per branch (its DAG, the TaskGroups of its targets and retrieval stages).
    assert m["stage pods"] < 0.6 * m["plan stages"], m
    assert m["nodes"] < 2.7 * m["stage pods"], m
    assert m["bytes"] < rules.STATUS_COMPRESS_ABOVE, m
    assert m["bytes compressed"] < rules.STATUS_COMPRESS_ABOVE / 8, m
    # The sizing notes quote these two figures: they are this measurement's, within 10 %.
    for path, (plain, compressed) in quoted_status_sizes().items():
        assert plain, f"{path} quotes no node status size"
        for mb in plain:
            assert mb * 1e6 == pytest.approx(m["bytes"], rel=0.1), (path, mb, m)
        for mb in compressed:
            assert mb * 1e6 == pytest.approx(m["bytes compressed"], rel=0.1), (path, mb, m)


# The notes that quote the paper grid's node status size (test_paper_grid_with_three_seeds_fits_argo_limits).
SIZING_NOTES = (ROOT / "README.md", CHART / "README.md", CHART / "README.notes.md")


def quoted_status_sizes() -> dict[str, tuple[list[float], list[float]]]:
    """Per note, the sizes in MB it quotes: of the status as JSON ("about 0.9 MB of JSON" / "of node status"),
    and compressed ("(about 0.08 MB so)")."""
    import re

    out = {}
    for path in SIZING_NOTES:
        text = " ".join(path.read_text().split())
        out[str(path.relative_to(ROOT))] = (
            [float(x) for x in re.findall(r"about (\d+(?:\.\d+)?) MB of (?:JSON|node status)", text)],
            [float(x) for x in re.findall(r"\(about (\d+(?:\.\d+)?) MB so\)", text)])
    return out


# ----------------------------------------------------------------------------------- platform

ARGO_MIN_KUBERNETES = (1, 34)  # argo-workflows hack/k8s-versions.sh (v4.1 line): K8S_VERSIONS[min]=v1.34.9


def test_kube_version_is_argo_v4s_floor_and_the_kind_cluster_meets_it() -> None:
    import yaml
    from chart_tools import helm
    from test_infra import cluster_version

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={ARGO_MIN_KUBERNETES[0]}.{ARGO_MIN_KUBERNETES[1]}.0-0"
    below = f"{ARGO_MIN_KUBERNETES[0]}.{ARGO_MIN_KUBERNETES[1] - 1}.0"
    out = helm("template", "xit", str(CHART), "--kube-version", below)
    assert out.returncode != 0 and "kubeVersion" in out.stderr, out.stderr
    assert helm("template", "xit", str(CHART), "--kube-version", cluster_version()).returncode == 0
    assert chart["annotations"]["artifacthub.io/license"] == "Apache-2.0" and chart["maintainers"]
    assert "Argo Workflows >= 4.0" in chart["annotations"]["xit.dev/requires"]


def test_podmonitor_and_alerts_select_what_argo_and_xit_export(tmp_path: Path) -> None:
    """PromQL checked by promtool; each alert reads metrics that exist: Argo's (docs/metrics.md, prefixed
    argo_workflows_), the chart's own lock and template names, and xit's telemetry series."""
    import subprocess

    import yaml
    from servers import require_binary

    from xit import telemetry

    sets = ("metrics.podMonitor.create=true", "metrics.prometheusRule.create=true",
            "metrics.podMonitor.labels.release=kps", "concurrency.gpuStages=3")
    docs = render(sets=sets, release="team-b", namespace="research")
    (pm,) = by_kind(docs, "PodMonitor")
    assert pm["spec"]["namespaceSelector"]["matchNames"] == ["argo"]
    assert pm["spec"]["selector"]["matchLabels"] == {"app": "workflow-controller"}
    assert pm["metadata"]["labels"]["release"] == "kps" and pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    (rule,) = by_kind(docs, "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {"XitSweepFailed", "XitStageStuck", "XitGpuSemaphoreSaturated"}
    assert 'name="team-b-xit-sweep"' in alerts["XitSweepFailed"] and 'namespace="research"' in alerts["XitSweepFailed"]
    (cm,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-semaphores")]
    # Argo's lock name: <namespace>/ConfigMap/<name>/<key> (workflow/sync/lock_name.go, lockName.String).
    assert f'lock_name="research/ConfigMap/{cm["metadata"]["name"]}/gpu-stages"' in alerts["XitGpuSemaphoreSaturated"]
    assert ">= 3" in alerts["XitGpuSemaphoreSaturated"]
    source = Path(telemetry.__file__).read_text()
    for series in ("xit_stage_last_push_timestamp_seconds", "xit_stage_status"):
        assert series in alerts["XitStageStuck"] and series in source
    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump(rule["spec"]))
    out = subprocess.run([require_binary("promtool"), "check", "rules", str(f)], capture_output=True, text=True)
    assert out.returncode == 0 and "SUCCESS: 3 rules found" in out.stdout, out.stdout + out.stderr
    assert not by_kind(render(), "PodMonitor") and not by_kind(render(), "PrometheusRule")


def test_helm_test_hook_plans_into_the_store_as_the_sweep_does(tmp_path: Path) -> None:
    """`helm test`: a restricted pod runs `xit stage plan` on a valid one-stage spec against the chart's store."""
    from chart_tools import parse_cli

    from xit.spec import load_spec

    docs = render(CHART_VALUES[1])
    hooks = [d for d in docs if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    (pod,) = [d for d in hooks if d["kind"] == "Pod"]
    (cm,) = [d for d in hooks if d["kind"] == "ConfigMap"]
    (c,) = pod["spec"]["containers"]
    assert c["command"] == ["xit"] and c["image"] == templates(docs)["plan"]["container"]["image"]
    command, params = parse_cli(c["args"])
    assert command == "stage plan" and params["store"] == "s3://xit/runs"
    assert {e["name"] for e in c["env"]} >= {"AWS_ACCESS_KEY_ID", "XIT_S3_ENDPOINT"}
    assert rules.restricted_violations(pod["spec"]["securityContext"], [c], pod["spec"]["volumes"]) == []
    assert pod["spec"]["automountServiceAccountToken"] is False and pod["spec"]["restartPolicy"] == "Never"
    spec = tmp_path / "spec.yaml"
    spec.write_text(cm["data"]["spec.yaml"])
    assert load_spec(spec).name == "helm-test"


def test_exit_handler_posts_the_sweeps_outcome_to_the_webhook(tmp_path: Path) -> None:
    """onExit runs `xit notify` with Argo's workflow variables; it posts one Slack-compatible JSON body."""
    import json
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from chart_tools import parse_cli

    docs = render(CHART_VALUES[0])
    spec = sweep_template(docs)["spec"]
    assert spec["onExit"] == "notify"
    c = templates(docs)["notify"]["container"]
    assert c["args"][c["args"].index("--failures") + 1] == "{{workflow.failures}}"
    command, _ = parse_cli([a.replace("{{", "").replace("}}", "") for a in c["args"]])
    assert command == "notify"
    env = {e["name"]: e for e in c["env"]}
    assert env["XIT_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"] == {"name": "xit-slack-webhook", "key": "url"}
    assert "onExit" not in sweep_template(render())["spec"]

    received: list[dict] = []
    answer = [200]

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(answer[0])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    failures = json.dumps([{"displayName": "target(0)", "message": "Error (exit code 1)", "templateName": "target",
                            "phase": "Failed", "podName": "p", "finishedAt": "2026-12-01T00:00:00Z"}])

    def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "xit.cli", "notify", "--workflow", "grid-abcde", "--namespace",
                               "xit", "--status", "Failed", *args], capture_output=True, text=True,
                              env={**__import__("os").environ, "XIT_WEBHOOK_URL": url})
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        r = run(url, "--failures", failures)
        assert r.returncode == 0, r.stderr
        (body,) = received
        assert body["text"] == "xit sweep grid-abcde in xit: Failed\n• target(0) (target): Error (exit code 1)"
        assert body["status"] == "Failed" and body["failures"][0]["podName"] == "p"
        assert run(url, "--failures", "").returncode == 0 and received[-1]["failures"] == []
        answer[0] = 500
        r = run(url)
        assert r.returncode == 1 and "HTTP 500" in r.stderr
        for bad in (("", "--failures", "[]"), (url, "--failures", "{not json")):
            r = run(*bad)
            assert r.returncode == 2 and len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1, r.stderr
    finally:
        server.shutdown()
        server.server_close()


def test_chart_readme_is_generated_from_the_values_comments() -> None:
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "scripts" / "chart_readme.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    readme = (root / "helm" / "xit" / "README.md").read_text()
    values = yaml.safe_load((root / "helm" / "xit" / "values.yaml").read_text())
    for key in ("retry.backoff.cap", "podLabels", "notify.webhookSecret.name", "gpuDriverFloor.minDriverMajor",
                "metrics.prometheusRule.stageStuckSeconds", "sweep.templateName"):
        row = next(ln for ln in readme.splitlines() if ln.startswith(f"| `{key}` |"))
        value = values
        for part in key.split("."):
            value = value[part]
        assert f"`{__import__('json').dumps(value, separators=(',', ':'))}`" in row, row


def test_pod_labels_annotations_volumes_and_runtime_class_reach_every_pod() -> None:
    """Platform settings land in each pod Argo builds: template metadata (labels, annotations), volumes and
    mounts, and runtimeClassName through podSpecPatch (Argo has no template field for it; workflowpod.go,
    createWorkflowPod applies the patch to the pod spec)."""
    import json

    sets = ("podLabels.team=nlp", "podAnnotations.cluster-autoscaler\\.kubernetes\\.io/safe-to-evict=no",
            "extraVolumes[0].name=data", "extraVolumes[0].persistentVolumeClaim.claimName=corpora",
            "extraVolumeMounts[0].name=data", "extraVolumeMounts[0].mountPath=/data",
            "stages.target.runtimeClassName=nvidia", "stages.target.podSpecPatch.hostIPC=false")
    docs = render(sets=sets)
    pods = {n: t for n, t in templates(docs).items() if "container" in t}
    assert set(pods) >= {"plan", "branch-lookup", *POD_KINDS}
    for name, t in pods.items():
        assert t["metadata"]["labels"]["team"] == "nlp", name
        assert t["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "no", name
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "corpora"}} in t["volumes"], name
        assert {"name": "data", "mountPath": "/data"} in t["container"]["volumeMounts"], name
    assert json.loads(pods["target"]["podSpecPatch"]) == {"runtimeClassName": "nvidia", "hostIPC": False}
    assert all("podSpecPatch" not in t for n, t in pods.items() if n != "target")
    errors = [e for d in docs if ss.is_argo(d) for e in ss.hera_errors(d)]
    assert errors == []
