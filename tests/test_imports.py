"""Import structure: reading a spec and planning a sweep never load the model libraries.

`xit validate` and `xit plan` run in the Argo plan step and on a researcher's laptop before every submit;
torch and transformers cost seconds to import and are not needed to check a spec or compute stage keys.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "accelerate", "datasets")


def _imported_modules(*argv: str) -> set[str]:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['xit', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('xit.cli', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('\\n'.join('MODULE ' + m for m in sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {line.split()[1] for line in out.stdout.splitlines() if line.startswith("MODULE ")}


@pytest.mark.parametrize("argv", [("validate", "examples/demo.yaml"), ("plan", "examples/demo.yaml"),
                                  ("tasks",)])
def test_spec_commands_import_no_model_library(argv):
    modules = _imported_modules(*argv)
    assert "xit.tasks.registry" in modules  # the command really ran through the task registry
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not loaded, f"xit {' '.join(argv)} imported {loaded[:5]}"
    if argv[0] == "plan":  # stage keys hash the kinds' versions from their registry, which loads no kind's body
        assert "xit.stages" in modules and not [m for m in modules if m.startswith("xit.stages.")]


def _xit_imports(path: Path) -> set[str]:
    """Every xit module a file imports, at the top or inside a function."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xit"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("xit")}
    return found


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def test_the_xit_import_graph_has_no_cycle() -> None:
    """Lazy imports inside functions count too: a cycle among modules is a knot a newcomer has to untie (it was
    formats -> dual encoder -> retrieval -> modeling -> formats)."""
    files = {_module(p): p for p in (ROOT / "xit").rglob("*.py")}
    graph = {}
    for mod, path in files.items():
        deps = set()
        for imp in _xit_imports(path):
            # `from xit.formats.base import x` depends on xit.formats.base, and on the package xit.formats it runs.
            parts = imp.split(".")
            deps |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} & set(files)
        # A module's own packages run before it whatever it imports: not an edge of the knot this test is after.
        graph[mod] = {d for d in deps if not (mod == d or mod.startswith(d + "."))}

    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(d):], d]))
            if d not in state:
                visit(d, [*trail, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
