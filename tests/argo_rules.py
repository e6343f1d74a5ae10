"""Runtime rules of Argo Workflows v4.1 and Kubernetes that no schema can see, as checks on rendered objects.

A CRD or Hera model accepts a template that a real controller then refuses or runs wrongly; each rule
below is what the controller (argoproj/argo-workflows, v4.1 line) or the API server does, with the file
and function it comes from, so the chart tests catch the class of mistake, not one instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# --------------------------------------------------------------------------------------- templates


def workflow_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The workflow specs in an Argo object (a CronWorkflow wraps one in spec.workflowSpec)."""
    if doc.get("kind") == "CronWorkflow":
        return [doc["spec"]["workflowSpec"]]
    if doc.get("kind") in ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"):
        return [doc["spec"]]
    return []


def templates(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for spec in workflow_specs(doc):
        yield from spec.get("templates", [])


def user_containers(t: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role, container) for every container a template's pod runs besides Argo's own."""
    for role in ("container", "script"):
        if role in t:
            yield role, t[role]
    for c in t.get("containerSet", {}).get("containers", []):
        yield "containerSet", c
    for role in ("initContainers", "sidecars"):
        for c in t.get(role, []):
            yield role, c


def containers_without_command(doc: dict[str, Any]) -> list[str]:
    """Argo's emissary executor needs each container's command. Without one the controller asks the
    image registry for the image's ENTRYPOINT (workflow/controller/workflowpod.go, createWorkflowPod:
    `if len(c.Command) == 0` → lookupImage), which fails for images that were loaded into the nodes
    (kind, pullPolicy Never) and needs pull credentials for private registries. A script template
    gets its command from the template itself (`script.command`), so the rule is the same."""
    return [f"{t['name']}/{role}" for t in templates(doc) for role, c in user_containers(t) if not c.get("command")]


# ------------------------------------------------------------------------------------------- retries


def parse_duration(text: str | int) -> float:
    """Seconds of an Argo duration: a bare integer is seconds, else Go's time.ParseDuration
    (pkg/apis/workflow/v1alpha1/utils.go, ParseStringToDuration)."""
    s = str(text)
    if re.fullmatch(r"-?\d+", s):
        return float(int(s))
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def backoff_waits(retry: dict[str, Any]) -> list[float]:
    """Seconds Argo waits before each retry (workflow/controller/operator.go, processNodeRetries):
    duration × factor^(n-1) for the n-th retry, cut to backoff.cap when set."""
    b = retry.get("backoff") or {}
    if not b:
        return [0.0] * int(retry.get("limit", 0))
    base, factor = parse_duration(b["duration"]), int(b.get("factor") or 0)
    waits = []
    for n in range(int(retry.get("limit", 0))):
        w = base * (factor**n if factor > 0 else 1)
        if b.get("cap"):
            w = min(w, parse_duration(b["cap"]))
        waits.append(w)
    return waits


def retry_window_problems(t: dict[str, Any]) -> list[str]:
    """backoff.maxDuration is a window from the first attempt's start, not a cap on one wait: once it has
    passed no retry happens ("Max duration limit exceeded"), a wait that would end after it fails the node
    ("Backoff would exceed max duration limit"), and each retried pod gets the rest of the window as its
    deadline (processNodeRetries sets opts.executionDeadline). So, with a per-attempt deadline
    (activeDeadlineSeconds), the window must hold every attempt at its full deadline plus every wait;
    and waits that grow by a factor must be cut by backoff.cap (else the 5th wait of 1m × 2^n is 16m)."""
    rs = t.get("retryStrategy")
    if not rs or not rs.get("backoff"):
        return []
    b, problems = rs["backoff"], []
    if int(b.get("factor") or 0) > 1 and not b.get("cap"):
        problems.append(f"{t['name']}: backoff grows by factor {b['factor']} without a cap")
    if b.get("maxDuration"):
        window = parse_duration(b["maxDuration"])
        deadline = t.get("activeDeadlineSeconds")
        if not deadline:
            problems.append(f"{t['name']}: maxDuration {b['maxDuration']} with no per-attempt deadline")
        else:
            need = (int(rs.get("limit", 0)) + 1) * float(deadline) + sum(backoff_waits(rs))
            if window < need:
                problems.append(f"{t['name']}: retry window {window:.0f}s < {need:.0f}s "
                                f"({int(rs.get('limit', 0)) + 1} attempts of {deadline}s plus the waits)")
    return problems


def retry_expression(expr: str, status: str, message: str) -> bool:
    """Evaluate a retryStrategy.expression of the forms the chart uses (expr-lang: ==, matches, &&, ||,
    parentheses) for a last attempt with this status and message. Argo evaluates it against
    `lastRetry.status` / `lastRetry.message` (workflow/controller/operator.go, executeTemplate: "Inject lastRetry
    variables"); the node
    message of a failed pod is the pod's status.message (operator.go, inferFailedReason)."""
    tokens = re.findall(r"lastRetry\.\w+|'(?:[^'\\]|\\.)*'|==|!=|matches|&&|\|\||[()]|\S+", expr)
    env = {"lastRetry.status": status, "lastRetry.message": message}
    values: list[str] = []
    py = []
    for tok in tokens:
        if tok in env or tok.startswith("'"):
            values.append(env[tok] if tok in env else tok[1:-1].replace("\\'", "'"))
            py.append(f"_v{len(values) - 1}")
        elif tok in ("==", "!=", "(", ")"):
            py.append(tok)
        elif tok in ("&&", "||"):
            py.append("and" if tok == "&&" else "or")
        elif tok == "matches":
            py.append("@")
        else:
            raise ValueError(f"unsupported token {tok!r} in {expr!r}")
    code = re.sub(r"(_v\d+) @ (_v\d+)", r"_m(\1, \2)", " ".join(py))
    scope = {f"_v{i}": v for i, v in enumerate(values)}
    scope.update(__builtins__={}, _m=lambda s, p: re.search(p, s) is not None)
    return bool(eval(code, scope))  # noqa: S307 (only names and operators built above)


# ------------------------------------------------------------------------------------- pod security

RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}


def restricted_violations(pod_sc: dict[str, Any] | None, containers: list[dict[str, Any]],
                          volumes: list[dict[str, Any]], pod: dict[str, Any] | None = None) -> list[str]:
    """The "restricted" Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-standards,
    as enforced by the PodSecurity admission controller, k8s.io/pod-security-admission/policy):
    restricted volume types; no host namespaces or privileged containers; allowPrivilegeEscalation false;
    runAsNonRoot true and runAsUser not 0; seccompProfile RuntimeDefault or Localhost; capabilities drop
    ALL and add at most NET_BIND_SERVICE. Pod-level settings count for every container."""
    pod_sc, pod, out = pod_sc or {}, pod or {}, []
    for v in volumes:
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(f"volume {v['name']}: type {sorted(kinds - RESTRICTED_VOLUMES)}")
    for k in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(k):
            out.append(k)
    if pod_sc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    for c in containers:
        sc, name = c.get("securityContext") or {}, c.get("name", "main")
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            out.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile {seccomp}")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities not dropped")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities {caps['add']}")
        for p in c.get("ports", []):
            if p.get("hostPort"):
                out.append(f"{name}: hostPort")
    return out


def template_pod_violations(spec: dict[str, Any], t: dict[str, Any]) -> list[str]:
    """The restricted profile for the pod Argo builds from template `t` of workflow spec `spec`: the
    template's securityContext, else the spec's (workflow/controller/workflowpod.go, createWorkflowPod);
    the template's volumes and containers. Argo's own init/wait containers take their securityContext
    from the controller's `executor` configuration, outside the chart."""
    pod_sc = t.get("securityContext", spec.get("securityContext"))
    containers = [c for _, c in user_containers(t)]
    return restricted_violations(pod_sc, containers, t.get("volumes", []) + spec.get("volumes", []), t)


# ----------------------------------------------------------------------------------------- locks


def lock_names(t: dict[str, Any], inputs: dict[str, str]) -> list[str]:
    """Names of the mutexes a template takes, after Argo substitutes its inputs (operator.go,
    executeTemplate: TryAcquire on processedTmpl.Synchronization)."""
    names = []
    for m in (t.get("synchronization") or {}).get("mutexes", []):
        name = m["name"]
        for k, v in inputs.items():
            name = name.replace(f"{{{{inputs.parameters.{k}}}}}", v)
        assert "{{" not in name, f"unresolved reference in mutex {m['name']!r}"
        names.append(f"{m.get('namespace', '')}/{name}")
    return names


# ------------------------------------------------------------------------------------- status size

MAX_NODE_NAME = 200  # leaves room below the 253 characters of a label value / pod name derived from it
STATUS_COMPRESS_ABOVE = 1024 * 1024  # bytes: Argo gzips status.nodes above this, and needs offloading beyond


def estimated_status(workflow_name: str, nodes: list[dict[str, Any]],
                     stored_template: dict[str, Any]) -> tuple[int, int]:
    """Bytes of a finished Workflow's status as the controller writes it: one NodeStatus per node
    (pkg/apis/workflow/v1alpha1/workflow_types.go, NodeStatus: id, name, displayName, type, templateName,
    templateScope, phase, boundaryID, times, progress, resourcesDuration, inputs, outputs, children,
    hostNodeName, message, estimatedDuration), keyed by node ID (util.NodeID: workflow name + hash), plus the
    stored WorkflowTemplate spec (status.storedWorkflowTemplateSpec). Typical values stand in for what
    only a run knows (times, hosts, resource use). Above MAX_WORKFLOW_SIZE (1 MiB by default) of JSON
    the controller stores status.nodes gzipped and base64-encoded (status.compressedNodes), and if that is
    still too large it needs node status offloading to a database (workflow/packer/packer.go,
    getMaxWorkflowSize, CompressWorkflowIfNeeded, compressWorkflow; util/file/fileutil.go,
    CompressEncodeString). Returns (bytes as JSON, bytes with the nodes compressed)."""
    import base64
    import gzip
    import json

    ids = {n["name"]: f"{workflow_name}-{1000000000 + i}" for i, n in enumerate(nodes)}
    children: dict[str, list[str]] = {}
    for n in nodes:
        parent = _parent_name(n["name"], ids)
        if parent:
            children.setdefault(parent, []).append(ids[n["name"]])
    rest = len(json.dumps(stored_template, separators=(",", ":")))
    statuses: dict[str, Any] = {}
    for n in nodes:
        status: dict[str, Any] = {
            "id": ids[n["name"]], "name": n["name"], "displayName": n["name"].rsplit(".", 1)[-1],
            "type": n["type"], "templateScope": f"namespaced/{workflow_name}", "phase": n["phase"],
            "boundaryID": ids.get(_parent_name(n["name"], ids) or "", ""),
            "startedAt": "2026-12-01T23:00:00Z", "finishedAt": "2026-12-02T01:00:00Z", "progress": "1/1",
            "children": children.get(n["name"], []),
        }
        if n.get("templateName"):
            status["templateName"] = n["templateName"]
        if n["inputs"]:
            status["inputs"] = {"parameters": [{"name": k, "value": v} for k, v in n["inputs"].items()]}
        if n["type"] == "Pod":
            status.update(hostNodeName="ip-10-120-123-245.eu-west-1.compute.internal", estimatedDuration=7200,
                          resourcesDuration={"cpu": 28800, "memory": 230400, "nvidia.com/gpu": 7200})
            status["outputs"] = {"exitCode": "0", "parameters": [
                {"name": k, "value": v, "valueFrom": {"path": f"/work/outputs/{k}"}} for k, v in n["outputs"].items()]}
        if n["type"] == "Skipped":  # `when` false, or an empty withParam (dag.go, executeDAGTask)
            empty = n.get("templateName") is None
            status["message"] = "Skipped, empty params" if empty else "when 'false' evaluated false"
        statuses[status["id"]] = status
    text = json.dumps(statuses, separators=(",", ":")).encode()
    return rest + len(text), rest + len(base64.b64encode(gzip.compress(text)))


def _parent_name(name: str, known: dict[str, str]) -> str | None:
    for cut in (name.rfind("."), name.rfind("("), name.rfind("[")):
        if cut > 0:
            parent = name[:cut]
            if parent in known:
                return parent
    return None
