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
