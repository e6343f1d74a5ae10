"""The rendered chart against Argo's and Kubernetes' runtime rules (tests/argo_rules.py), for every values
file: what a schema accepts but a real controller or API server would refuse or run wrongly."""

from __future__ import annotations

import copy
from pathlib import Path

import argo_rules as rules
import pytest
import strict_schemas as ss
from chart_tools import by_kind, render
from test_chart import GPU_KINDS, sweep_template, templates, value_sets

from xit.cluster import STAGE_KINDS


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
    for kind in STAGE_KINDS:
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
    for kind in STAGE_KINDS:
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
                    # Writable places: /tmp (HOME, matplotlib) and /cache; the plan step also /work.
                    mounts = {m["mountPath"] for m in c["volumeMounts"]}
                    assert {"/tmp", "/cache"} <= mounts, (name, t["name"])
                    env = {e["name"]: e.get("value") for e in c.get("env", [])}
                    assert env["HOME"] == "/tmp" and env["MPLCONFIGDIR"].startswith("/tmp/"), (name, t["name"])
    # The checker is not vacuous.
    assert rules.restricted_violations({"runAsNonRoot": True}, [{"securityContext": {"allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]}}}], [{"name": "h", "hostPath": {}}])


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
    for kind in STAGE_KINDS:
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


def test_parse_duration_matches_argo() -> None:
    assert rules.parse_duration("90") == 90 and rules.parse_duration("1h30m") == 5400
    assert rules.parse_duration("15m") == 900 and rules.parse_duration(120) == 120
    with pytest.raises(ValueError):
        rules.parse_duration("1d")
