"""Tests for spec validation: `xit.spec.load_spec` and the CLI's one-line errors.

Every bad spec must fail before anything starts: `load_spec` raises `XitError` with one line
naming the file and the field, task, language or path at fault; `xit validate`, `xit plan`
and `xit run` exit with code 2, print exactly that line on stderr, and write nothing (no
store, no report directory, nothing in the working directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from xit.errors import XitError
from xit.spec import load_spec
from xit.tasks.registry import all_tasks

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo.yaml"
# The error lists every registered task, sorted.
KNOWN_TASKS = "known tasks: " + ", ".join(sorted(t.name for t in all_tasks()))


@dataclass(frozen=True)
class Case:
    id: str
    text: str  # the spec; "{dir}" stands for the case's (resolved) directory
    expect: tuple[str, ...]  # substrings of the one-line message; "{dir}" as above
    files: tuple[str, ...] = ()  # files (relative to the case directory) to create first


CASES = [
    Case("invalid-yaml", "name: x\ntargets: [demo-qa]\nseeds: a: b\n",
         ("invalid YAML", "(line 3, column 9)", "mapping values are not allowed")),
    Case("not-a-mapping", "- name: x\n- targets: [demo-qa]\n", ("a YAML mapping", "'name'", "'targets'")),
    Case("scalar", "just a sentence\n", ("a YAML mapping",)),
    Case("empty-file", "", ("a YAML mapping",)),
    Case("unknown-key", "name: x\ntargets: [demo-qa]\nseed: [1]\n", ("field 'seed'", "unknown field")),
    Case("typo-target", "name: x\ntarget: [demo-qa]\n", ("'target'", "unknown field")),
    Case("unknown-target", "name: x\ntargets: [demo-para, demo-qaa]\n",
         ("field 'targets'", "unknown task 'demo-qaa'", "(did you mean 'demo-qa'?)", KNOWN_TASKS, "xquad")),
    Case("unknown-intermediate", "name: x\nintermediate: [[], [demo-nli, demo-nlii]]\ntargets: [demo-qa]\n",
         ("field 'intermediate.1'", "unknown task 'demo-nlii'", "(did you mean 'demo-nli'?)", KNOWN_TASKS)),
    Case("unknown-task-far-from-any", "name: x\ntargets: [zzzzzzzz]\n",
         ("field 'targets'", "unknown task 'zzzzzzzz'; known tasks:")),
    Case("intermediate-only-target", "name: x\ntargets: [demo-qa, mnli]\n",
         ("field 'targets'", "'mnli'", "intermediate-only")),
    Case("target-only-intermediate", "name: x\nintermediate: [[], [tatoeba]]\ntargets: [demo-qa]\n",
         ("field 'intermediate.1'", "'tatoeba'", "intermediate training")),
    Case("unknown-language", "name: x\ntargets: [demo-tag]\nlanguages: {demo-tag: [agg, xx]}\n",
         ("field 'languages.demo-tag'", "task 'demo-tag' has no language 'xx'", "it has: en, agg, vso, fus")),
    Case("english-retrieval", "name: x\ntargets: [demo-tatoeba]\nlanguages: {demo-tatoeba: [en]}\n",
         ("field 'languages.demo-tatoeba'", "no language 'en'", "it has: agg, vso, fus")),
    Case("languages-of-non-target", "name: x\ntargets: [demo-tag]\nlanguages: {demo-qa: [agg]}\n",
         ("field 'languages.demo-qa'", "'demo-qa' is not one of the targets")),
    Case("empty-language-list", "name: x\ntargets: [demo-tag]\nlanguages: {demo-tag: []}\n",
         ("field 'languages.demo-tag'",),
         ),
    Case("duplicate-language", "name: x\ntargets: [demo-tag]\nlanguages: {demo-tag: [agg, agg]}\n",
         ("field 'languages.demo-tag'",),
         ),
    Case("missing-data-dir",
         "name: x\ntargets: [xquad]\nlanguages: {xquad: [de]}\ndata: {xquad: {data_dir: {dir}/nope}}\n",
         ("field 'data.xquad'", "missing local data file {dir}/nope/xquad.")),
    Case("missing-data-file", "name: x\ntargets: [xquad]\nlanguages: {xquad: [de]}\ndata: {xquad: {data_dir: squad}}\n",
         ("field 'data.xquad'", "missing local data file {dir}/squad/xquad.de.json"),
         files=("squad/train-v1.1.json", "squad/dev-v1.1.json", "squad/xquad.es.json")),
    Case("data-for-unknown-task", "name: x\ntargets: [demo-qa]\ndata: {xqaud: {data_dir: .}}\n",
         ("field 'data'", "unknown task 'xqaud'", "(did you mean 'xquad'?)")),
    Case("local-data-for-generated-task", "name: x\ntargets: [demo-qa]\ndata: {demo-qa: {data_dir: .}}\n",
         ("field 'data.demo-qa'", "'demo-qa'", "local files")),
    Case("missing-model", "name: x\nmodel: ./no-such-model\ntargets: [demo-qa]\n",
         ("field 'model'", "{dir}/no-such-model: no such directory")),
    Case("model-without-config", "name: x\nmodel: ./model\ntargets: [demo-qa]\n",
         ("field 'model'", "{dir}/model: no config.json"), files=("model/model.safetensors",)),
    Case("negative-lr", "name: x\ntargets: [demo-qa]\nhparams: {target: {lr: -0.001}}\n",
         ("field 'hparams.target.lr'", "greater than 0")),
    Case("zero-epochs-for-task", "name: x\ntargets: [demo-qa]\nhparams: {tasks: {demo-qa: {epochs: 0}}}\n",
         ("field 'hparams.tasks.demo-qa.epochs'", "greater than 0")),
    Case("unknown-hparam", "name: x\ntargets: [demo-qa]\nhparams: {intermediate: {learning_rate: 0.001}}\n",
         ("field 'hparams.intermediate.learning_rate'", "unknown field")),
    Case("hparams-for-unknown-task", "name: x\ntargets: [demo-qa]\nhparams: {tasks: {demo-qaa: {lr: 0.001}}}\n",
         ("field 'hparams.tasks'", "unknown task 'demo-qaa'", "(did you mean 'demo-qa'?)")),
    Case("duplicate-intermediate", "name: x\nintermediate: [[], [demo-nli], [demo-nli]]\ntargets: [demo-qa]\n",
         ("field 'intermediate'", "configuration [demo-nli] is listed twice")),
    Case("task-twice-in-configuration", "name: x\nintermediate: [[demo-nli, demo-mc, demo-nli]]\ntargets: [demo-qa]\n",
         ("field 'intermediate'", "configuration [demo-nli, demo-mc, demo-nli] names a task twice")),
    Case("no-intermediate-configuration", "name: x\nintermediate: []\ntargets: [demo-qa]\n",
         ("field 'intermediate'",),
         ),
    Case("duplicate-target", "name: x\ntargets: [demo-qa, demo-tag, demo-qa]\n", ("field 'targets'", "twice")),
    Case("empty-targets", "name: x\ntargets: []\n", ("field 'targets'", "at least 1 item")),
    Case("missing-targets", "name: x\n", ("field 'targets'", "required")),
    Case("invalid-name", "name: My_Sweep\ntargets: [demo-qa]\n", ("field 'name'", "pattern")),
    Case("all-but-one-one-task", "name: x\nintermediate: [[], {all_but_one: [demo-nli]}]\ntargets: [demo-qa]\n",
         ("field 'intermediate.1.all_but_one'", "at least two tasks", "got 1")),
    Case("all-but-one-typo", "name: x\nintermediate: [{all_but_on: [demo-nli, demo-mc]}]\ntargets: [demo-qa]\n",
         ("field 'intermediate.0'", "unknown field 'all_but_on'", "{all_but_one: [task, ...]}")),
    Case("all-but-one-not-a-list", "name: x\nintermediate: [{all_but_one: demo-nli}]\ntargets: [demo-qa]\n",
         ("field 'intermediate.0.all_but_one'", "a list of task names")),
    Case("all-but-one-twice", "name: x\nintermediate: [{all_but_one: [demo-nli, demo-mc, demo-nli]}]\n"
         "targets: [demo-qa]\n", ("field 'intermediate.0.all_but_one'", "names a task twice")),
    Case("all-but-one-unknown-task", "name: x\nintermediate: [[], {all_but_one: [demo-nli, demo-nlii]}]\n"
         "targets: [demo-qa]\n", ("field 'intermediate.", "unknown task 'demo-nlii'", "(did you mean 'demo-nli'?)")),
    Case("complementarity-incomplete", "name: x\nintermediate: [[], [demo-nli, demo-mc], [demo-nli]]\n"
         "complementarity: [[demo-nli, demo-mc]]\ntargets: [demo-qa]\n",
         ("field 'complementarity.0'", "[demo-nli, demo-mc]", "needs the configuration [demo-mc]")),
    Case("intermediate-language-absent", "name: x\nintermediate: [[], [xnli@fi]]\ntargets: [demo-qa]\n",
         ("field 'intermediate.1'", "task 'xnli' has no training data in language 'fi'", "it has: en, ar, bg")),
    Case("intermediate-language-empty", "name: x\nintermediate: [[], [pawsx@]]\ntargets: [demo-qa]\n",
         ("field 'intermediate.1'", "'pawsx@'", "give a language after '@'")),
    Case("intermediate-language-of-unknown-task", "name: x\nintermediate: [[xnlx@de]]\ntargets: [demo-qa]\n",
         ("field 'intermediate.0'", "unknown task 'xnlx'", "(did you mean 'xnli'?)")),
    Case("intermediate-language-of-target-only", "name: x\nintermediate: [[tatoeba@fi]]\ntargets: [demo-qa]\n",
         ("field 'intermediate.0'", "task 'tatoeba' has no training data in language 'fi'",
          "not an intermediate task")),
    Case("intermediate-language-twice", "name: x\nintermediate: [[demo-nli, demo-nli@en]]\ntargets: [demo-qa]\n",
         ("field 'intermediate.0'", "names a task twice")),
    Case("size-zero", "name: x\nintermediate: [[], [demo-nli]]\nintermediate_sizes: [0, full]\ntargets: [demo-qa]\n",
         ("field 'intermediate_sizes'", "positive number of training examples or 'full', not 0")),
    Case("size-word", "name: x\nintermediate_sizes: [1000, half]\ntargets: [demo-qa]\n",
         ("field 'intermediate_sizes'", "not 'half'")),
    Case("size-twice", "name: x\nintermediate_sizes: [1000, full, 1000]\ntargets: [demo-qa]\n",
         ("field 'intermediate_sizes'", "lists an entry twice")),
    Case("size-empty", "name: x\nintermediate_sizes: []\ntargets: [demo-qa]\n",
         ("field 'intermediate_sizes'", "at least 1")),
    Case("slice-unknown", "name: x\ntargets: [demo-qa]\nslices: {demo-qa: [english, ood]}\n",
         ("field 'slices.demo-qa'", "task 'demo-qa' has no slice 'ood'", "it has: english, rewritten")),
    Case("slice-of-non-target", "name: x\ntargets: [demo-qa]\nslices: {demo-nli: [english]}\n",
         ("field 'slices.demo-nli'", "not one of the targets")),
    Case("slice-languages-not-evaluated", "name: x\ntargets: [demo-qa]\nlanguages: {demo-qa: [agg]}\n"
         "slices: {demo-qa: [english]}\n", ("field 'slices.demo-qa'", "slice 'english'", "none of which")),
    Case("slice-genre-from-hub", "name: x\ntargets: [xnli]\nslices: {xnli: [new-genres]}\n",
         ("field 'slices.xnli'", "slice 'new-genres' needs the genre", "data: {xnli: ...}")),
    Case("native-task-as-target", "name: x\ntargets: [demo-qa, husst]\n",
         ("field 'targets'", "'husst'", "intermediate-only")),
]
COMMANDS = ("validate", "plan", "run")


def _sub(text: str, d: Path) -> str:
    return text.replace("{dir}", str(d))


def make_case(root: Path, case: Case) -> Path:
    """Write the case's spec (and files) into root/<id>/; return the spec path."""
    d = (root / case.id).resolve()
    d.mkdir(parents=True)
    for f in case.files:
        (d / f).parent.mkdir(parents=True, exist_ok=True)
        (d / f).write_text("{}\n")
    spec = d / f"{case.id}.yaml"
    spec.write_text(_sub(case.text, d))
    return spec


def _params(cases: list[Case], cli: bool) -> list:
    if cli:
        return [pytest.param(c, cmd, id=f"{cmd}-{c.id}") for c in cases for cmd in COMMANDS]
    return [pytest.param(c, id=c.id) for c in cases]


def case(case_id: str) -> Case:
    return next(c for c in CASES if c.id == case_id)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- load_spec


@pytest.mark.parametrize("case", _params(CASES, cli=False))
def test_load_spec_rejects(tmp_path: Path, case: Case) -> None:
    spec = make_case(tmp_path, case)
    with pytest.raises(XitError) as info:
        load_spec(spec)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{spec}: "), msg
    for part in case.expect:
        assert _sub(part, spec.parent) in msg


def test_load_spec_missing_file(tmp_path: Path) -> None:
    with pytest.raises(XitError, match="no such spec file") as info:
        load_spec(tmp_path / "nowhere.yaml")
    assert str(tmp_path / "nowhere.yaml") in str(info.value)


def test_unknown_task_lists_every_known_task(tmp_path: Path) -> None:
    from xit.tasks.registry import all_tasks

    spec = make_case(tmp_path, case("unknown-target"))
    with pytest.raises(XitError) as info:
        load_spec(spec)
    listed = str(info.value).split("known tasks: ", 1)[1].split(", ")
    assert listed == sorted(t.name for t in all_tasks())


# --------------------------------------------------------------------------- valid specs


def test_demo_spec_is_valid() -> None:
    spec = load_spec(DEMO)
    assert spec.name == "demo"
    assert spec.intermediate == [[], ["demo-nli"], ["demo-nli", "demo-mc"]]
    assert spec.targets == ["demo-para", "demo-qa", "demo-tag", "demo-tatoeba", "demo-bucc"]
    assert spec.seeds == [1, 2, 3]  # three seeds: intervals and paired tests in the report
    assert spec.hparams.intermediate.epochs == 3 and spec.hparams.target.epochs == 3


def test_defaults_of_a_minimal_spec(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("name: mini-1\ntargets: [demo-tag]\n")
    spec = load_spec(tmp_path / "s.yaml")
    assert spec.intermediate == [[]] and spec.seeds == [1] and spec.model == "xit-tiny"
    assert spec.languages == {} and spec.data == {}


def write_tatoeba(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "tatoeba.deu-eng.deu").write_text("Hallo Welt\nGuten Morgen\n")
    (d / "tatoeba.deu-eng.eng").write_text("Hello world\nGood morning\n")


TATOEBA_SPEC = "name: tat\ntargets: [tatoeba]\nlanguages: {tatoeba: [de]}\ndata: {tatoeba: {data_dir: %s}}\n"


def test_relative_data_dir_resolves_against_the_spec_directory(tmp_path: Path, monkeypatch) -> None:
    tmp_path = tmp_path.resolve()
    write_tatoeba(tmp_path / "data" / "tat")
    (tmp_path / "specs").mkdir()
    spec_file = tmp_path / "specs" / "sweep.yaml"
    spec_file.write_text(TATOEBA_SPEC % "../data/tat")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory plays no part
    spec = load_spec(spec_file)
    assert spec.data["tatoeba"].data_dir == tmp_path / "data" / "tat"
    # The same spec given by a relative path from another directory.
    monkeypatch.chdir(tmp_path / "data")
    assert load_spec(Path("../specs/sweep.yaml")).data["tatoeba"].data_dir == tmp_path / "data" / "tat"


def test_relative_data_dir_is_not_resolved_against_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    tmp_path = tmp_path.resolve()
    write_tatoeba(tmp_path / "cwd" / "tat")  # only present relative to the working directory
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "sweep.yaml").write_text(TATOEBA_SPEC % "tat")
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(XitError) as info:
        load_spec(tmp_path / "specs" / "sweep.yaml")
    assert f"missing local data file {tmp_path / 'specs' / 'tat' / 'tatoeba.deu-eng.deu'}" in str(info.value)


def test_relative_data_files_and_model_resolve_against_the_spec_directory(tmp_path: Path, monkeypatch) -> None:
    tmp_path = tmp_path.resolve()
    write_tatoeba(tmp_path / "specs" / "files")
    (tmp_path / "specs" / "my-model").mkdir()
    (tmp_path / "specs" / "my-model" / "config.json").write_text("{}")
    spec_file = tmp_path / "specs" / "sweep.yaml"
    spec_file.write_text("name: tat\nmodel: ./my-model\ntargets: [tatoeba]\nlanguages: {tatoeba: [de]}\n"
                         "data: {tatoeba: {data_files: {de.test: files/tatoeba.deu-eng.deu}}}\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(spec_file)
    assert spec.data["tatoeba"].data_files == {"de.test": tmp_path / "specs" / "files" / "tatoeba.deu-eng.deu"}
    assert spec.model == str(tmp_path / "specs" / "my-model")


def test_hub_model_id_is_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("name: x\nmodel: xlm-roberta-large\ntargets: [demo-qa]\n")
    assert load_spec(tmp_path / "s.yaml").model == "xlm-roberta-large"


# --------------------------------------------------------------------------- the CLI
#
# Each case goes through `xit.cli.main` in-process (the real entry point: argv, error handling,
# exit code, stderr), and a few through separate `python -m xit.cli` processes: a process costs
# seconds (xit.spec imports torch).


def cli_args(cmd: str, spec: Path, d: Path) -> list[str]:
    if cmd == "run":
        return [cmd, str(spec), "--store", str(d / "store"), "--out", str(d / "out"), "--no-progress"]
    return [cmd, str(spec)]


def check_rejected(case: Case, spec: Path, d: Path, rc: int | str | None, stdout: str, stderr: str) -> None:
    """Exit 2, nothing on stdout, one stderr line that is load_spec's message; nothing written."""
    assert rc == 2, stderr
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith(f"error: {spec}: "), line
    for part in case.expect:
        assert _sub(part, spec.parent) in line
    try:
        load_spec(spec)
    except XitError as e:
        assert line == f"error: {e}"  # the message itself, not re-rendered
    assert not (d / "store").exists()
    assert not (d / "out").exists()
    assert list((d / "cwd").iterdir()) == []  # no ./xit-runs, no ./reports


def run_main(args: list[str], monkeypatch, capsys) -> tuple[int | str | None, str, str]:
    from rich.console import Console

    from xit import cli, ui

    # Plain consoles, whatever the terminal pytest runs in (cli prints through ui.console and ui.out).
    monkeypatch.setattr(ui, "console", Console(stderr=True, color_system=None, force_terminal=False, width=80))
    monkeypatch.setattr(ui, "out", Console(color_system=None, force_terminal=False, width=200))
    monkeypatch.setattr(sys, "argv", ["xit", *args])
    for var, value in (("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        monkeypatch.setenv(var, value)  # main() sets them for the process; keep them scoped to the test
    capsys.readouterr()
    try:
        cli.main()
        rc: int | str | None = 0
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(("case", "cmd"), _params(CASES, cli=True))
def test_cli_rejects_with_one_line_and_writes_nothing(tmp_path: Path, monkeypatch, capsys, case: Case,
                                                      cmd: str) -> None:
    spec = make_case(tmp_path, case)
    d = spec.parent
    (d / "cwd").mkdir()
    monkeypatch.chdir(d / "cwd")
    rc, out, err = run_main(cli_args(cmd, spec, d), monkeypatch, capsys)
    check_rejected(case, spec, d, rc, out, err)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    env.update(NO_COLOR="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", COLUMNS="80")
    return env


def xit(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xit.cli", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)


SUBPROCESS = [("invalid-yaml", "plan"), ("missing-data-file", "run"), ("duplicate-intermediate", "validate"),
              ("all-but-one-one-task", "plan")]


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory) -> dict[tuple[str, str], tuple[Path, subprocess.CompletedProcess]]:
    """The SUBPROCESS runs, all started at once."""
    root = tmp_path_factory.mktemp("cli-processes")
    jobs = []
    for case_id, cmd in SUBPROCESS:
        spec = make_case(root / cmd, case(case_id))
        (spec.parent / "cwd").mkdir()
        jobs.append(((case_id, cmd), spec, cli_args(cmd, spec, spec.parent)))
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        procs = list(pool.map(lambda j: xit(j[2], j[1].parent / "cwd"), jobs))
    return {j[0]: (j[1], p) for j, p in zip(jobs, procs, strict=True)}


@pytest.mark.parametrize(("case_id", "cmd"), [pytest.param(i, c, id=f"{c}-{i}") for i, c in SUBPROCESS])
def test_cli_process_rejects_with_one_line_and_writes_nothing(subprocess_results, case_id: str, cmd: str) -> None:
    spec, proc = subprocess_results[(case_id, cmd)]
    check_rejected(case(case_id), spec, spec.parent, proc.returncode, proc.stdout, proc.stderr)


def test_cli_missing_spec_file(tmp_path: Path) -> None:
    proc = xit(["run", str(tmp_path / "nowhere.yaml"), "--store", str(tmp_path / "store"), "--no-progress"],
               tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {tmp_path / 'nowhere.yaml'}: no such spec file"]
    assert list(tmp_path.iterdir()) == []


def test_cli_validate_accepts_the_demo_spec(tmp_path: Path) -> None:
    proc = xit(["validate", str(DEMO)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith(f"ok: {DEMO}: sweep 'demo'")
    assert list(tmp_path.iterdir()) == []


def test_cli_validate_resolves_data_against_the_spec_not_the_cwd(tmp_path: Path, monkeypatch, capsys) -> None:
    tmp_path = tmp_path.resolve()
    write_tatoeba(tmp_path / "specs" / "tat")
    (tmp_path / "specs" / "sweep.yaml").write_text(TATOEBA_SPEC % "tat")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    rc, out, err = run_main(["validate", "../specs/sweep.yaml"], monkeypatch, capsys)
    assert (rc, err) == (0, "")
    assert out.startswith("ok: ../specs/sweep.yaml: sweep 'tat'")
    assert list((tmp_path / "cwd").iterdir()) == []


def test_all_but_one_expands_to_mixture_leave_one_out_and_singles(tmp_path: Path) -> None:
    from xit.plan import build_plan

    f = tmp_path / "s.yaml"
    f.write_text("name: x\nintermediate: [[], [demo-mc], {all_but_one: [demo-nli, demo-qa, demo-mc]}]\n"
                 "targets: [demo-para]\n")
    spec = load_spec(f)
    # In place of the entry: the mixture, the three leave-one-out mixtures, the singles not listed already.
    assert spec.intermediate == [[], ["demo-mc"], ["demo-nli", "demo-qa", "demo-mc"], ["demo-qa", "demo-mc"],
                                 ["demo-nli", "demo-mc"], ["demo-nli", "demo-qa"], ["demo-nli"], ["demo-qa"]]
    assert spec.complementarity == [["demo-nli", "demo-qa", "demo-mc"]]
    plan = build_plan(spec)
    assert plan.by_kind("report")[0].params["complementarity"] == [["demo-nli", "demo-qa", "demo-mc"]]
    assert len(plan.by_kind("intermediate")) == 8  # the base encoder and seven trained configurations
    # The plan's spec reads back as the same spec (pods and `xit report` rebuild from it).
    again = tmp_path / "again.yaml"
    again.write_text(__import__("yaml").safe_dump(plan.spec))
    assert build_plan(load_spec(again)).sweep_id == plan.sweep_id


def test_null_score_threshold_is_a_setting_a_spec_can_give(tmp_path: Path) -> None:
    # The span-QA decoder reads it (SQuAD v2.0): a spec sets it per task; it is part of the keys of the stages it
    # decodes in (the target's checkpoint choice on dev and the evaluation), and of no stage where unset.
    import yaml

    from xit.plan import build_plan
    from xit.spec import load_spec

    body = {"name": "t", "model": "xit-tiny", "intermediate": [["squad2"]], "targets": ["demo-qa"]}
    keys = []
    for extra in ({}, {"hparams": {"tasks": {"demo-qa": {"null_score_diff_threshold": 1.5}}}}):
        spec = tmp_path / "spec.yaml"
        spec.write_text(yaml.safe_dump({**body, **extra}))
        plan = build_plan(load_spec(spec))
        keys.append(({s.key for s in plan.by_kind("target")}, {s.key for s in plan.by_kind("evaluate")},
                     [s.params["hp"].get("null_score_diff_threshold") for s in plan.by_kind("evaluate")]))
    assert keys[0][0] != keys[1][0] and keys[0][1] != keys[1][1]
    assert keys[0][2] == [None] and keys[1][2] == [1.5]


def test_span_qa_windows_without_room_for_context_are_refused_with_the_spec(tmp_path: Path) -> None:
    import yaml

    from xit.errors import XitError
    from xit.spec import load_spec

    spec = tmp_path / "spec.yaml"
    body = {"name": "t", "model": "xit-tiny", "intermediate": [["squad"]], "targets": ["demo-qa"],
            "hparams": {"tasks": {"demo-qa": {"max_length": 64, "doc_stride": 58}}}}
    spec.write_text(yaml.safe_dump(body))
    load_spec(spec)  # 64 - 58 - 4 special tokens: one question token and one more context token than the overlap
    body["hparams"]["tasks"]["demo-qa"]["doc_stride"] = 59
    spec.write_text(yaml.safe_dump(body))
    with pytest.raises(XitError, match=r"field 'hparams': task 'demo-qa' \(target\): max_length 64 leaves no room"):
        load_spec(spec)
    body["hparams"] = {"intermediate": {"max_length": 128}}  # squad's registry stride is 128
    spec.write_text(yaml.safe_dump(body))
    with pytest.raises(XitError, match=r"task 'squad' \(intermediate\): max_length 128"):
        load_spec(spec)
