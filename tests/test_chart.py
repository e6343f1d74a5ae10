"""The Helm chart helm/xit, rendered by the real helm v4 and checked offline.

Every rendered core object passes `kubernetes-validate --strict`; every Argo object passes a strict
check against Hera's models and (with ../shared) Argo v4.1's CRDs; every container command parses
with xit's CLI; and the sweep template is executed locally (tests/chart_tools.ArgoLocal) on a small
spec, so the parameter names and JSON shapes it consumes are exactly what `xit stage plan` emits.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import strict_schemas as ss
import yaml
from chart_tools import CHART, ROOT, ArgoLocal, by_kind, helm, parse_cli, render

from xit import argo
from xit.argo import GPU_POD_KINDS as GPU_KINDS  # evaluate stages run in target pods
from xit.plan import Plan

VALUES = [CHART / "ci" / "aws-gpu-pool-values.yaml", CHART / "ci" / "minio-secret-values.yaml"]
KIND_VALUES = ROOT / "infra" / "kind-values.yaml"


def value_sets() -> list[tuple[str, list[Path]]]:
    sets = [("defaults", [])] + [(p.stem, [p]) for p in VALUES]
    if KIND_VALUES.exists():
        sets.append(("kind", [KIND_VALUES]))
    return sets


@pytest.fixture(scope="module", params=value_sets(), ids=lambda s: s[0])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict]]:
    name, files = request.param
    return name, render(*files)


def sweep_template(docs: list[dict]) -> dict:
    (wt,) = by_kind(docs, "WorkflowTemplate")
    return wt


def templates(docs: list[dict]) -> dict[str, dict]:
    return {t["name"]: t for t in sweep_template(docs)["spec"]["templates"]}


def test_helm_lint_strict_passes_for_every_values_file() -> None:
    for name, files in value_sets():
        args = ["lint", "--strict", str(CHART)]
        for f in files:
            args += ["-f", str(f)]
        out = helm(*args)
        assert out.returncode == 0, f"{name}: {out.stdout}{out.stderr}"
        assert "0 chart(s) failed" in out.stdout


def test_core_objects_pass_kubernetes_validate_strict(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    core = [d for d in docs if not ss.is_argo(d)]
    assert {d["kind"] for d in core} >= {"ServiceAccount", "Role", "RoleBinding", "ConfigMap"}
    errors = [e for d in core for e in ss.kubernetes_errors(d)]
    assert errors == [], f"{name}: {errors}"


def test_argo_objects_pass_hera_models_strictly(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    argo_docs = [d for d in docs if ss.is_argo(d)]
    assert argo_docs, "no Argo objects rendered"
    errors = [e for d in argo_docs for e in ss.hera_errors(d)]
    assert errors == [], f"{name}: {errors}"


def test_argo_objects_pass_argo_v41_crds_strictly(rendered: tuple[str, list[dict]]) -> None:
    ss.require_crds()
    name, docs = rendered
    errors = [e for d in docs if ss.is_argo(d) for e in ss.crd_errors(d)]
    assert errors == [], f"{name}: {errors}"


def test_strict_checks_reject_misspelt_and_mistyped_fields() -> None:
    """The checkers are not vacuous: each mistake below is reported by both."""
    wt = sweep_template(render())
    idx = next(i for i, t in enumerate(wt["spec"]["templates"]) if t["name"] == "target")
    mistakes = {
        "retryStrategy.limt": lambda t: t["retryStrategy"].update(limt=3),
        "container.resource": lambda t: t["container"].update(resource={}),
        "synchronisation": lambda t: t.update(synchronisation=t.pop("synchronization")),
        "activeDeadlineSeconds": lambda t: t.update(activeDeadlineSeconds=[1]),
    }
    for what, mutate in mistakes.items():
        bad = copy.deepcopy(wt)
        mutate(bad["spec"]["templates"][idx])
        hera = ss.hera_errors(bad)
        assert hera and any(what.split(".")[-1] in e for e in hera), (what, hera)
        if ss.crds_available():
            crd = ss.crd_errors(bad)
            assert crd and any(what.split(".")[-1] in e for e in crd), (what, crd)
    bad_core = copy.deepcopy(by_kind(render(), "ServiceAccount")[0])
    bad_core["automountServiceAccountTokn"] = True
    assert ss.kubernetes_errors(bad_core)


def test_values_schema_rejects_credentials_and_unknown_keys() -> None:
    # MinIO's root credentials (the keys of its root Secret) are refused: stage pods get a scoped user's.
    for setting in ("store.s3.credentialsSecret.accessKeyKey=rootUser",
                    "store.s3.credentialsSecret.secretKeyKey=rootPassword",
                    "store.s3.credentialsSecret.accessKeyKey=MINIO_ROOT_USER",
                    "store.s3.accessKey=AKIA123", "store.s3.secretKey=abc", "stages.target.gpus=2",
                    "concurrency.gpuStages=0", "retry.messagePattern=it's", "store.url=xit-runs"):
        out = helm("template", "xit", str(CHART), "--set", setting)
        assert out.returncode != 0, setting
        assert "values don't meet the specifications of the schema" in out.stderr, (setting, out.stderr)


def test_no_secret_or_credential_is_rendered(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    # The only Secret is the ServiceAccount token Kubernetes fills in for Argo's executor: no data of ours.
    for secret in by_kind(docs, "Secret"):
        assert secret["type"] == "kubernetes.io/service-account-token", name
        assert not secret.get("data") and not secret.get("stringData"), name
    text = yaml.safe_dump_all(docs)
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]|minioadmin", text), name
    for t in templates(docs).values():
        for env in t.get("container", {}).get("env", []):
            if env["name"].startswith("AWS_") and env["name"] != "AWS_DEFAULT_REGION":
                assert "valueFrom" in env and "value" not in env, (name, env)


def test_labels_names_and_escaped_argo_expressions(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    for d in docs:
        labels = d["metadata"]["labels"]
        for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by",
                  "helm.sh/chart", "app.kubernetes.io/part-of"):
            assert k in labels, (name, d["kind"], k)
        assert len(d["metadata"]["name"]) <= 63
    text = yaml.safe_dump(sweep_template(docs))
    assert "{{inputs.parameters.key}}" in text and "{{tasks.plan.outputs.parameters.branches}}" in text
    assert "{{ " not in text and "{{`" not in text and "`}}" not in text, "Helm syntax left in the rendered template"


def test_stage_templates_carry_resources_scheduling_retries_and_semaphore(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    ts = templates(docs)
    (sem,) = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-semaphores")]
    assert int(sem["data"]["gpu-stages"]) >= 1
    # One pod template per stage kind that has pods of its own (evaluate stages run in their target's pod).
    stage_like = {n for n, t in ts.items() if [p["name"] for p in t.get("inputs", {}).get("parameters", [])]
                  == ["sweep", "key"]}
    assert stage_like == set(argo.POD_KINDS), name
    for kind in argo.POD_KINDS:
        t = ts[kind]
        assert [p["name"] for p in t["inputs"]["parameters"]] == ["sweep", "key"]
        assert t["activeDeadlineSeconds"] > 0
        rs = t["retryStrategy"]
        assert int(rs["limit"]) >= 1 and rs["backoff"]["factor"] >= 1
        for message in ("Pod was terminated in response to imminent node shutdown", "pod deleted"):
            pattern = re.search(r"matches '([^']*)'", rs["expression"]).group(1)
            assert re.search(pattern, message), (name, kind, message)
        assert "lastRetry.status == 'Failed'" in rs["expression"]
        assert t["container"]["resources"]["requests"]
        mounts = {m["mountPath"] for m in t["container"]["volumeMounts"]}
        assert "/cache" in mounts
        if kind in GPU_KINDS:
            assert t["container"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
            (s,) = t["synchronization"]["semaphores"]
            assert s["configMapKeyRef"] == {"name": sem["metadata"]["name"], "key": "gpu-stages"}
            assert any(tol["key"] == "nvidia.com/gpu" for tol in t["tolerations"])
            assert "/dev/shm" in mounts
            shm = next(v for v in t["volumes"] if v["name"] == "dshm")
            assert shm["emptyDir"]["medium"] == "Memory"
        else:
            assert "semaphores" not in t["synchronization"] and "nvidia.com/gpu" not in str(t["container"]["resources"])
    spec = sweep_template(docs)["spec"]
    assert spec["podGC"]["strategy"] and spec["ttlStrategy"]["secondsAfterSuccess"] > 0
    sa = {d["metadata"]["name"] for d in by_kind(docs, "ServiceAccount")}
    if sa:
        assert spec["serviceAccountName"] in sa


def _nproc(t: dict) -> int | None:
    args = t["container"]["args"]
    return int(args[args.index("--nproc") + 1]) if "--nproc" in args else None


def test_training_stages_launch_one_process_per_gpu_of_their_pod(rendered: tuple[str, list[dict]]) -> None:
    """`xit stage run --nproc N` with N the container's nvidia.com/gpu limit: the pod's GPUs and the processes
    torch.distributed.run starts agree, for the values shipped and for a pod given 4 (or 2) GPUs."""
    name, docs = rendered
    for kind, t in templates(docs).items():
        if kind in ("intermediate", "target"):
            assert _nproc(t) == int(t["container"]["resources"]["limits"]["nvidia.com/gpu"]), (name, kind)
        elif kind in argo.POD_KINDS:
            assert _nproc(t) is None, (name, kind)  # retrieval (and the plan, the report) on one device
    if name != "defaults":
        return
    ts = templates(render(sets=("stages.target.resources.limits.nvidia\\.com/gpu=4",
                                "stages.target.resources.requests.nvidia\\.com/gpu=4",
                                "stages.intermediate.resources.limits.nvidia\\.com/gpu=2",
                                "stages.intermediate.resources.requests.nvidia\\.com/gpu=2")))
    for kind, n in (("target", 4), ("intermediate", 2)):
        assert int(ts[kind]["container"]["resources"]["limits"]["nvidia.com/gpu"]) == n
        assert _nproc(ts[kind]) == n
        assert parse_cli(ts[kind]["container"]["args"])[1]["nproc"] == n  # as xit itself reads the args


def test_realistic_values_reach_the_pods() -> None:
    docs = render(VALUES[0])
    ts = templates(docs)
    t = ts["intermediate"]
    assert t["nodeSelector"]["karpenter.sh/capacity-type"] == "spot"
    assert t["priorityClassName"] == "xit-training"
    assert t["affinity"]["nodeAffinity"]
    assert t["container"]["image"].endswith("xit-gpu:0.1.0-3f2a9c1b7d4e")
    assert ts["plan"]["container"]["image"].endswith("xit-cpu:0.1.0-3f2a9c1b7d4e")
    env = {e["name"]: e for e in t["container"]["env"]}
    assert env["XIT_PUSHGATEWAY"]["value"] == "http://prometheus-pushgateway.monitoring.svc:9091"
    assert "AWS_ACCESS_KEY_ID" not in env  # IRSA
    (sa,) = by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert sweep_template(docs)["spec"]["parallelism"] == 64
    cache = next(v for v in t["volumes"] if v["name"] == "cache")
    assert cache["persistentVolumeClaim"]["claimName"] == "xit-hf-cache"

    docs = render(VALUES[1])
    env = {e["name"]: e for e in templates(docs)["target"]["container"]["env"]}
    assert env["XIT_S3_ENDPOINT"]["value"] == "http://minio.storage.svc.cluster.local:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "xit-minio-user", "key": "accessKey"}
    assert "metrics" not in templates(docs)["target"]
    (repo,) = [d for d in by_kind(docs, "ConfigMap") if "artifact" in d["metadata"]["name"]]
    s3 = yaml.safe_load(repo["data"]["default"])["s3"]
    assert s3["endpoint"] == "minio.storage.svc.cluster.local:9000" and s3["insecure"] is True
    assert s3["accessKeySecret"] == {"name": "xit-minio-user", "key": "accessKey"}
    assert repo["metadata"]["annotations"]["workflows.argoproj.io/default-artifact-repository"] == "default"


def test_rbac_is_least_privilege(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    roles = {d["metadata"]["name"]: d for d in by_kind(docs, "Role")}
    executor = next(r for n, r in roles.items() if n.endswith("-executor"))
    assert executor["rules"] == [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"],
                                  "verbs": ["create", "patch"]}]
    for role in roles.values():
        for rule in role["rules"]:
            assert "secrets" not in rule["resources"] and "*" not in rule["verbs"] + rule["resources"], name
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")


def test_every_container_command_parses_with_the_xit_cli(rendered: tuple[str, list[dict]]) -> None:
    name, docs = rendered
    seen = set()
    for t in templates(docs).values():
        if "container" not in t:
            continue
        c = t["container"]
        assert c["command"] == ["xit"], (name, t["name"])
        # Argo references stand for values: an index is a number, anything else a string.
        args = [re.sub(r"\{\{[^}]*\}\}", lambda m: "7" if "index" in m.group(0) else "x", a) for a in c["args"]]
        command, params = parse_cli(args)
        seen.add(command)
        if command == "stage run":
            assert params["sweep"] == "x" and params["key"] == "x" and params["progress"] is False
            assert (params["outputs"] is not None) == (t["name"] == "target"), (name, t["name"])
            assert params["with_scorers"] == (t["name"] == "target"), (name, t["name"])
        if command == "stage branch":
            assert params["sweep"] == "x" and params["index"] == 7
    assert seen - {"notify"} == {"stage plan", "stage branch", "stage run", "report"}, name


def test_cron_workflows_schedule_valid_specs(tmp_path: Path) -> None:
    from xit.spec import load_spec

    docs = render(VALUES[0])
    crons = by_kind(docs, "CronWorkflow")
    assert [c["metadata"]["labels"]["xit.dev/schedule"] for c in crons] == ["nightly-smoke", "weekly-xnli"]
    for c in crons:
        assert c["spec"]["concurrencyPolicy"] == "Forbid"
        assert c["spec"]["workflowSpec"]["workflowTemplateRef"] == {"name": "xit-sweep"}
        (param,) = c["spec"]["workflowSpec"]["arguments"]["parameters"]
        f = tmp_path / f"{c['metadata']['name']}.yaml"
        f.write_text(param["value"])
        assert load_spec(f).name == c["metadata"]["labels"]["xit.dev/schedule"]
    assert not by_kind(render(), "CronWorkflow")


def test_grafana_dashboard_is_valid_and_queries_xit_metrics() -> None:
    (cm,) = [d for d in by_kind(render(), "ConfigMap") if d["metadata"]["name"].endswith("grafana-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["xit-dashboard.json"])
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in ("xit_stage_status", "xit_stage_duration_seconds", "xit_examples_per_second", "xit_loss",
                   "xit_eval_score", "xit_argo_stage_results_total"):
        assert metric in exprs
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_plan_outputs_are_exactly_what_the_template_reads(tmp_path: Path) -> None:
    ts = templates(render())
    assert tuple(p["name"] for p in ts["plan"]["outputs"]["parameters"]) == argo.OUTPUTS
    assert tuple(p["name"] for p in ts["branch-lookup"]["outputs"]["parameters"]) == argo.BRANCH_OUTPUTS
    assert tuple(p["name"] for p in ts["target"]["outputs"]["parameters"]) == argo.SCORER_OUTPUTS
    text = yaml.safe_dump(sweep_template(render()))
    used_outputs = set(re.findall(r"tasks\.plan\.outputs\.parameters\.(\w+)", text))
    assert used_outputs <= set(argo.OUTPUTS) and used_outputs >= {"sweep", "base", "branches", "report"}
    assert set(re.findall(r"tasks\.lookup\.outputs\.parameters\.([\w-]+)", text)) == set(argo.BRANCH_OUTPUTS)
    # A target's scoring runs in its pod: no task reads what a target stage emits (only `xit status` does).
    assert not re.findall(r"tasks\.target\.outputs", text)
    # Items are plain (a branch's index, a stage key: {{item}}), never objects whose fields name the nodes.
    assert "{{item}}" in text and not re.findall(r"\{\{item\.", text)


SMALL_SPEC = """\
name: chart-e2e
model: xit-tiny
intermediate: [[], [demo-nli]]
targets: [demo-para, demo-tatoeba, lareqa]
languages: {{lareqa: [de, en]}}
seeds: [1]
hparams:
  intermediate: {{epochs: 1, max_train_examples: 64}}
  target: {{epochs: 1, max_train_examples: 64, max_eval_examples: 32}}
data: {{lareqa: {{data_dir: {lareqa}}}}}
"""


def small_spec(tmp_path: Path) -> str:
    """SMALL_SPEC with LAReQA's local files (XQuAD-R and the SQuAD pairs its dual encoder trains on)."""
    from test_xtreme_r import SQUAD_TRAIN, write_squad, write_xquad_r

    data = write_xquad_r(tmp_path / "lareqa")
    write_squad(data / "train-v1.1.json")
    write_squad(data / "dev-v1.1.json", SQUAD_TRAIN[1:])
    return SMALL_SPEC.format(lareqa=data)


@pytest.mark.slow
def test_sweep_template_dag_runs_every_stage_once_under_the_local_argo_interpreter(tmp_path: Path) -> None:
    """Execute the rendered DAG with tests/chart_tools.ArgoLocal (not an Argo controller) and xit's real CLI
    in-process: every plan stage runs exactly once, inputs first, report last."""
    wt = sweep_template(render())
    store = tmp_path / "store"
    spec = small_spec(tmp_path)
    runner = ArgoLocal(wt, tmp_path, {"spec": spec, "store": str(store)})
    runner.run()
    kinds = [name for name, _ in runner.ran]
    assert kinds[0] == "plan" and kinds[-1] == "report"
    sweep_ref = next(args[args.index("--sweep") + 1] for _, args in runner.ran if "--sweep" in args)
    plan = Plan.from_json((store / "sweeps" / sweep_ref / "plan.json").read_text())
    # A target pod runs its target stage, then the stages that score it, and names them (output `scored`).
    keys = []
    for _, args in runner.ran:
        if "--key" in args:
            keys.append(args[args.index("--key") + 1])
            keys += argo.scorers(plan, keys[-1]) if "--scorers" in args else []
    for node in runner.nodes:
        if node["type"] == "Pod" and node["templateName"] == "target":
            assert json.loads(node["outputs"]["scored"]) == argo.scorers(plan, node["inputs"]["key"])
    non_report = [s.key for s in plan.stages if s.kind != "report"]
    # Each stage runs once: the baseline branch's intermediate (the base stage) is skipped by `when`; each target
    # is scored in its pod (evaluate, or retrieval for LAReQA's dual encoder).
    assert sorted(keys) == sorted(non_report)
    assert runner.skipped == ["intermediate"]
    assert [n for n, _ in runner.ran].count("branch-lookup") == 2
    # Every other stage ran in the pod template of its own kind (resources, node pool, metrics labels).
    assert all(name == plan.stage(args[args.index("--key") + 1]).kind for name, args in runner.ran if "--key" in args)
    assert {plan.stage(k).kind for k in keys} - set(argo.POD_KINDS) == {"evaluate"}
    assert sum(plan.stage(k).params.get("task") == "lareqa" and plan.stage(k).kind == "retrieval" for k in keys) == 2
    position = {k: keys.index(k) for k in keys}
    for s in plan.stages:
        for i in s.inputs if s.kind != "report" else []:
            assert position[i] < position[s.key], f"{s.label} ran before its input"
    for s in plan.stages:
        assert (store / "stages" / s.key / "MANIFEST.json").is_file(), s.label
    report = store / "sweeps" / sweep_ref / "report"
    assert "demo-para" in (report / "results.md").read_text()
    assert (report / "deltas.png").stat().st_size > 0

    # Resubmitted: the same DAG again only skips (nothing new is committed, the report is unchanged).
    before = {p: p.stat().st_mtime_ns for p in (store / "stages").rglob("MANIFEST.json")}
    ArgoLocal(wt, tmp_path / "again", {"spec": spec, "store": str(store)}).run()
    assert {p: p.stat().st_mtime_ns for p in (store / "stages").rglob("MANIFEST.json")} == before
