"""Tests for xit.plan: the stage DAG of a spec and its content keys.

Keys must be a pure function of what a stage computes: the same spec gives the same keys
(in any process), sweeps share the stages they have in common, a change invalidates exactly
the stages downstream of it, and local data count by content, not by path.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from xit.errors import XitError
from xit.plan import Plan, Stage, build_plan, key_kind
from xit.spec import load_spec, parse_spec
from xit.stages import KIND_NAMES

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "tests" / "specs" / "planner.yaml"  # a sweep that holds still (examples/demo.yaml may change)
CONFIGS = ["[]", "[demo-nli]", "[demo-qa]", "[demo-nli, demo-mc]"]  # its configurations, in order
TRAINED = ["demo-para", "demo-qa", "demo-tag"]  # its fine-tuned targets
RETRIEVED = ["demo-tatoeba", "demo-bucc"]  # its retrieval targets


def demo_raw() -> dict[str, Any]:
    return yaml.safe_load(DEMO.read_text())


def plan_of(raw: dict[str, Any], where: Path = DEMO) -> Plan:
    """The plan of a spec given as a dict, as if read from the file `where`."""
    return build_plan(parse_spec(copy.deepcopy(raw), where))


def keys(plan: Plan) -> dict[str, str]:
    """label -> key (labels are unique within a plan)."""
    out = {s.label: s.key for s in plan.stages}
    assert len(out) == len(plan.stages), "two stages share a label"
    return out


def changed(a: Plan, b: Plan) -> set[str]:
    """Labels of the stages whose key differs between two plans of the same stages."""
    ka, kb = keys(a), keys(b)
    assert ka.keys() == kb.keys()
    return {label for label in ka if ka[label] != kb[label]}


def downstream(plan: Plan, label: str) -> set[str]:
    """The stage and every stage that (transitively) reads it, the report excluded."""
    by_key = {s.key: s for s in plan.stages}
    todo, seen = [keys(plan)[label]], set()
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        todo += [s.key for s in plan.stages if k in s.inputs and s.kind != "report"]
    return {by_key[k].label for k in seen}


def inter(cfg: str, seed: int = 1) -> str:
    return "intermediate [] (base encoder)" if cfg == "[]" else f"intermediate {cfg} seed {seed}"


def trained(task: str, cfg: str, seed: int = 1) -> set[str]:
    return {f"target {task} from {cfg} seed {seed}", f"evaluate {task} from {cfg} seed {seed}"}


def retrieved(task: str, cfg: str, seed: int = 1) -> str:
    return f"retrieval {task} on {cfg}" + ("" if cfg == "[]" else f" seed {seed}")


@pytest.fixture(scope="module")
def demo() -> Plan:
    return build_plan(load_spec(DEMO))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    env.update(NO_COLOR="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", **extra)
    return env


def xit(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xit.cli", *args], cwd=cwd, env=_env(**env), capture_output=True,
                          text=True, timeout=300)


# --------------------------------------------------------------------------- determinism


def test_same_spec_same_keys(demo: Plan) -> None:
    again = build_plan(load_spec(DEMO))
    assert [s.key for s in again.stages] == [s.key for s in demo.stages]
    assert again.sweep_id == demo.sweep_id
    assert again.to_json() == demo.to_json()
    assert len({s.key for s in demo.stages}) == len(demo.stages)


def test_key_kind_reads_the_kind_back_from_every_key(demo: Plan) -> None:
    assert all(key_kind(s.key) == s.kind for s in demo.stages)


def test_same_keys_in_separate_processes(demo: Plan, tmp_path: Path) -> None:
    # Different hash seeds and working directories: nothing may depend on set order or the cwd.
    runs = [(tmp_path / "a", "1"), (tmp_path / "b", "2")]
    for d, _ in runs:
        d.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(lambda r: xit(["plan", "--json", str(DEMO)], r[0], PYTHONHASHSEED=r[1]), runs))
    for p in procs:
        assert p.returncode == 0, p.stderr
    assert procs[0].stdout == procs[1].stdout
    assert procs[0].stdout == demo.to_json() + "\n"
    loaded = Plan.from_json(procs[0].stdout)
    assert [s.key for s in loaded.stages] == [s.key for s in demo.stages]
    assert loaded.sweep_id == demo.sweep_id


# --------------------------------------------------------------------------- shape


def test_demo_plan_stages(demo: Plan) -> None:
    assert {s.kind for s in demo.stages} == set(KIND_NAMES) == {"intermediate", "target", "evaluate", "retrieval",
                                                             "report"}
    expected = {inter(c) for c in CONFIGS} | {f"report {demo.name}"}
    expected |= {label for c in CONFIGS for t in TRAINED for label in trained(t, c)}
    expected |= {retrieved(t, c) for c in CONFIGS for t in RETRIEVED}
    assert set(keys(demo)) == expected
    counts = {k: len(demo.by_kind(k)) for k in KIND_NAMES}
    assert counts == {"intermediate": 4, "target": 12, "evaluate": 12, "retrieval": 8, "report": 1}
    assert all(s.key.startswith(f"{s.kind}-") for s in demo.stages)


def test_inputs_come_first_and_have_the_right_kind(demo: Plan) -> None:
    seen: dict[str, Stage] = {}
    for s in demo.stages:
        assert all(k in seen for k in s.inputs), f"{s.label} comes before its inputs"
        kinds = [seen[k].kind for k in s.inputs]
        if s.kind == "intermediate":
            assert kinds == ([] if s.label == inter("[]") else ["intermediate"])
        elif s.kind in ("target", "retrieval"):
            assert kinds == ["intermediate"]
        elif s.kind == "evaluate":
            assert kinds == ["target"]
            assert seen[s.inputs[0]].params["task"] == s.params["task"]
        seen[s.key] = s
    base = keys(demo)[inter("[]")]
    assert all(s.inputs == [base] for s in demo.by_kind("intermediate") if s.key != base)


def test_report_reads_every_evaluate_and_retrieval_stage(demo: Plan) -> None:
    (report,) = demo.by_kind("report")
    assert report is demo.stages[-1]
    scored = {s.key for s in demo.stages if s.kind in ("evaluate", "retrieval")}
    assert set(report.inputs) == scored
    assert len(report.inputs) == len(scored)
    entries = report.params["entries"]
    assert {(e["intermediate"], e["target"]) for e in entries} == {
        (c, t) for c in CONFIGS for t in TRAINED + RETRIEVED}
    assert {e["key"] for e in entries} == scored


def test_plan_json_round_trips(demo: Plan, tmp_path: Path) -> None:
    back = Plan.from_json(demo.to_json())
    assert back == demo
    assert back.to_json() == demo.to_json()
    (tmp_path / "plan.json").write_text(demo.to_json())
    assert Plan.load(tmp_path / "plan.json") == demo


def test_plan_json_of_a_plan_with_local_data_round_trips(tmp_path: Path) -> None:
    plan = tatoeba_plan(write_tatoeba(tmp_path / "data"))
    assert any(s.runtime for s in plan.stages)
    assert Plan.from_json(plan.to_json()) == plan


def test_plan_json_rejects_another_version(demo: Plan, tmp_path: Path) -> None:
    d = json.loads(demo.to_json())
    d["version"] = 99
    text = json.dumps(d)
    with pytest.raises(XitError, match="plan version 99 is not supported"):
        Plan.from_json(text)
    for junk in ("not json", '{"version": 1}'):
        (tmp_path / "junk.json").write_text(junk)
        with pytest.raises(XitError, match="junk.json: not an xit plan"):
            Plan.load(tmp_path / "junk.json")


@pytest.mark.parametrize("junk", ["{}", "[]"])
def test_plan_load_names_the_file_of_any_non_plan(tmp_path: Path, junk: str) -> None:
    (tmp_path / "junk.json").write_text(junk)
    with pytest.raises(XitError, match="junk.json"):
        Plan.load(tmp_path / "junk.json")


# --------------------------------------------------------------------------- sharing between sweeps


def test_two_sweeps_share_exactly_their_common_stages(demo: Plan) -> None:
    other = plan_of({
        "name": "other-sweep",
        "intermediate": [["demo-mc"], ["demo-nli"], []],  # another order, one new configuration
        "targets": ["demo-tag", "demo-nli", "demo-qa"],  # one new target, no retrieval
        "hparams": {"intermediate": {"lr": 1e-3, "epochs": 3}, "target": {"lr": 1e-3, "epochs": 3}},
    })
    a, b = keys(demo), keys(other)
    shared = set(a.values()) & set(b.values())
    expected = {inter("[]"), inter("[demo-nli]")}
    expected |= {label for c in ("[]", "[demo-nli]") for t in ("demo-qa", "demo-tag") for label in trained(t, c)}
    assert {label for label, k in a.items() if k in shared} == expected
    assert {label for label, k in b.items() if k in shared} == expected  # and the same stages by name
    assert demo.sweep_id != other.sweep_id


def test_sweep_name_only_changes_the_report(demo: Plan) -> None:
    raw = demo_raw()
    raw["name"] = "renamed"
    renamed = plan_of(raw)
    assert {s.key for s in renamed.stages if s.kind != "report"} == {s.key for s in demo.stages if s.kind != "report"}
    assert renamed.by_kind("report")[0].key != demo.by_kind("report")[0].key


def test_target_hparam_changes_only_that_targets_stages(demo: Plan) -> None:
    raw = demo_raw()
    raw["hparams"]["tasks"] = {"demo-tag": {"lr": 2e-3}}  # demo-tag is a target only
    assert changed(demo, plan_of(raw)) == {label for c in CONFIGS for label in trained("demo-tag", c)} | {
        "report demo"}


def test_target_phase_hparam_changes_every_target_and_evaluate_stage(demo: Plan) -> None:
    raw = demo_raw()
    raw["hparams"]["target"]["lr"] = 2e-3
    other = plan_of(raw)
    assert changed(demo, other) == {s.label for s in demo.stages if s.kind in ("target", "evaluate", "report")}


def test_intermediate_hparam_changes_that_intermediate_and_everything_downstream(demo: Plan) -> None:
    raw = demo_raw()
    raw["hparams"]["tasks"] = {"demo-mc": {"lr": 2e-3}}  # only in [demo-nli, demo-mc]; not a target
    expected = downstream(demo, inter("[demo-nli, demo-mc]"))
    assert expected == ({inter("[demo-nli, demo-mc]")} | {retrieved(t, "[demo-nli, demo-mc]") for t in RETRIEVED}
                        | {label for t in TRAINED for label in trained(t, "[demo-nli, demo-mc]")})
    assert changed(demo, plan_of(raw)) == expected | {"report demo"}


def test_intermediate_phase_hparam_changes_every_trained_encoder_and_downstream(demo: Plan) -> None:
    raw = demo_raw()
    raw["hparams"]["intermediate"]["epochs"] = 4
    expected = {"report demo"}.union(*(downstream(demo, inter(c)) for c in CONFIGS[1:]))
    assert changed(demo, plan_of(raw)) == expected
    assert inter("[]") not in expected and trained("demo-qa", "[]") <= set(keys(demo)) - expected


def test_sampler_changes_intermediate_keys_only_for_trained_encoders(demo: Plan) -> None:
    raw = demo_raw()
    raw["sampler"] = {"kind": "uniform"}
    expected = {"report demo"}.union(*(downstream(demo, inter(c)) for c in CONFIGS[1:]))
    assert changed(demo, plan_of(raw)) == expected


def test_retrieval_setting_changes_only_retrieval_stages(demo: Plan) -> None:
    raw = demo_raw()
    raw["retrieval"] = {"k": 8}
    assert changed(demo, plan_of(raw)) == {s.label for s in demo.stages if s.kind in ("retrieval", "report")}


def test_model_seed_changes_every_stage(demo: Plan) -> None:
    raw = demo_raw()
    raw["model_seed"] = 7
    assert changed(demo, plan_of(raw)) == set(keys(demo))


def test_evaluation_only_hparam_does_not_retrain(demo: Plan) -> None:
    raw = demo_raw()
    raw["hparams"]["target"]["max_eval_examples"] = 50
    assert changed(demo, plan_of(raw)) == {s.label for s in demo.stages if s.kind in ("evaluate", "report")}


# --------------------------------------------------------------------------- seeds


def test_adding_a_seed_adds_stages_and_shares_the_base_encoder(demo: Plan) -> None:
    raw = demo_raw()
    raw["seeds"] = [1, 2]
    two = plan_of(raw)
    one_keys, two_keys = set(keys(demo).values()), set(keys(two).values())
    report = demo.by_kind("report")[0].key
    assert one_keys - {report} < two_keys  # every seed-1 stage is still there, unchanged
    assert keys(two)[inter("[]")] == keys(demo)[inter("[]")]
    assert [s.label for s in two.by_kind("intermediate") if not s.inputs] == [inter("[]")]
    counts = {k: len(two.by_kind(k)) for k in KIND_NAMES}
    # Retrieval on the base encoder does not depend on the seed: once, not once per seed.
    assert counts == {"intermediate": 1 + 3 * 2, "target": 4 * 3 * 2, "evaluate": 4 * 3 * 2,
                      "retrieval": 2 + 3 * 2 * 2, "report": 1}
    k2 = keys(two)
    for c in CONFIGS:
        for t in TRAINED:
            assert k2[f"target {t} from {c} seed 2"] != k2[f"target {t} from {c} seed 1"]
    for c in CONFIGS[1:]:
        assert k2[inter(c, 2)] != k2[inter(c, 1)]
    assert len(two.by_kind("report")[0].params["entries"]) == 4 * 5 * 2


def test_sweeps_with_overlapping_seeds_share_the_common_seed(demo: Plan) -> None:
    raw_a, raw_b = demo_raw(), demo_raw()
    raw_a["seeds"], raw_b["seeds"] = [1, 2], [2, 3]
    a, b = keys(plan_of(raw_a)), keys(plan_of(raw_b))
    shared = {label for label, k in a.items() if k in set(b.values())}
    expected = {inter(c, 2) for c in CONFIGS} | {retrieved(t, c, 2) for c in CONFIGS for t in RETRIEVED}
    expected |= {label for c in CONFIGS for t in TRAINED for label in trained(t, c, 2)}
    assert shared == expected


# --------------------------------------------------------------------------- local data by content

DEU = "Hallo Welt\nGuten Morgen\nWie geht es dir?\n"
ENG = "Hello world\nGood morning\nHow are you?\n"


def write_tatoeba(d: Path, deu: str = DEU, eng: str = ENG) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "tatoeba.deu-eng.deu").write_text(deu)
    (d / "tatoeba.deu-eng.eng").write_text(eng)
    return d


def tatoeba_plan(data_dir: Path, spec_dir: Path | None = None) -> Plan:
    raw = {"name": "tat", "intermediate": [[], ["demo-nli"]], "targets": ["tatoeba", "demo-tag"],
           "languages": {"tatoeba": ["de"]}, "data": {"tatoeba": {"data_dir": str(data_dir)}}}
    return plan_of(raw, (spec_dir or data_dir.parent) / "spec.yaml")


def retrieval_keys(plan: Plan) -> dict[str, str]:
    return {s.label: s.key for s in plan.by_kind("retrieval")}


def test_local_data_copied_elsewhere_keeps_every_key(tmp_path: Path) -> None:
    a = tatoeba_plan(write_tatoeba(tmp_path / "a"))
    b_dir = tmp_path / "elsewhere" / "b"
    b_dir.mkdir(parents=True)
    for f in (tmp_path / "a").iterdir():
        shutil.copy(f, b_dir / f.name)  # new paths, new modification times, same bytes
    b = tatoeba_plan(b_dir, spec_dir=tmp_path)
    assert keys(a) == keys(b)
    assert a.sweep_id == b.sweep_id
    # The path travels in `runtime` (not hashed), so each plan still finds its own files.
    (sa,) = [s for s in a.by_kind("retrieval") if s.label == retrieved("tatoeba", "[]")]
    (sb,) = [s for s in b.by_kind("retrieval") if s.label == retrieved("tatoeba", "[]")]
    assert sa.runtime["data"]["tatoeba"]["data_dir"] == str(tmp_path / "a")
    assert sb.runtime["data"]["tatoeba"]["data_dir"] == str(b_dir)


def test_local_data_relative_dir_gives_the_same_keys(tmp_path: Path) -> None:
    a = tatoeba_plan(write_tatoeba(tmp_path / "data"))
    raw = {"name": "tat", "intermediate": [[], ["demo-nli"]], "targets": ["tatoeba", "demo-tag"],
           "languages": {"tatoeba": ["de"]}, "data": {"tatoeba": {"data_dir": "../data"}}}
    (tmp_path / "specs").mkdir()
    b = plan_of(raw, tmp_path / "specs" / "spec.yaml")
    assert keys(a) == keys(b)


def test_changing_one_byte_of_local_data_changes_only_its_stages(tmp_path: Path) -> None:
    a = tatoeba_plan(write_tatoeba(tmp_path / "a"))
    b = tatoeba_plan(write_tatoeba(tmp_path / "b", eng=ENG.replace("world", "World")))
    tatoeba_stages = {retrieved("tatoeba", c) for c in ("[]", "[demo-nli]")} | {"report tat"}
    assert changed(a, b) == tatoeba_stages
    c = tatoeba_plan(write_tatoeba(tmp_path / "c", deu=DEU.replace("Welt", "Welz")))
    assert changed(a, c) == tatoeba_stages
    assert len({retrieval_keys(p)[retrieved("tatoeba", "[]")] for p in (a, b, c)}) == 3


def test_editing_local_data_in_place_changes_the_key(tmp_path: Path) -> None:
    d = write_tatoeba(tmp_path / "data")
    before = tatoeba_plan(d)
    f = d / "tatoeba.deu-eng.deu"
    mtime = f.stat().st_mtime_ns
    f.write_text(DEU.replace("Morgen", "Abend!"))  # same size
    os.utime(f, ns=(mtime + 2_000_000_000, mtime + 2_000_000_000))  # as a later edit, whatever the clock
    after = tatoeba_plan(d)
    assert changed(before, after) == {retrieved("tatoeba", c) for c in ("[]", "[demo-nli]")} | {"report tat"}


def test_unrelated_files_next_to_local_data_do_not_change_the_key(tmp_path: Path) -> None:
    d = write_tatoeba(tmp_path / "data")
    before = tatoeba_plan(d)
    (d / "README.txt").write_text("notes")
    (d / "tatoeba.fra-eng.fra").write_text("Bonjour\n")  # a language this sweep does not use
    assert keys(tatoeba_plan(d)) == keys(before)


def write_squad(d: Path, de: str = '{"version": "de"}') -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "train-v1.1.json").write_text('{"version": "train"}')
    (d / "dev-v1.1.json").write_text('{"version": "dev"}')
    (d / "xquad.de.json").write_text(de)
    (d / "xquad.es.json").write_text('{"version": "es"}')
    return d


def xquad_plan(data_dir: Path, languages: list[str]) -> Plan:
    raw = {"name": "xq", "targets": ["xquad"], "languages": {"xquad": languages},
           "data": {"xquad": {"data_dir": str(data_dir)}}}
    return plan_of(raw, data_dir.parent / "spec.yaml")


def test_local_data_fine_tuned_target_is_planned_and_keyed_by_content(tmp_path: Path) -> None:
    a = xquad_plan(write_squad(tmp_path / "a"), ["de"])
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert keys(xquad_plan(tmp_path / "b", ["de"])) == keys(a)
    c = xquad_plan(write_squad(tmp_path / "c", de='{"version": "de2"}'), ["de"])
    assert "evaluate xquad from [] seed 1" in changed(a, c)


def test_target_key_depends_only_on_its_training_data(tmp_path: Path) -> None:
    a = xquad_plan(write_squad(tmp_path / "a"), ["de"])
    b = xquad_plan(write_squad(tmp_path / "b", de='{"version": "de2"}'), ["de"])
    assert changed(a, b) == {"evaluate xquad from [] seed 1", "report xq"}
    c = xquad_plan(tmp_path / "a", ["de", "es"])
    assert keys(c)["target squad for xquad from [] seed 1"] == keys(a)["target squad for xquad from [] seed 1"]


def test_validate_accepts_what_plan_needs_for_retrieval(tmp_path: Path) -> None:
    d = write_tatoeba(tmp_path / "data")
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "tat", "targets": ["tatoeba"], "languages": {
        "tatoeba": ["de"]}, "data": {"tatoeba": {"data_dir": "data"}}}))
    plan = build_plan(load_spec(tmp_path / "s.yaml"))
    (s,) = plan.by_kind("retrieval")
    assert s.params["languages"] == ["de"]
    assert s.runtime == {"data": {"tatoeba": {"data_dir": str(d.resolve()), "data_files": {}}}}


# --------------------------------------------------------------------------- the tree


def test_plan_tree_prints_labels_literally(demo: Plan, tmp_path: Path) -> None:
    proc = xit(["plan", str(DEMO)], tmp_path, COLUMNS="250")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for c in CONFIGS[1:]:
        assert f"intermediate {c} seed 1" in text
        for t in TRAINED:
            assert f"target {t} from {c} seed 1" in text
    assert "intermediate [] (base encoder)" in text
    assert "retrieval demo-tatoeba on []" in text
    for s in demo.stages:
        assert s.key in text
    assert f"sweep demo {demo.sweep_id}, {len(demo.stages)} stages" in text
    assert list(tmp_path.iterdir()) == []


def test_xtreme_target_group_plans_all_nine_tasks_in_all_their_languages(tmp_path: Path) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text("name: x\nmodel: xlm-roberta-large\nintermediate: [[], [mnli]]\ntargets: [xtreme, xnli]\n")
    plan = build_plan(load_spec(spec))
    nine = ["xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc", "tatoeba"]
    assert plan.spec["targets"] == nine  # the group expands in order; a repeated task is kept once
    scored = [s for s in plan.stages if s.kind in ("evaluate", "retrieval") and "[mnli]" in s.label]
    assert [s.params["task"] for s in scored] == [t for t in nine if t not in ("bucc", "tatoeba")] + ["bucc", "tatoeba"]
    langs = {s.params["task"]: len(s.params["languages"]) for s in scored}
    assert langs == {"xnli": 15, "pawsx": 7, "udpos": 33, "panx": 40, "xquad": 11, "mlqa": 7, "tydiqa": 9,
                     "bucc": 4, "tatoeba": 36}


# --------------------------------------------------------------------------- recipes


def _xstilts_spec(tmp_path: Path, extra: str = "") -> Path:
    spec = tmp_path / "x.yaml"
    spec.write_text("name: x\nmodel: xlm-roberta-large\nintermediate: [[], [mnli, squad]]\ntargets: [xtreme]\n"
                    + extra)
    return spec


def test_x_stilts_recipe_sets_the_papers_jiant_settings(tmp_path: Path) -> None:
    """nyu-mll/jiant's XTREME scripts (d_write_configs.sh, c_tokenize_and_cache.sh, e_run_models.sh)."""
    plan = build_plan(load_spec(_xstilts_spec(tmp_path, "recipe: x-stilts\n")))
    common = {"lr": 1e-5, "warmup_ratio": 0.1, "batch_size": 4, "eval_every_steps": 1000, "max_dev_examples": 500,
              "patience": 30}
    targets = {s.params["task"]: s.params["hp"] for s in plan.by_kind("target") if "[]" in s.label}
    want = {"xnli": (2, 8, 256), "pawsx": (5, 8, 256), "udpos": (10, 8, 256), "panx": (10, 8, 256),
            "squad": (2, 4, 384), "tydiqa": (2, 4, 384)}  # squad: the one SQuAD model XQuAD and MLQA share
    assert set(targets) == set(want)
    for task, (epochs, accum, length) in want.items():
        hp = targets[task]
        assert {k: hp[k] for k in common} == common, task
        assert (hp["epochs"], hp["grad_accum_steps"], hp["max_length"]) == (epochs, accum, length), task
        assert hp["batch_size"] * hp["grad_accum_steps"] == (16 if length == 384 else 32)
    (mix,) = [s for s in plan.by_kind("intermediate") if s.params.get("tasks")]
    assert [(t["name"], t["hp"]["epochs"], t["hp"]["grad_accum_steps"], t["hp"]["max_length"])
            for t in mix.params["tasks"]] == [("mnli", 3, 8, 256), ("squad", 3, 4, 384)]
    assert {s.params["retrieval"]["max_length"] for s in plan.by_kind("retrieval")} == {512}
    assert {s.recipe for s in plan.stages if s.kind != "report" and s.inputs} == {"x-stilts"}
    evaluate = {s.params["task"]: s.params["hp"]["max_length"] for s in plan.by_kind("evaluate")}
    assert evaluate["xnli"] == 256 and evaluate["mlqa"] == 384  # evaluated at the length trained with


def test_spec_hparams_override_the_recipe_and_xtreme_is_todays_default(tmp_path: Path) -> None:
    plan = build_plan(load_spec(_xstilts_spec(tmp_path, "recipe: x-stilts\nhparams: {target: {lr: 2.0e-5}, tasks: "
                                                        "{xnli: {epochs: 1}}}\nretrieval: {max_length: 128}\n")))
    hp = {s.params["task"]: s.params["hp"] for s in plan.by_kind("target")}
    assert hp["xnli"]["lr"] == 2e-5 and hp["xnli"]["epochs"] == 1 and hp["pawsx"]["epochs"] == 5
    assert {s.params["retrieval"]["max_length"] for s in plan.by_kind("retrieval")} == {128}
    default = build_plan(load_spec(_xstilts_spec(tmp_path)))
    named = build_plan(load_spec(_xstilts_spec(tmp_path, "recipe: xtreme\n")))
    assert [s.key for s in default.stages] == [s.key for s in named.stages]  # existing keys unchanged
    assert {s.recipe for s in default.stages if s.kind != "report" and s.inputs} == {"xtreme"}
    assert not any("grad_accum_steps" in (s.params.get("hp") or {}) for s in default.stages)


def test_plan_shows_the_recipe_of_each_stage_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    proc = xit(["plan", str(_xstilts_spec(tmp_path, "recipe: x-stilts\n"))], tmp_path, COLUMNS="300")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("target xnli from [] seed 1" in x and "[x-stilts: lr 1e-05, 2 ep, batch 4x8, len 256, dev 500 every "
               "1000 steps, patience 30]" in x for x in lines)
    assert any("retrieval bucc on []" in x and "[x-stilts: len 512]" in x for x in lines)
    bad = xit(["plan", str(_xstilts_spec(tmp_path, "recipe: jiant\n"))], tmp_path)
    assert bad.returncode == 2 and "field 'recipe'" in bad.stderr and "x-stilts" in bad.stderr


# --------------------------------------------------------------------------- one SQuAD model for XQuAD and MLQA


def test_xquad_and_mlqa_share_one_squad_target_stage(tmp_path: Path) -> None:
    """Both train on SQuAD v1.1 with one recipe (XTREME's scripts/train.sh, jiant's TRAIN_TASK_DICT): one target
    stage per intermediate encoder and seed, two evaluate stages on it."""
    from xit import argo

    for recipe in ("xtreme", "x-stilts"):
        spec = tmp_path / f"{recipe}.yaml"
        spec.write_text(f"name: x\nmodel: xlm-roberta-large\nrecipe: {recipe}\nintermediate: [[], [mnli]]\n"
                        "targets: [xtreme]\nseeds: [1, 2]\n")
        plan = build_plan(load_spec(spec))
        qa = [s for s in plan.by_kind("target") if s.params["task"] == "squad"]
        assert len(qa) == 4  # one per encoder ([], [mnli]) and seed (1, 2)
        for t in qa:
            scored = sorted(s.params["task"] for s in plan.by_kind("evaluate") if s.inputs == [t.key])
            assert scored == ["mlqa", "xquad"]
            assert t.label.startswith("target squad for xquad, mlqa from ")
        assert not any(s.params["task"] in ("xquad", "mlqa") for s in plan.by_kind("target"))
        # 7 trained targets become 6 target stages per encoder and seed.
        assert len(plan.by_kind("target")) == 6 * 4 and len(plan.by_kind("evaluate")) == 7 * 4
        branches = argo.branches(plan)  # the full branches; the plan step emits only their indices
        shared = [t for b in branches for t in b["targets"] if t["evaluate_also"]]
        assert len(shared) == 4
        for t in shared:
            assert {plan.stage(t["evaluate"]).params["task"], plan.stage(t["evaluate_also"][0]).params["task"]} \
                == {"xquad", "mlqa"}
    proc = xit(["plan", str(tmp_path / "x-stilts.yaml")], tmp_path, COLUMNS="300")
    assert proc.returncode == 0 and "target squad for xquad, mlqa from [] seed 1" in proc.stdout
    assert "4 target stage(s) serve several targets: 4 fewer trainings" in proc.stdout


def test_xquad_and_mlqa_train_apart_when_their_settings_or_data_differ(tmp_path: Path) -> None:
    d = write_squad(tmp_path / "a")
    base = {"name": "x", "targets": ["xquad", "mlqa"], "languages": {"xquad": ["de"], "mlqa": ["de"]}}
    plan = plan_of({**base, "hparams": {"tasks": {"mlqa": {"epochs": 1}}}}, tmp_path / "s.yaml")
    assert [s.label for s in plan.by_kind("target")] == ["target squad for xquad from [] seed 1",
                                                         "target squad for mlqa from [] seed 1"]
    plan = plan_of({**base, "data": {"xquad": {"data_dir": str(d)}}}, tmp_path / "s.yaml")
    assert len(plan.by_kind("target")) == 2  # local SQuAD for one, the Hub's for the other: not provably the same
    (d / "test-context-de-question-de.json").write_text('{"version": "mlqa-de"}')
    plan = plan_of({**base, "data": {"xquad": {"data_dir": str(d)}, "mlqa": {"data_dir": str(d)}}},
                   tmp_path / "s.yaml")
    (target,) = plan.by_kind("target")
    assert target.runtime["data"] == {"squad": {"data_dir": str(d), "data_files": {}}}
