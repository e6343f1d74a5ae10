"""A task described in YAML (no code) goes through a whole sweep, and through a pod that only has the plan."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from xit.plan import build_plan
from xit.spec import load_spec
from xit.tasks.registry import get_task

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("restore_registry")

DESCRIPTOR = """\
name: my-para
format: classification
languages: [en, agg]
labels: [different, paraphrase]
files: "data/{lang}.{split}.tsv"
columns: {text_a: s1, text_b: s2, label: gold}
defaults: {lr: 1.0e-3, epochs: 1, batch_size: 16, max_length: 64}
"""


def _write_data(root: Path) -> None:
    para = get_task("demo-para")  # real rows, written out as a user's TSV files would be
    (root / "data").mkdir(parents=True, exist_ok=True)
    for lang, split, n in [("en", "train", 240), ("en", "dev", 60), ("en", "test", 60), ("agg", "test", 60)]:
        rows = para.load(lang, "test" if split == "test" else split)[:n]
        lines = ["s1\ts2\tgold"] + [f"{r['text_a']}\t{r['text_b']}\t{para.labels[r['label']]}" for r in rows]
        (root / "data" / f"{lang}.{split}.tsv").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_yaml_task_runs_in_a_sweep_and_from_the_plan_alone(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "my-para.yaml").write_text(DESCRIPTOR)
    _write_data(tmp_path / "tasks")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: custom\ntask_files: [tasks]\ntargets: [my-para]\n")

    r = subprocess.run([sys.executable, "-m", "xit.cli", "run", str(spec), "--store", str(tmp_path / "store"),
                        "--out", str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path / "out" / "per_language.csv")))
    assert [(x["target"], x["language"], x["metric"]) for x in rows] == [
        ("my-para", "agg", "accuracy"), ("my-para", "en", "accuracy")]  # languages in sorted order

    # A pod gets only the plan: the descriptor travels in it, and the stage key is the same.
    plan = build_plan(load_spec(spec))
    assert set(plan.tasks) == {"my-para"}
    (tmp_path / "plan.json").write_text(plan.to_json())
    evaluate = plan.by_kind("evaluate")[0]
    (tmp_path / "store" / "stages" / evaluate.key / "MANIFEST.json").unlink()
    code = ("import sys; from xit.cli import main; sys.argv = ['xit', 'stage', 'run', '--plan', sys.argv[1], "
            "'--key', sys.argv[2], '--store', sys.argv[3], '--no-progress']; main()")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "plan.json"), evaluate.key,
                        str(tmp_path / "store")], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("done:"), r.stderr[-3000:]

    # The data are part of the key: change one test file and the evaluate stage changes, training does not.
    f = tmp_path / "tasks" / "data" / "agg.test.tsv"
    text = f.read_text().splitlines()
    text[1] = text[1].rsplit("\t", 1)[0] + ("\tdifferent" if text[1].endswith("paraphrase") else "\tparaphrase")
    f.write_text("\n".join(text) + "\n")
    changed = build_plan(load_spec(spec))
    assert changed.by_kind("target")[0].key == plan.by_kind("target")[0].key
    assert changed.by_kind("evaluate")[0].key != evaluate.key


def test_reading_a_plan_leaves_the_task_registry_alone(tmp_path: Path) -> None:
    """Only running a stage registers the custom tasks a plan carries; loading it (to show it, to publish a
    report) does not change the registry."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "my-para.yaml").write_text(DESCRIPTOR)
    _write_data(tmp_path / "tasks")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: custom\ntask_files: [tasks]\ntargets: [my-para]\n")
    (tmp_path / "plan.json").write_text(build_plan(load_spec(spec)).to_json())
    code = ("import sys; from xit.plan import Plan; from xit.tasks import registry as r; p = Plan.load(sys.argv[1]); "
            "print('my-para' in r._REGISTRY); p.register_tasks(); print(r.get_task('my-para').format)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "plan.json")], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "classification"]
