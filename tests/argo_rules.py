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


# Volumes the controller adds to every pod (workflow/controller/workflowpod.go, createVolumes: var-run-argo and
# tmp-dir-argo, emptyDirs shared with its init and wait containers).
ARGO_POD_VOLUMES = [{"name": "var-run-argo", "emptyDir": {}}, {"name": "tmp-dir-argo", "emptyDir": {}}]


def argo_pod_violations(spec: dict[str, Any], t: dict[str, Any], executor: dict[str, Any] | None) -> list[str]:
    """The restricted profile for the whole pod Argo builds from template `t` in its default layout
    (workflow/controller/workflowpod.go, createWorkflowPod): the template's containers; Argo's `init`
    and `wait` containers, whose securityContext is the controller's `executor.securityContext`
    (newExecContainer; `executor` is that setting of workflow-controller-configmap, None for none); its
    volumes (createVolumes: two emptyDirs; the executor's ServiceAccount token as a secret volume,
    exec-sa-token; an input-artifacts emptyDir for a template with input artifacts); and the template's
    podSpecPatch merged into the pod (ApplyPodSpecPatch). The opt-in init-less layout (config.go,
    initlessPod) mounts argoexec as an image volume instead and is not modelled."""
    import json

    pod_sc = t.get("securityContext", spec.get("securityContext"))
    argo_sc = (executor or {}).get("securityContext")
    containers = [c for _, c in user_containers(t)]
    containers += [{"name": n, "securityContext": argo_sc} for n in ("init", "wait")]
    volumes = t.get("volumes", []) + spec.get("volumes", []) + ARGO_POD_VOLUMES
    if (spec.get("executor") or {}).get("serviceAccountName"):
        volumes.append({"name": "exec-sa-token", "secret": {"secretName": "token"}})
    if (t.get("inputs") or {}).get("artifacts"):
        volumes.append({"name": "input-artifacts", "emptyDir": {}})
    pod = {**t, **json.loads(t.get("podSpecPatch") or "{}")}
    return restricted_violations(pod_sc, containers, volumes, pod)


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


def estimated_status(workflow_name: str, nodes: list[dict[str, Any]], stored_template: dict[str, Any],
                     log_key_format: str | None = None, parameters: dict[str, str] | None = None) -> tuple[int, int]:
    """Bytes of a finished Workflow's status as the controller writes it: one NodeStatus per node
    (pkg/apis/workflow/v1alpha1/workflow_types.go, NodeStatus), keyed by node ID (Workflow.NodeID: workflow
    name + FNV-32 hash), plus the stored WorkflowTemplate spec (status.storedWorkflowTemplateSpec).

    Each node as workflow/controller/operator.go writes it: initializeNode (id, name, displayName: the name
    after its boundary node's, templateName, templateScope "local/<workflow>" for templates of the workflow
    itself, type, boundaryID: the enclosing DAG, phase, startedAt, estimatedDuration; taskResultSynced on
    pods), initializeExecutableNode (inputs: the template's parameters, also on the Retry node), the retry
    loop (executeTemplate: nodeFlag.retried on each attempt; processNodeRetries: the Retry node gets its
    last attempt's outputs), podReconciliation (hostNodeName, resourcesDuration: resource.DurationForPod),
    and dag.go (outboundNodes of a DAG: the pods of its leaf tasks, getOutboundNodes). A pod's outputs are
    its output parameters, exitCode, and with archiveLogs its log artifact (workflow/executor/executor.go,
    SaveLogs: "main-logs" at the archive location's key + "/main.log"; `log_key_format` is the artifact
    repository's keyFormat). A template's input artifacts are in its nodes' inputs too, a raw artifact with
    its data (the plan step's spec: `parameters` are the workflow's, substituted into it). Beside the nodes,
    status.taskResultsCompletionStatus has an entry per pod. Typical values stand in for what only a run
    knows (times, hosts, resource use).

    Above MAX_WORKFLOW_SIZE (1 MiB by default) of JSON the controller stores status.nodes gzipped and
    base64-encoded (status.compressedNodes), and if that is still too large it needs node status
    offloading to a database (workflow/packer/packer.go, getMaxWorkflowSize, CompressWorkflowIfNeeded,
    compressWorkflow; util/file/fileutil.go, CompressEncodeString). Returns (bytes as JSON, bytes with
    the nodes compressed)."""
    import base64
    import copy
    import gzip
    import json
    import re

    by_name = {n["name"]: n for n in nodes}
    ids = {n["name"]: f"{workflow_name}-{4000000000 + i}" for i, n in enumerate(nodes)}
    names = {v: k for k, v in ids.items()}
    parent = {n["name"]: _parent_name(n["name"], ids) for n in nodes}
    children: dict[str, list[str]] = {}  # the node tree: a DAG's tasks, a TaskGroup's items, a Retry's attempts
    for n in nodes:
        if parent[n["name"]]:
            children.setdefault(parent[n["name"]], []).append(n["name"])
    dag_tasks = {t["name"]: t["dag"]["tasks"] for t in stored_template["templates"] if "dag" in t}

    def boundary(name: str) -> str | None:
        up = parent[name]
        while up and by_name[up]["type"] not in ("DAG", "Steps"):
            up = parent[up]
        return up

    def outbound(name: str) -> list[str]:
        n = by_name[name]
        kids = children.get(name, [])
        if n["type"] == "Retry":
            return outbound(kids[-1]) if kids else []
        if n["type"] == "TaskGroup":
            return [i for k in kids for i in outbound(k)] if kids else [ids[name]]
        if n["type"] == "DAG":
            tasks = dag_tasks[n["templateName"]]
            needed = {d for t in tasks for d in re.findall(r"[\w-]+", t.get("depends", ""))}
            return [i for t in tasks if t["name"] not in needed and f"{name}.{t['name']}" in by_name
                    for i in outbound(f"{name}.{t['name']}")]
        return [ids[name]]

    # status.children as Argo links them (dag.go, executeDAGTask → connectDependencies): a DAG's root tasks are its
    # children; a task that depends on others is a child of each of their outbound nodes (the report, of every
    # leaf pod of every branch); a TaskGroup's items and a Retry's attempts are its children.
    linked: dict[str, list[str]] = {}
    for n in nodes:
        up = parent[n["name"]]
        if up and by_name[up]["type"] == "DAG":
            (task,) = [t for t in dag_tasks[by_name[up]["templateName"]] if f"{up}.{t['name']}" == n["name"]]
            deps = re.findall(r"[\w-]+", task.get("depends", ""))
            ups = [names[i] for d in deps for i in outbound(f"{up}.{d}")] if deps else [up]
        else:
            ups = [up] if up else []
        for u in ups:
            linked.setdefault(u, []).append(n["name"])

    artifacts: dict[str, list[dict[str, Any]]] = {}
    for t in stored_template["templates"]:
        arts = copy.deepcopy((t.get("inputs") or {}).get("artifacts") or [])
        for a in arts:
            for k, v in (parameters or {}).items():
                if "raw" in a:
                    a["raw"]["data"] = a["raw"]["data"].replace(f"{{{{workflow.parameters.{k}}}}}", v)
        if arts:
            artifacts[t["name"]] = arts

    statuses: dict[str, Any] = {}
    for n in nodes:
        name, b = n["name"], boundary(n["name"])
        display = re.sub(r"^(\[\d+\]\.|\.)", "", name.removeprefix(b)) if b else name
        status: dict[str, Any] = {"id": ids[name], "name": name, "displayName": display, "type": n["type"]}
        if n.get("templateName"):
            status["templateName"] = n["templateName"]
        status.update(templateScope=f"local/{workflow_name}", phase=n["phase"])
        if b:
            status["boundaryID"] = ids[b]
        status.update(startedAt="2026-12-01T23:00:00Z", finishedAt="2026-12-02T01:00:00Z",
                      estimatedDuration=7200, progress="1/1")
        if n["type"] == "Skipped":  # `when` false, or an empty withParam (dag.go, executeDAGTask)
            empty = n.get("templateName") is None
            status["message"] = "Skipped, empty params" if empty else "when 'false' evaluated false"
        if n["type"] == "Pod":
            status["resourcesDuration"] = {"cpu": 28800, "memory": 230400, "nvidia.com/gpu": 7200}
            if parent[name] and by_name[parent[name]]["type"] == "Retry":
                status["nodeFlag"] = {"retried": True}
        inputs: dict[str, Any] = {}
        if n["inputs"]:
            inputs["parameters"] = [{"name": k, "value": v} for k, v in n["inputs"].items()]
        if n["type"] in ("Pod", "Retry") and artifacts.get(n["templateName"]):
            inputs["artifacts"] = artifacts[n["templateName"]]
        if inputs:
            status["inputs"] = inputs
        pod = n if n["type"] == "Pod" else by_name.get(children.get(name, [""])[-1]) if n["type"] == "Retry" else None
        if pod is not None and pod["type"] == "Pod":
            outputs: dict[str, Any] = {"exitCode": "0"}
            if pod["outputs"]:
                outputs["parameters"] = [{"name": k, "value": v, "valueFrom": {"path": f"/work/outputs/{k}"}}
                                         for k, v in pod["outputs"].items()]
            if log_key_format:
                pod_name = f"{workflow_name}-{pod['templateName']}-{ids[pod['name']].rsplit('-', 1)[1]}"
                key = log_key_format.replace("{{workflow.name}}", workflow_name).replace("{{pod.name}}", pod_name)
                outputs["artifacts"] = [{"name": "main-logs", "s3": {"key": f"{key}/main.log"}}]
            status["outputs"] = outputs
        if linked.get(name):
            status["children"] = [ids[c] for c in linked[name]]
        if n["type"] == "Skipped":
            status["nodeFlag"] = {}
        if n["type"] == "DAG":
            status["outboundNodes"] = outbound(name)
        if n["type"] == "Pod":
            status["hostNodeName"] = "ip-10-120-123-245.eu-west-1.compute.internal"
            status["taskResultSynced"] = True
        statuses[status["id"]] = status
    text = json.dumps(statuses, separators=(",", ":")).encode()
    completion = {ids[n["name"]]: True for n in nodes if n["type"] == "Pod"}
    rest = len(json.dumps(stored_template, separators=(",", ":")))
    rest += len(json.dumps({"taskResultsCompletionStatus": completion}, separators=(",", ":")))
    return rest + len(text), rest + len(base64.b64encode(gzip.compress(text)))


def _parent_name(name: str, known: dict[str, str]) -> str | None:
    """The nearest node ``name`` extends: a task `.x`, an item `(i:…)`, an attempt `(n)`, a step group `[n]`."""
    for cut in sorted((name.rfind("."), name.rfind("("), name.rfind("[")), reverse=True):
        if cut > 0:
            parent = name[:cut]
            if parent in known:
                return parent
    return None
