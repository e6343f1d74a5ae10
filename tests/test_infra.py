"""infra/: the local kind cluster (make kind-up / kind-e2e / kind-down), checked offline.

No Kubernetes can run here, so everything the scripts apply is validated instead: every manifest
passes `kubernetes-validate --strict` for the cluster's Kubernetes version and the chart's baseline;
images are pinned; every pod meets the "restricted" Pod Security Standard and has resources; the
fake GPU device plugin's RBAC is exactly "patch nodes/status" and its script, run here against a
stub curl, sends a JSON patch that really sets capacity nvidia.com/gpu; the wiring between the
pieces (Services, Prometheus targets, chart values, Secrets) is consistent; and the scripts are run
end to end against stub kind/kubectl/helm/docker/curl that record every call, so their control flow,
the Secrets they create and the commands they issue are checked too.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import strict_schemas as ss
import yaml
from chart_tools import CHART, ROOT, by_kind, helm, render
from servers import require_binary, unavailable

from xit.argo import GPU_POD_KINDS as GPU_KINDS  # evaluate stages run in target pods

INFRA = ROOT / "infra"
MANIFESTS = INFRA / "manifests"
KIND_CONFIG = INFRA / "kind-config.yaml"
KIND_VALUES = INFRA / "kind-values.yaml"
CHECK_JOB = INFRA / "e2e" / "report-check-job.yaml"
SMOKE = ROOT / "pipelines" / "smoke.yaml"
SCRIPTS = sorted(INFRA.glob("*.sh"))
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet", "Job"}
SAMPLE_OBJECT = "xit/runs/sweeps/smoke/20250101-abcdef/report/results.md"


# --------------------------------------------------------------------------------------------- helpers


def script_var(name: str, path: Path = INFRA / "kind-up.sh") -> str:
    """A variable's default in a script: NAME=value or NAME="${NAME:-value}"."""
    m = re.search(rf'^{name}="?(?:\$\{{{name}:-)?([^"}}\s]+)', path.read_text(), re.M)
    assert m, f"{path.name} does not set {name}"
    return m.group(1)


def cluster_version() -> str:
    """The Kubernetes version of the pinned kind node image, as kubernetes-validate names it (1.35.0)."""
    m = re.match(r"kindest/node:v(\d+)\.(\d+)\.\d+@sha256:[0-9a-f]{64}$", script_var("KIND_NODE_IMAGE"))
    assert m, "KIND_NODE_IMAGE must be kindest/node:vX.Y.Z@sha256:<digest> (kind requires the digest)"
    return f"{m.group(1)}.{m.group(2)}.0"


def load_manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for f in sorted(MANIFESTS.glob("*.yaml")):
        for i, d in enumerate(yaml.safe_load_all(f.read_text())):
            if d:
                docs.append((f"{f.name}#{i} {d.get('kind')}/{d.get('metadata', {}).get('name')}", d))
    return docs


def check_job(name: str = "xit-e2e-report-check-abcde", obj: str = SAMPLE_OBJECT) -> dict[str, Any]:
    text = CHECK_JOB.read_text().replace("__NAME__", name).replace("__OBJECT__", obj)
    return yaml.safe_load(text)


def all_objects() -> list[tuple[str, dict[str, Any]]]:
    return [*load_manifests(), ("e2e/report-check-job.yaml", check_job())]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") in WORKLOADS:
        return obj["spec"]["template"]["spec"]
    return None


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def objects_of(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in load_manifests() if d["kind"] == kind]


def one(kind: str, name: str) -> dict[str, Any]:
    (d,) = [d for d in objects_of(kind) if d["metadata"]["name"] == name]
    return d


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, str]) -> bool:
    """Kubernetes' toleration matching (key, operator Exists/Equal, effect; empty key+Exists matches all)."""
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint["effect"]:
            continue
        op = t.get("operator", "Equal")
        if op == "Exists" and (not t.get("key") or t["key"] == taint["key"]):
            return True
        if op == "Equal" and t.get("key") == taint["key"] and t.get("value", "") == taint["value"]:
            return True
    return False


def kind_values() -> dict[str, Any]:
    return yaml.safe_load(KIND_VALUES.read_text())


def service_url(svc: dict[str, Any], port_name: str) -> tuple[str, int]:
    (port,) = [p["port"] for p in svc["spec"]["ports"] if p["name"] == port_name]
    return f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc.cluster.local", port


def gpus_per_node() -> int:
    (ds,) = objects_of("DaemonSet")
    env = {e["name"]: e.get("value") for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}
    return int(env["GPUS_PER_NODE"])


# ------------------------------------------------------------------------------------ Kubernetes schemas


def validation_versions() -> list[str]:
    return sorted({cluster_version(), ss.KUBERNETES_VERSION})


def test_pinned_versions_have_kubernetes_schemas() -> None:
    import kubernetes_validate.utils as kvu

    for v in validation_versions():
        assert v in kvu.all_versions(), f"kubernetes-validate has no schemas for {v}"


@pytest.mark.parametrize("version", validation_versions())
def test_every_manifest_passes_kubernetes_validate_strict(version: str) -> None:
    objects = all_objects()
    assert {d["kind"] for _, d in objects} >= {"Namespace", "Deployment", "Service", "ConfigMap", "Job",
                                               "DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"}
    errors = [f"{where}: {e}" for where, d in objects for e in ss.kubernetes_errors(d, version)]
    assert errors == []


def test_strict_validation_rejects_a_misspelt_field() -> None:
    """The check above would catch a typo (strict mode: unknown keys are errors)."""
    ds = copy.deepcopy(objects_of("DaemonSet")[0])
    ds["spec"]["template"]["spec"]["nodeSelecter"] = ds["spec"]["template"]["spec"].pop("nodeSelector")
    assert ss.kubernetes_errors(ds, cluster_version())
    job = check_job()
    job["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    assert ss.kubernetes_errors(job, cluster_version())


def test_manifests_have_explicit_namespaces_and_no_secrets() -> None:
    namespaces = {d["metadata"]["name"] for d in objects_of("Namespace")}
    assert namespaces == {"xit-infra", "xit"}
    for where, d in all_objects():
        assert d["kind"] != "Secret", f"{where}: Secrets are created by kind-up.sh from random values, never committed"
        if d["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
            assert d["metadata"].get("namespace") in {"xit-infra", "argo"}, where


# ---------------------------------------------------------------------------------- images and pods


IMAGE = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._/-]*):(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127})"
                   r"(@sha256:[0-9a-f]{64})?$")


def test_every_image_is_pinned_by_tag() -> None:
    seen = []
    for where, d in all_objects():
        if spec := pod_spec(d):
            for c in containers(spec):
                m = IMAGE.match(c["image"])
                assert m, f"{where}: image {c['image']!r} has no tag"
                assert m["tag"] != "latest" and not m["tag"].startswith("latest"), f"{where}: {c['image']}"
                seen.append(c["image"])
    assert len(seen) >= 5
    for bad in ("minio/minio", "minio/minio:latest", "prom/prometheus:latest@sha256:" + "0" * 64):
        m = IMAGE.match(bad)
        assert not m or m["tag"].startswith("latest"), bad


def test_every_pod_meets_the_restricted_standard_and_has_resources() -> None:
    for where, d in all_objects():
        spec = pod_spec(d)
        if spec is None:
            continue
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) > 0, where
        assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        assert all("hostPath" not in v for v in spec.get("volumes", [])), where
        for c in containers(spec):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, (where, c["name"])
            assert sc.get("capabilities") == {"drop": ["ALL"]}, (where, c["name"])
            assert sc.get("readOnlyRootFilesystem") is True, (where, c["name"])
            assert not sc.get("privileged"), (where, c["name"])
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})), (where, c["name"], "requests")
            assert {"cpu", "memory"} <= set(res.get("limits", {})), (where, c["name"], "limits")
        # Only the device plugin talks to the API server.
        automount = spec.get("automountServiceAccountToken")
        if d["kind"] == "DaemonSet":
            assert automount is not False, where
        else:
            assert automount is False, where
    # Both namespaces enforce "restricted": xit-infra's pods (checked above) and the sweeps' pods in xit
    # (tests/test_argo_rules.py: every pod Argo builds from the chart, with infra/argo-executor-patch.yaml).
    for ns in ("xit-infra", "xit"):
        labels = one("Namespace", ns)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", ns
        assert labels["pod-security.kubernetes.io/enforce-version"] == "latest", ns


def test_infra_runs_on_the_cpu_pool_and_only_the_device_plugin_on_the_gpu_pool() -> None:
    for where, d in all_objects():
        spec = pod_spec(d)
        if spec is None:
            continue
        pool = spec.get("nodeSelector", {}).get("xit.dev/pool")
        if d["kind"] == "DaemonSet":
            assert pool == "gpu" and tolerates(spec.get("tolerations"), GPU_TAINT), where
        else:
            assert pool == "cpu" and not tolerates(spec.get("tolerations"), GPU_TAINT), where


# ------------------------------------------------------------------------------- fake GPU device plugin


def test_fake_gpu_plugin_rbac_is_patch_node_status_only() -> None:
    (ds,) = objects_of("DaemonSet")
    sa = ds["spec"]["template"]["spec"]["serviceAccountName"]
    (role,) = objects_of("ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]}]
    (binding,) = objects_of("ClusterRoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": ds["metadata"]["namespace"]}]
    assert not objects_of("Role") and not objects_of("RoleBinding")


def _run_plugin_script(tmp_path: Path) -> list[list[str]]:
    """Run the DaemonSet's shell script for one iteration, with curl and sleep replaced by recorders."""
    (ds,) = objects_of("DaemonSet")
    (c,) = ds["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["/bin/sh", "-c"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "curl.jsonl"
    (bin_dir / "curl").write_text(f"#!{sys.executable}\nimport json, sys\n"
                                  f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    # `sleep 60` ends the loop: kill the shell that runs it.
    (bin_dir / "sleep").write_text(f"#!{sys.executable}\nimport os, signal\nos.kill(os.getppid(), signal.SIGTERM)\n")
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "KUBERNETES_SERVICE_HOST": "10.96.0.1",
           "KUBERNETES_SERVICE_PORT": "443", "NODE_NAME": "xit-worker2"}
    for e in c["env"]:
        env.setdefault(e["name"], e.get("value", "xit-worker2"))
    subprocess.run(["sh", "-c", c["args"][0]], env=env, capture_output=True, text=True, timeout=30)
    return [json.loads(line) for line in log.read_text().splitlines()]


def _json_patch(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add/replace on object members (all the plugin needs), with RFC 6901 ~0/~1 escapes."""
    doc = copy.deepcopy(doc)
    for op in ops:
        assert op["op"] in ("add", "replace"), op
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        target = doc
        for p in parts[:-1]:
            target = target[p]
        target[parts[-1]] = op["value"]
    return doc


def test_fake_gpu_plugin_sends_a_json_patch_that_sets_gpu_capacity(tmp_path: Path) -> None:
    calls = _run_plugin_script(tmp_path)
    assert len(calls) == 1, calls
    args = calls[0]
    assert args[args.index("-X") + 1] == "PATCH"
    assert args[-1] == "https://10.96.0.1:443/api/v1/nodes/xit-worker2/status"
    assert "Content-Type: application/json-patch+json" in args
    assert args[args.index("--cacert") + 1] == "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    patch = json.loads(args[args.index("--data") + 1])
    node = {"status": {"capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}}}
    patched = _json_patch(node, patch)
    assert patched["status"]["capacity"] == {"cpu": "8", "memory": "16Gi", "pods": "110",
                                             "nvidia.com/gpu": str(gpus_per_node())}
    # kind-up.sh waits for exactly this allocatable before installing the chart.
    assert int(script_var("GPUS_PER_NODE")) == gpus_per_node()


def test_gpu_capacity_covers_what_the_kind_values_ask_for() -> None:
    v = kind_values()
    for kind in GPU_KINDS:
        assert int(v["stages"][kind]["resources"]["requests"]["nvidia.com/gpu"]) <= gpus_per_node()
    assert v["concurrency"]["gpuStages"] <= gpus_per_node()


# ---------------------------------------------------------------------------------------- kind config


def test_kind_config_has_a_cpu_pool_and_a_tainted_gpu_pool() -> None:
    cfg = yaml.safe_load(KIND_CONFIG.read_text())
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles.count("control-plane") == 1 and roles.count("worker") == 2
    pools = {}
    for n in cfg["nodes"]:
        if n["role"] != "worker":
            continue
        taints = []
        for patch in n.get("kubeadmConfigPatches", []):
            p = yaml.safe_load(patch)
            assert p["kind"] == "JoinConfiguration", "worker patches must target JoinConfiguration"
            taints += p["nodeRegistration"].get("taints", [])
        pools[n["labels"]["xit.dev/pool"]] = taints
    assert pools == {"cpu": [], "gpu": [GPU_TAINT]}
    assert "image" not in str(cfg["nodes"]), "the node image is pinned once, in kind-up.sh"


# ----------------------------------------------------------------------------- metrics and wiring


def prometheus_config() -> dict[str, Any]:
    return yaml.safe_load(one("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])


def test_prometheus_scrapes_the_pushgateway_with_honor_labels_and_argo() -> None:
    jobs = {j["job_name"]: j for j in prometheus_config()["scrape_configs"]}
    host, port = service_url(one("Service", "pushgateway"), "http")
    assert jobs["pushgateway"]["honor_labels"] is True
    assert jobs["pushgateway"]["static_configs"] == [{"targets": [f"{host}:{port}"]}]
    argo_svc = one("Service", "xit-workflow-controller-metrics")
    assert argo_svc["metadata"]["namespace"] == "argo" and argo_svc["spec"]["clusterIP"] == "None"
    assert argo_svc["spec"]["selector"] == {"app": "workflow-controller"}
    host, port = service_url(argo_svc, "metrics")
    (sd,) = jobs["argo-workflow-controller"]["dns_sd_configs"]
    assert sd == {"names": [host], "type": "A", "port": port}


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")  # Debian's prometheus package; skips elsewhere, fails under CI=true
    f = tmp_path / "prometheus.yml"
    f.write_text(one("ConfigMap", "prometheus-config")["data"]["prometheus.yml"])
    out = subprocess.run([promtool, "check", "config", "--syntax-only", str(f)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_services_select_their_pods_and_target_declared_ports() -> None:
    workloads = objects_of("Deployment") + objects_of("DaemonSet")
    for svc in objects_of("Service"):
        if svc["metadata"]["namespace"] == "argo":
            continue  # selects Argo's controller (upstream), checked above
        sel = svc["spec"]["selector"]
        (w,) = [w for w in workloads if w["metadata"]["namespace"] == svc["metadata"]["namespace"]
                and sel.items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert w["spec"]["selector"]["matchLabels"].items() <= sel.items(), svc["metadata"]["name"]
        ports = {p["name"]: p["containerPort"] for c in containers(w["spec"]["template"]["spec"])
                 for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            assert p["targetPort"] in ports, (svc["metadata"]["name"], p)


def test_probes_use_declared_ports() -> None:
    for d in objects_of("Deployment"):
        for c in containers(d["spec"]["template"]["spec"]):
            names = {p["name"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["port"] in names, (d["metadata"]["name"], probe)


def test_kind_values_point_at_the_infra_services_and_bucket() -> None:
    v = kind_values()
    minio = one("Service", "minio")
    endpoint = urlparse(v["store"]["s3"]["endpoint"])
    assert (endpoint.scheme, endpoint.hostname, endpoint.port) == ("http", *service_url(minio, "api"))
    push = urlparse(v["metrics"]["pushgateway"]["url"])
    assert (push.hostname, push.port) == service_url(one("Service", "pushgateway"), "http")
    store = urlparse(v["store"]["url"])
    assert store.scheme == "s3"
    bucket = store.hostname
    assert v["artifactRepository"]["bucket"] == bucket and v["artifactRepository"]["insecure"] is True
    setup = one("Job", "minio-setup")["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert f"mc mb --ignore-existing root/{bucket}" in setup
    policy = json.loads(one("ConfigMap", "minio-xit-policy")["data"]["xit-readwrite.json"])
    assert policy["Statement"][0]["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    env = {e["name"]: e["value"] for e in check_job()["spec"]["template"]["spec"]["containers"][0]["env"]
           if "value" in e}
    assert env["OBJECT"] == SAMPLE_OBJECT
    assert "http://" + ":".join(map(str, service_url(minio, "api"))) in str(check_job())
    assert v["images"]["gpu"] == {"repository": "xit-gpu", "tag": "kind", "pullPolicy": "Never"}
    assert v["images"]["cpu"] == {"repository": "xit-cpu", "tag": "kind", "pullPolicy": "Never"}


def test_minio_credentials_come_from_the_secrets_kind_up_creates() -> None:
    up = (INFRA / "kind-up.sh").read_text()
    created = set(re.findall(r'create_secret "\$INFRA_NAMESPACE" ([a-z0-9-]+) (\w+) .* (\w+) ', up))
    assert created == {("minio-root", "rootUser", "rootPassword"), ("minio-xit-user", "accessKey", "secretKey")}
    keys = {name: {k1, k2} for name, k1, k2 in created}
    for where, d in all_objects():
        for c in containers(pod_spec(d) or {}):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in keys.get(ref["name"], set()), (where, ref)
    cred = kind_values()["store"]["s3"]["credentialsSecret"]
    assert cred["name"] == script_var("XIT_S3_SECRET", INFRA / "lib.sh")
    m = re.search(r'create_secret "\$XIT_NAMESPACE" "\$XIT_S3_SECRET" \\\n\s+(\w+) .*\n\s+(\w+) ', up)
    assert m and (m.group(1), m.group(2)) == (cred["accessKeyKey"], cred["secretKeyKey"])


CREDENTIAL = re.compile(r"AKIA[0-9A-Z]{16}|minioadmin|aws_secret_access_key|BEGIN [A-Z ]*PRIVATE KEY|"
                        r"(PASSWORD|SECRET_KEY|secretKey|rootPassword)\s*[:=]\s*['\"]?[A-Za-z0-9/+]{8,}", re.I)


def test_nothing_in_infra_contains_a_literal_credential() -> None:
    files = [f for f in INFRA.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    assert len(files) >= 10
    for f in files:
        hits = [m.group(0) for m in CREDENTIAL.finditer(f.read_text())]
        assert not hits, f"{f.relative_to(ROOT)}: {hits}"
    assert CREDENTIAL.search("MINIO_ROOT_PASSWORD=hunter2hunter2") and CREDENTIAL.search("user: minioadmin")


# ----------------------------------------------------------------------------------- chart with kind values


def test_kind_values_pass_helm_lint_strict() -> None:
    out = helm("lint", "--strict", str(CHART), "-f", str(KIND_VALUES))
    assert out.returncode == 0 and "0 chart(s) failed" in out.stdout, out.stdout + out.stderr


def test_kind_values_render_gpu_stages_onto_the_fake_gpu_pool() -> None:
    docs = render(KIND_VALUES)
    (wt,) = by_kind(docs, "WorkflowTemplate")
    ts = {t["name"]: t for t in wt["spec"]["templates"]}
    for kind in GPU_KINDS:
        t = ts[kind]
        assert t["nodeSelector"] == {"xit.dev/pool": "gpu"}, kind
        assert tolerates(t["tolerations"], GPU_TAINT), kind
        res = t["container"]["resources"]
        assert res["requests"] == {"cpu": "500m", "memory": "2Gi", "nvidia.com/gpu": "1"}, kind
        assert t["container"]["image"] == "xit-gpu:kind" and t["container"]["imagePullPolicy"] == "Never"
    for kind in ("plan", "report"):
        assert ts[kind]["nodeSelector"] == {"xit.dev/pool": "cpu"}, kind
        assert not tolerates(ts[kind].get("tolerations"), GPU_TAINT), kind
        assert ts[kind]["container"]["image"] == "xit-cpu:kind"
    env = {e["name"]: e for e in ts["target"]["container"]["env"]}
    assert env["XIT_S3_ENDPOINT"]["value"] == kind_values()["store"]["s3"]["endpoint"]
    assert env["XIT_PUSHGATEWAY"]["value"] == kind_values()["metrics"]["pushgateway"]["url"]
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "xit-s3"
    (sem,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-semaphores")]
    assert sem["data"]["gpu-stages"] == "2"
    assert wt["spec"]["arguments"]["parameters"][1]["value"] == kind_values()["store"]["url"]
    errors = [e for d in docs if not ss.is_argo(d) for e in ss.kubernetes_errors(d, cluster_version())]
    assert errors == []


# ------------------------------------------------------------------------------------------- scripts


def test_scripts_parse_with_bash() -> None:
    assert {s.name for s in SCRIPTS} == {"kind-up.sh", "kind-e2e.sh", "kind-down.sh", "lib.sh"}
    for s in SCRIPTS:
        out = subprocess.run(["bash", "-n", str(s)], capture_output=True, text=True)
        assert out.returncode == 0, f"{s.name}: {out.stderr}"
        if s.name != "lib.sh":
            assert s.read_text().startswith("#!/usr/bin/env bash\n"), s.name
            assert "set -euo pipefail" in s.read_text(), s.name


def test_scripts_pass_shellcheck() -> None:
    shellcheck = require_binary("shellcheck")
    scripts = [*map(str, SCRIPTS), str(ROOT / "scripts/install-test-deps.sh"), str(ROOT / "scripts/install-helm.sh")]
    out = subprocess.run([shellcheck, "-x", "-P", str(INFRA), *scripts], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout


def test_scripts_reference_files_that_exist() -> None:
    up = (INFRA / "kind-up.sh").read_text()
    for ref, path in {'"$INFRA_DIR/kind-config.yaml"': KIND_CONFIG, '"$INFRA_DIR/manifests"': MANIFESTS,
                      '"$INFRA_DIR/kind-values.yaml"': KIND_VALUES, '"$ROOT/helm/xit"': CHART,
                      '"$MANIFESTS/00-namespaces.yaml"': MANIFESTS / "00-namespaces.yaml",
                      '"$ROOT/xit/__init__.py"': ROOT / "xit" / "__init__.py"}.items():
        assert ref in up and path.exists(), ref
    e2e = (INFRA / "kind-e2e.sh").read_text()
    for ref, path in {'"$INFRA_DIR/e2e/workflow_status.py"': INFRA / "e2e" / "workflow_status.py",
                      '"$INFRA_DIR/e2e/report-check-job.yaml"': CHECK_JOB}.items():
        assert ref in e2e and path.exists(), ref
    assert '"${PIPELINE:-$ROOT/pipelines/smoke.yaml}"' in e2e
    smoke = yaml.safe_load(SMOKE.read_text())
    assert smoke["kind"] == "Workflow" and smoke["metadata"].get("generateName")
    assert smoke["spec"]["workflowTemplateRef"]["name"] == kind_values().get("sweep", {}).get("templateName",
                                                                                             "xit-sweep")


def test_makefile_targets_call_the_scripts() -> None:
    for target in ("kind-up", "kind-e2e", "kind-down"):
        # Not as a sub-make of `make test`: its MAKEFLAGS/MAKELEVEL would add "Entering directory" lines.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        out = subprocess.run(["make", "--no-print-directory", "-n", target], capture_output=True, text=True,
                             cwd=ROOT, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == f"bash infra/{target}.sh", out.stdout
    phony = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(".PHONY:"):
            phony.update(line.split(":", 1)[1].split())
    assert {"kind-up", "kind-e2e", "kind-down"} <= phony


# ---------------------------------------------------------------------- scripts run against stub tools

STUB = r'''
import base64, json, os, sys
from pathlib import Path

d = Path(os.environ["STUB_DIR"])
tool, args = Path(sys.argv[0]).name, sys.argv[1:]
state_f = d / "state.json"
state = json.loads(state_f.read_text()) if state_f.exists() else {"secrets": {}, "clusters": [], "images": []}
with open(d / "calls.jsonl", "a") as f:
    f.write(json.dumps([tool, *args]) + "\n")

def save():  # atomic: `create ... | apply -f -` runs two stubs at once
    tmp = d / f"state.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state))
    tmp.replace(state_f)

def opt(*names):
    for i, a in enumerate(args):
        if a in names:
            return args[i + 1]
        for n in names:
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None

if tool == "kind":
    if args[:1] == ["version"]:
        print("kind v0.33.0 go1.25.0 linux/amd64")
    elif args[:2] == ["get", "clusters"]:
        print("\n".join(state["clusters"]))
    elif args[:2] == ["create", "cluster"]:
        state["clusters"].append(opt("--name")); save()
    elif args[:2] == ["delete", "cluster"]:
        state["clusters"].remove(opt("--name")); save()
    sys.exit(0)
if tool == "docker":
    if args[:2] == ["image", "inspect"]:
        sys.exit(0 if args[2] in state["images"] + os.environ.get("STUB_IMAGES", "").split(",") else 1)
    if args[:1] == ["tag"]:
        state["images"].append(args[2]); save()
    sys.exit(0)
if tool == "curl":
    Path(opt("-o")).write_text("# Argo install manifest (stub)\n")
    sys.exit(0)
if tool in ("helm", "make"):
    sys.exit(0)
assert tool == "kubectl", tool
ns = opt("-n", "--namespace")
words = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in
         ("-n", "--namespace", "--context", "-o", "-f", "-p", "-l", "--type", "--timeout", "--for")]
jsonpath = opt("-o") or ""
if "-f" in args and opt("-f") == "-":
    stdin = sys.stdin.read()
    if words[:1] == ["create"]:
        n = len(list(d.glob("created-*.yaml")))
        (d / f"created-{n}.yaml").write_text(stdin)
if words[:3] == ["create", "secret", "generic"]:
    data = {}
    for a in args:
        if a.startswith("--from-file="):
            k, path = a[len("--from-file="):].split("=", 1)
            data[k] = Path(path).read_text()
    state["secrets"][f"{ns}/{words[3]}"] = data; save()
    print("apiVersion: v1\nkind: Secret\n")
elif words[:2] == ["get", "secret"]:
    s = state["secrets"].get(f"{ns}/{words[2]}")
    if s is None:
        print(f'Error from server (NotFound): secrets "{words[2]}" not found', file=sys.stderr)
        sys.exit(1)
    key = jsonpath.split(".data.")[1].rstrip("}")
    print(base64.b64encode(s[key].encode()).decode(), end="")
elif words[:2] == ["get", "nodes"] and "jsonpath" in jsonpath:
    pool = opt("-l").split("=")[1]
    print({"gpu": "xit-worker2", "cpu": "xit-worker"}[pool], end="")
elif words[:2] == ["get", "deployment"]:
    print('["--configmap","workflow-controller-configmap"]', end="")
elif words[:2] == ["get", "job"]:
    print("1" if "succeeded" in jsonpath else "", end="")
elif words[:2] == ["get", "workflowtemplate"]:
    if jsonpath == "json":
        print((d / "wt.json").read_text())
elif words[:2] == ["get", "workflow"]:
    if jsonpath == "json":
        print((d / "wf.json").read_text())
    elif "phase" in jsonpath:
        print((d / "phase").read_text(), end="")
    else:
        print("stub message", end="")
elif words[:1] == ["create"] and opt("-f") not in (None, "-"):
    print("workflow.argoproj.io/smoke-abcde")
elif words[:1] == ["create"] and words[1:2] == ["namespace"]:
    print("apiVersion: v1\nkind: Namespace\n")
elif words[:1] == ["logs"]:
    print("stub log line")
'''


BASE_TOOLS = ("bash", "sh", "od", "tr", "base64", "sed", "awk", "grep", "mktemp", "rm", "cat", "cut", "git",
              "dirname", "sleep", "date", "sha256sum", "head", "printf", "env")


class Stubs:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "stubs"
        self.bin = self.dir / "bin"
        self.bin.mkdir(parents=True)
        body = f"#!{sys.executable}\n{STUB}"
        for tool in ("kind", "kubectl", "helm", "docker", "curl", "make"):
            (self.bin / tool).write_text(body)
            (self.bin / tool).chmod(0o755)
        (self.bin / "python3").symlink_to(sys.executable)
        # Only these real tools are on PATH, so a kind/docker installed on this machine cannot leak in.
        self.sys = self.dir / "sys"
        self.sys.mkdir()
        for tool in BASE_TOOLS:
            if real := shutil.which(tool):
                (self.sys / tool).symlink_to(real)

    def run(self, script: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = {"PATH": f"{self.bin}:{self.sys}", "STUB_DIR": str(self.dir), "HOME": str(self.dir),
                "STUB_IMAGES": "xit-gpu:latest,xit-cpu:latest"}
        return subprocess.run(["bash", str(INFRA / script)], env={**base, **env}, capture_output=True, text=True,
                              timeout=120, cwd=ROOT)

    def calls(self) -> list[list[str]]:
        f = self.dir / "calls.jsonl"
        return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []

    def state(self) -> dict[str, Any]:
        return json.loads((self.dir / "state.json").read_text())

    def reset_calls(self) -> None:
        (self.dir / "calls.jsonl").unlink(missing_ok=True)


def has_call(calls: list[list[str]], *parts: str) -> bool:
    return any(all(p in c for p in parts) for c in calls)


@pytest.fixture
def stubs(tmp_path: Path) -> Stubs:
    if not shutil.which("od") or not shutil.which("base64"):
        unavailable("coreutils od/base64 missing")
    return Stubs(tmp_path)


def test_kind_up_runs_every_step_and_keeps_credentials_out_of_argv(stubs: Stubs) -> None:
    out = stubs.run("kind-up.sh")
    assert out.returncode == 0, out.stdout + out.stderr
    calls = stubs.calls()
    kind_create = next(c for c in calls if c[:3] == ["kind", "create", "cluster"])
    assert kind_create[kind_create.index("--config") + 1] == str(KIND_CONFIG)
    assert kind_create[kind_create.index("--image") + 1] == script_var("KIND_NODE_IMAGE")
    argo_url = "https://github.com/argoproj/argo-workflows/releases/download/v4.1.4/install.yaml"
    assert has_call(calls, "curl", argo_url)
    assert has_call(calls, "kubectl", "apply", "--server-side", "--force-conflicts", "argo")
    assert has_call(calls, "kubectl", "apply", "-f", str(MANIFESTS))
    assert has_call(calls, "kubectl", "-n", "argo", "patch", "configmap", "workflow-controller-configmap",
                    "--patch-file", str(ROOT / "infra" / "argo-executor-patch.yaml"))
    assert has_call(calls, "kubectl", "delete", "job", "minio-setup", "--ignore-not-found")
    assert has_call(calls, "kubectl", "wait", "node", "-l", "xit.dev/pool=gpu",
                    f"--for=jsonpath={{.status.allocatable.nvidia\\.com/gpu}}={gpus_per_node()}")
    assert has_call(calls, "make", "images")
    assert has_call(calls, "docker", "tag", "xit-gpu:latest", "xit-gpu:kind")
    assert has_call(calls, "docker", "tag", "xit-cpu:latest", "xit-cpu:kind")
    loads = [c for c in calls if c[:3] == ["kind", "load", "docker-image"]]
    assert [c[3:] for c in loads] == [["--name", "xit", "--nodes", "xit-worker2", "xit-gpu:kind"],
                                      ["--name", "xit", "--nodes", "xit-worker", "xit-cpu:kind"]]
    helm_call = next(c for c in calls if c[:3] == ["helm", "upgrade", "--install"])
    assert helm_call[3:5] == ["xit", str(CHART)]
    assert helm_call[helm_call.index("-f") + 1] == str(KIND_VALUES) and "--wait" in helm_call
    assert helm_call[helm_call.index("-n") + 1] == "xit"
    steps = (["kind", "create"], ["curl", "-fsSL"], ["make", "-C"], ["kind", "load"], ["helm", "upgrade"])
    first = [next(i for i, c in enumerate(calls) if c[:2] == step) for step in steps]
    assert first == sorted(first), "cluster, Argo, images, load, chart: in this order"

    secrets = stubs.state()["secrets"]
    assert set(secrets) == {"xit-infra/minio-root", "xit-infra/minio-xit-user", "xit/xit-s3"}
    cred = kind_values()["store"]["s3"]["credentialsSecret"]
    chart_secret = secrets[f"xit/{cred['name']}"]
    assert set(chart_secret) == {cred["accessKeyKey"], cred["secretKeyKey"]}
    assert chart_secret == secrets["xit-infra/minio-xit-user"]
    assert len(secrets["xit-infra/minio-root"]["rootPassword"]) == 40
    assert 8 <= len(secrets["xit-infra/minio-xit-user"]["secretKey"]) <= 40  # MinIO's limits
    values = [v for s in secrets.values() for v in s.values()]
    assert len(set(values)) == 4
    argv = json.dumps(calls)
    assert not [v for v in values if v in argv], "a credential was passed on a command line"
    assert "kubectl --context kind-xit -n argo port-forward svc/argo-server 2746:2746" in out.stdout


def test_kind_up_script_run_again_keeps_the_cluster_and_credentials_with_stubbed_tools(stubs: Stubs) -> None:
    assert stubs.run("kind-up.sh", SKIP_BUILD="1").returncode == 0
    first = stubs.state()["secrets"]
    stubs.reset_calls()
    out = stubs.run("kind-up.sh", SKIP_BUILD="1")
    assert out.returncode == 0, out.stderr
    calls = stubs.calls()
    assert not has_call(calls, "kind", "create") and not has_call(calls, "make")
    assert stubs.state()["secrets"] == first
    assert "exists; keeping it" in out.stdout


def test_argo_executor_containers_get_the_restricted_security_context() -> None:
    """Argo's init/wait containers take their securityContext from the controller's `executor` setting
    (workflow/controller/workflowpod.go, newExecContainer): kind-up.sh sets one that meets "restricted"."""
    import argo_rules

    patch = yaml.safe_load((ROOT / "infra" / "argo-executor-patch.yaml").read_text())
    executor = yaml.safe_load(patch["data"]["executor"])
    assert argo_rules.restricted_violations({}, [{"name": "wait", "securityContext": executor["securityContext"]}],
                                            []) == []


def test_kind_up_names_every_missing_tool_in_one_line(stubs: Stubs) -> None:
    for tool in ("kind", "docker"):  # (not helm/kubectl: lib.sh falls back to .tools/bin for those)
        (stubs.bin / tool).unlink()
    out = stubs.run("kind-up.sh")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines == ["kind-up: error: missing required tools: kind docker (see infra/README.md, Requirements)"]
    assert not stubs.calls()


def test_kind_up_fails_clearly_without_images(stubs: Stubs) -> None:
    out = stubs.run("kind-up.sh", SKIP_BUILD="1", STUB_IMAGES="")
    assert out.returncode == 1
    assert "no xit-gpu image found" in out.stderr and "make images" in out.stderr
    assert not has_call(stubs.calls(), "helm")


def _workflow(phase: str) -> dict[str, Any]:
    nodes = {
        "smoke-abcde": {"displayName": "smoke-abcde", "type": "DAG", "phase": phase},
        "n1": {"displayName": "plan", "templateName": "plan", "type": "Pod", "phase": "Succeeded",
               "outputs": {"parameters": [{"name": "sweep", "value": "smoke/20250101-abcdef"},
                                          {"name": "stages", "value": "7"}]}},
        "n2": {"displayName": "target(0)", "templateName": "target", "type": "Pod",
               "phase": "Failed" if phase == "Failed" else "Succeeded", "message": "Error (exit code 1)"},
    }
    return {"metadata": {"name": "smoke-abcde"}, "spec": {"workflowTemplateRef": {"name": "xit-sweep"}},
            "status": {"phase": phase, "nodes": nodes}}


def _template() -> dict[str, Any]:
    return {"spec": {"arguments": {"parameters": [{"name": "spec"},
                                                  {"name": "store", "value": kind_values()["store"]["url"]}]}}}


def _e2e(stubs: Stubs, phase: str) -> subprocess.CompletedProcess[str]:
    pipeline = stubs.dir / "smoke.yaml"
    pipeline.write_text("kind: Workflow\n")
    state = {"secrets": {}, "clusters": ["xit"], "images": []}
    (stubs.dir / "state.json").write_text(json.dumps(state))
    (stubs.dir / "wf.json").write_text(json.dumps(_workflow(phase)))
    (stubs.dir / "wt.json").write_text(json.dumps(_template()))
    (stubs.dir / "phase").write_text(f"{phase} 6/7")
    return stubs.run("kind-e2e.sh", PIPELINE=str(pipeline))


def test_kind_e2e_script_submits_waits_and_creates_the_report_check_job_with_stubbed_tools(stubs: Stubs) -> None:
    out = _e2e(stubs, "Succeeded")
    assert out.returncode == 0, out.stdout + out.stderr
    calls = stubs.calls()
    assert has_call(calls, "kubectl", "create", "-n", "xit", "-f", str(stubs.dir / "smoke.yaml"), "-o", "name")
    (created,) = list(stubs.dir.glob("created-*.yaml"))
    job = yaml.safe_load(created.read_text())
    assert job == check_job("xit-e2e-report-check-abcde", SAMPLE_OBJECT)
    assert ss.kubernetes_errors(job, cluster_version()) == []
    assert "ok: smoke sweep smoke-abcde succeeded and its report is at s3://" + SAMPLE_OBJECT in out.stdout


def test_kind_e2e_script_reports_failed_nodes_and_logs_with_stubbed_tools(stubs: Stubs) -> None:
    out = _e2e(stubs, "Failed")
    assert out.returncode == 1
    assert "Failed: target(0) (template target, Pod): Error (exit code 1)" in out.stderr
    assert "stub log line" in out.stderr
    calls = stubs.calls()
    assert has_call(calls, "kubectl", "logs", "-l", "workflows.argoproj.io/workflow=smoke-abcde")
    assert not list(stubs.dir.glob("created-*.yaml")), "no report check after a failed sweep"
    assert "did not succeed (Failed)" in out.stderr


def test_kind_down_deletes_only_an_existing_cluster(stubs: Stubs) -> None:
    (stubs.dir / "state.json").write_text(json.dumps({"secrets": {}, "clusters": ["xit"], "images": []}))
    assert stubs.run("kind-down.sh").returncode == 0
    assert has_call(stubs.calls(), "kind", "delete", "cluster", "--name", "xit")
    stubs.reset_calls()
    out = stubs.run("kind-down.sh")
    assert out.returncode == 0 and "nothing to do" in out.stdout
    assert not has_call(stubs.calls(), "kind", "delete")


def test_workflow_status_helper() -> None:
    sys.path.insert(0, str(INFRA / "e2e"))
    try:
        import workflow_status as ws
    finally:
        sys.path.pop(0)
    wf = _workflow("Succeeded")
    assert ws.report_object(wf, _template()) == SAMPLE_OBJECT
    wf["spec"]["arguments"] = {"parameters": [{"name": "store", "value": "s3://other-bucket"}]}
    assert ws.report_object(wf, _template()) == "other-bucket/sweeps/smoke/20250101-abcdef/report/results.md"
    for store in ("file:///tmp/x", "s3://xit/runs|rm", ""):
        wf["spec"]["arguments"]["parameters"][0]["value"] = store
        with pytest.raises(LookupError):
            ws.report_object(wf, {})
    wf = _workflow("Succeeded")
    wf["status"]["nodes"]["n1"]["phase"] = "Failed"
    with pytest.raises(LookupError, match="plan step"):
        ws.report_object(wf, _template())
    assert ws.failed_nodes(_workflow("Failed")) == [
        "Failed: smoke-abcde (template ?, DAG): (no message)",
        "Failed: target(0) (template target, Pod): Error (exit code 1)"]
