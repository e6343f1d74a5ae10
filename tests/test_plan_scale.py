"""Planning at scale: `build_plan` asks the spec once per task and phase; the tree prints without rich's layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from xit.cli import _tree
from xit.plan import build_plan
from xit.spec import Spec, load_spec

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.yaml"


def test_build_plan_resolves_hparams_and_fingerprints_once_per_task(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(DEMO.read_text().replace("seeds: [1]", "seeds: [1, 2, 3, 4]"))
    spec = load_spec(spec_file)
    reference = build_plan(spec).to_json()
    calls: list[tuple[str, str]] = []
    real = Spec.hparams_for

    def counting(self, task, phase):  # noqa: ANN001
        calls.append((task.name, phase))
        return real(self, task, phase)

    monkeypatch.setattr(Spec, "hparams_for", counting)
    plan = build_plan(spec)
    assert plan.to_json() == reference
    assert len(calls) == len(set(calls))  # 4 seeds × 4 configurations asked it once per task and phase


def test_the_tree_has_one_line_per_stage_under_its_input() -> None:
    plan = build_plan(load_spec(DEMO))
    plain = _tree(plan, styled=False).splitlines()
    assert plain[0] == f"sweep demo {plan.sweep_id}, {len(plan.stages)} stages"
    assert len(plain) == len(plan.stages) + 1 and "[cyan]" not in "".join(plain)
    depth = {}
    for line in plain[1:]:
        key = next(s.key for s in plan.stages if f" {s.key}" in line)
        depth[key] = line.index("── ") // 4
    for s in plan.stages:
        if s.kind == "report":
            assert depth[s.key] == 0
        elif s.inputs:
            assert depth[s.key] == depth[s.inputs[0]] + 1
    assert plain[-1].startswith("└── report ")
    styled = _tree(plan, styled=True)
    assert "[cyan]evaluate[/]" in styled and "\\[xtreme: lr 0.001" in styled
