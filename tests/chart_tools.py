"""Helpers for the chart tests: the real helm binary, rendering, xit's CLI parser, and a local
interpreter of the xit-sweep WorkflowTemplate (no Argo controller can run here).

`ArgoLocal` executes the template the way Argo's controller would for our subset of Argo: DAG tasks
in dependency order, ``withParam`` fan-out over the JSON a task emitted, ``steps`` in sequence,
``{{...}}`` substitution of workflow/input/task-output/item references, ``raw`` input artifacts and
output parameters ``valueFrom.path``. Containers run xit's real CLI in-process. An unresolvable
``{{...}}`` is an error, so a renamed output or item field fails the test instead of passing through.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from servers import unavailable

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "xit"
REF = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


@functools.cache
def helm_binary() -> str:
    """helm v4 from scripts/install-helm.sh (.tools/bin) or PATH; skip without it, fail under CI=true."""
    for candidate in (ROOT / ".tools" / "bin" / "helm", shutil.which("helm")):
        if candidate and Path(candidate).is_file():
            out = subprocess.run([str(candidate), "version", "--short"], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.startswith("v4."):
                return str(candidate)
    unavailable("helm v4 is not installed; run scripts/install-helm.sh (puts helm and kubectl in .tools/bin)")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)


def render(*values: Path, sets: tuple[str, ...] = (), namespace: str = "xit",
           release: str = "xit") -> list[dict[str, Any]]:
    cmd = ["template", release, str(CHART), "--namespace", namespace]
    for v in values:
        cmd += ["-f", str(v)]
    for s in sets:
        cmd += ["--set", s]
    out = helm(*cmd)
    if out.returncode != 0:
        raise AssertionError(f"helm template failed: {out.stderr.strip()}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def parse_cli(args: list[str]) -> tuple[str, dict[str, Any]]:
    """Parse a container's args with xit's own CLI (click), without running it: (command path, params)."""
    import typer

    from xit.cli import app

    cmd = typer.main.get_command(app)  # typer's (vendored) click: a group has `commands`
    ctx = cmd.make_context("xit", list(args))
    path = []
    while hasattr(cmd, "commands"):
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None, f"xit has no command {name!r}"
        path.append(name)
        cmd = sub
        ctx = cmd.make_context(name, rest, parent=ctx)
    return " ".join(path), dict(ctx.params)


@dataclass
class ArgoLocal:
    """Runs a WorkflowTemplate's DAG locally; `ran` records (template, substituted args) in order.

    `nodes` records the nodes Argo's controller would create, named as it names them: a DAG task
    ``<parent>.<task>`` (workflow/controller/dag.go, taskNodeName), an item of ``withParam``
    ``<task>(<index>:<item>)`` under a TaskGroup node (dag.go, expandTask → operator.go, processItem and
    generateNodeName: a map item as its sorted ``key:value`` pairs), a step ``<parent>[<group>].<step>``
    under a StepGroup node (steps.go, executeSteps), and a template with a retryStrategy as a Retry
    node with attempts ``<name>(<n>)`` (operator.go, executeTemplate). With ``dry`` set, containers that
    run stages are not executed: ``dry`` maps (template, args) to the outputs the container would write.
    """

    template: dict[str, Any]
    workdir: Path
    parameters: dict[str, str]
    ran: list[tuple[str, list[str]]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dry: Any = None
    name: str = "xit-sweep-abcde"
    nodes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.templates = {t["name"]: t for t in self.template["spec"]["templates"]}
        for p in self.template["spec"]["arguments"]["parameters"]:
            self.parameters.setdefault(p["name"], p.get("value"))
        missing = [k for k, v in self.parameters.items() if v is None]
        assert not missing, f"workflow parameters without a value: {missing}"

    def run(self) -> dict[str, str]:
        return self._template(self.template["spec"]["entrypoint"], {}, self.name)

    def _node(self, name: str, kind: str, template: str | None, inputs: dict[str, str] | None = None,
              phase: str = "Succeeded") -> dict[str, Any]:
        node = {"name": name, "type": kind, "templateName": template, "phase": phase,
                "inputs": dict(inputs or {}), "outputs": {}}
        self.nodes.append(node)
        return node

    # -- substitution -------------------------------------------------------------------------------

    def _subst(self, text: str, scope: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            ref = m.group(1)
            if ref not in scope:
                raise AssertionError(f"unresolved Argo reference {{{{{ref}}}}} (known here: {sorted(scope)})")
            v = scope[ref]
            return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))

        return REF.sub(one, text)

    def _scope(self, inputs: dict[str, str], tasks: dict[str, dict[str, str]], prefix: str = "tasks") -> dict[str, Any]:
        scope: dict[str, Any] = {f"workflow.parameters.{k}": v for k, v in self.parameters.items()}
        scope.update({f"inputs.parameters.{k}": v for k, v in inputs.items()})
        for task, outs in tasks.items():
            scope.update({f"{prefix}.{task}.outputs.parameters.{k}": v for k, v in outs.items()})
        return scope

    @staticmethod
    def _with_item(scope: dict[str, Any], item: Any) -> dict[str, Any]:
        s = {**scope, "item": item}
        if isinstance(item, dict):
            s.update({f"item.{k}": v for k, v in item.items()})
        return s

    def _args(self, task: dict[str, Any], scope: dict[str, Any]) -> dict[str, str]:
        params = task.get("arguments", {}).get("parameters", [])
        return {p["name"]: self._subst(p["value"], scope) for p in params}

    # -- execution ----------------------------------------------------------------------------------

    def _call(self, task: dict[str, Any], scope: dict[str, Any], name: str) -> dict[str, str] | None:
        if "withParam" in task:
            items = json.loads(self._subst(task["withParam"], scope))
            assert isinstance(items, list), f"withParam of {task['name']} is not a JSON list"
            # An empty list gives a Skipped node (workflow/controller/dag.go, executeDAGTask: "Skipped, empty params").
            self._node(name, "TaskGroup" if items else "Skipped", None, phase="Succeeded" if items else "Skipped")
            for i, item in enumerate(items):
                s = self._with_item(scope, item)
                self._one(task, s, f"{name}({i}:{_item_name(item)})")
            return {}
        return self._one(task, scope, name)

    def _one(self, task: dict[str, Any], scope: dict[str, Any], name: str) -> dict[str, str] | None:
        if "when" in task and not _when(self._subst(task["when"], scope)):
            self.skipped.append(task["name"])
            self._node(name, "Skipped", task["template"], phase="Skipped")
            return None  # Skipped: `depends` on it still holds, as in Argo
        return self._template(task["template"], self._args(task, scope), name)

    def _template(self, name: str, inputs: dict[str, str], node_name: str) -> dict[str, str]:
        t = self.templates[name]
        declared = [p["name"] for p in t.get("inputs", {}).get("parameters", [])]
        assert sorted(declared) == sorted(inputs), f"template {name} takes {declared}, called with {sorted(inputs)}"
        if "dag" in t:
            self._node(node_name, "DAG", name, inputs)
            done: dict[str, dict[str, str]] = {}
            pending = list(t["dag"]["tasks"])
            while pending:
                ready = [x for x in pending if all(d in done for d in _depends(x))]
                assert ready, f"DAG {name}: tasks {[x['name'] for x in pending]} can never run"
                for task in ready:
                    scope = self._scope(inputs, done)
                    done[task["name"]] = self._call(task, scope, f"{node_name}.{task['name']}") or {}
                    pending.remove(task)
            return {}
        if "steps" in t:
            self._node(node_name, "Steps", name, inputs)
            done = {}
            for g, group in enumerate(t["steps"]):
                self._node(f"{node_name}[{g}]", "StepGroup", None)
                scope = self._scope(inputs, done, "steps")
                for step in group:
                    done[step["name"]] = self._call(step, scope, f"{node_name}[{g}].{step['name']}") or {}
            return {}
        if "retryStrategy" in t:
            self._node(node_name, "Retry", name, inputs)
            node_name = f"{node_name}(0)"
        node = self._node(node_name, "Pod", name, inputs)
        node["outputs"] = self._container(name, t, inputs)
        return node["outputs"]

    def _local(self, path: str) -> Path:
        return self.workdir / "fs" / path.lstrip("/")

    def _container(self, name: str, t: dict[str, Any], inputs: dict[str, str]) -> dict[str, str]:
        from typer.testing import CliRunner

        from xit.cli import app

        scope = self._scope(inputs, {})
        for art in t.get("inputs", {}).get("artifacts", []):
            dest = self._local(art["path"])
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(self._subst(art["raw"]["data"], scope))
        args = []
        for a in t["container"]["args"]:
            a = self._subst(a, scope)
            args.append(str(self._local(a)) if a.startswith(("/spec/", "/work/")) else a)
        self.ran.append((name, args))
        if self.dry is not None and (args[:2] == ["stage", "run"] or args[:1] == ["report"]):
            return self.dry(name, args)
        result = CliRunner().invoke(app, args)
        if result.exit_code != 0:
            raise AssertionError(f"{name}: xit {' '.join(args)} exited {result.exit_code}: "
                                 f"{result.output[-2000:]} {result.exception!r}")
        outs = {}
        for p in t.get("outputs", {}).get("parameters", []):
            outs[p["name"]] = self._local(p["valueFrom"]["path"]).read_text()
        return outs


def _item_name(item: Any) -> str:
    """How Argo writes an item into a node name (workflow/controller/operator.go, processItem and
    generateNodeName): a map as its sorted ``key:value`` pairs joined by commas, parentheses dropped."""
    if isinstance(item, dict):
        text = ",".join(sorted(f"{k}:{_go_value(v)}" for k, v in item.items()))
    else:
        text = _go_value(item)
    return text.replace("(", "").replace(")", "")


def _go_value(v: Any) -> str:
    """Go's fmt %v of a JSON value as Argo holds it (numbers, strings, lists as [a b], maps as map[k:v])."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + " ".join(_go_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_value(x)}" for k, x in sorted(v.items())) + "]"
    return str(v)


def _when(expr: str) -> bool:
    """Argo `when` for the one form the template uses: 'a' != 'b' (or ==), after substitution."""
    m = re.fullmatch(r"\s*'([^']*)'\s*(!=|==)\s*'([^']*)'\s*", expr)
    assert m, f"unsupported when expression {expr!r}"
    return (m.group(1) == m.group(3)) == (m.group(2) == "==")


def _depends(task: dict[str, Any]) -> list[str]:
    if "depends" in task:
        return [x for x in re.split(r"[\s()&|!]+", task["depends"]) if x and "." not in x]
    return list(task.get("dependencies", []))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
