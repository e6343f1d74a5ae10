"""Malformed input, generated: every case must exit 2 with one line naming the culprit, no traceback,
and nothing written (no store, no reports/, no outputs). In-process through the real CLI entry point;
no case gets as far as importing torch.

Three generators: a valid spec with one field broken at a time (wrong types, out-of-range values,
unknown names, unknown keys, duplicate keys), a valid task descriptor with one field broken (names that
would become paths included), and command lines that misuse the CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_cli_errors import cli

VALID_SPEC: dict[str, Any] = {"name": "fuzz", "intermediate": [[], ["demo-nli"]],
                              "targets": ["demo-para", "demo-tatoeba"],
                              "seeds": [1, 2]}

# (field, bad value, what the one line must contain): each value is wrong for its field
SPEC_FIELDS: list[tuple[str, Any, str]] = [
    ("name", "Upper", "'name'"), ("name", "has space", "'name'"), ("name", "", "'name'"), ("name", "x" * 60, "'name'"),
    ("name", 12, "'name'"), ("name", ["a"], "'name'"), ("name", None, "'name'"), ("name", "-dash", "'name'"),
    ("name", "../up", "'name'"), ("name", "a/b", "'name'"),
    ("model", "", "'model'"), ("model", 3, "'model'"), ("model", ["x"], "'model'"),
    ("model", "./no-such-dir", "'model'"), ("model_seed", -1, "'model_seed'"), ("model_seed", 2**32, "'model_seed'"),
    ("model_seed", "one", "'model_seed'"),
    ("intermediate", [], "'intermediate'"), ("intermediate", "demo-nli", "'intermediate"),
    ("intermediate", [["nosuch"]], "'nosuch'"), ("intermediate", [[], []], "'intermediate'"),
    ("intermediate", [["demo-nli", "demo-nli"]], "'intermediate'"),
    ("intermediate", [["demo-tatoeba"]], "demo-tatoeba"),
    ("intermediate", [[1]], "'intermediate"), ("intermediate", {"a": 1}, "'intermediate'"),
    ("targets", [], "'targets'"), ("targets", ["nosuch"], "'nosuch'"), ("targets", "demo-para", "'targets'"),
    ("targets", ["demo-para", "demo-para"], "'targets'"), ("targets", [None], "'targets"),
    ("targets", [{"a": 1}], "'targets"),
    ("seeds", [], "'seeds'"), ("seeds", [-1], "'seeds"), ("seeds", [2**32], "'seeds"), ("seeds", [1, 1], "'seeds'"),
    ("seeds", ["a"], "'seeds"), ("seeds", [1.5], "'seeds"), ("seeds", 3, "'seeds'"), ("seeds", [10**30], "'seeds"),
    ("languages", {"demo-para": ["xx"]}, "'xx'"), ("languages", {"nosuch": ["en"]}, "'nosuch'"),
    ("languages", {"demo-para": []}, "'languages.demo-para'"), ("languages", {"demo-nli": ["en"]}, "'demo-nli'"),
    ("languages", {"demo-para": ["en", "en"]}, "'languages.demo-para'"), ("languages", ["en"], "'languages'"),
    ("languages", {"demo-para": ["../x"]}, "'../x'"),
    ("hparams", {"target": {"lr": -1}}, "'hparams.target.lr'"),
    ("hparams", {"target": {"lr": 0}}, "'hparams.target.lr'"),
    ("hparams", {"target": {"epochs": 0}}, "'hparams.target.epochs'"),
    ("hparams", {"target": {"epochs": 1e12}}, "'hparams.target.epochs'"),
    ("hparams", {"target": {"epochs": "many"}}, "'hparams.target.epochs'"),
    ("hparams", {"intermediate": {"batch_size": 0}}, "'hparams.intermediate.batch_size'"),
    ("hparams", {"intermediate": {"batch_size": 10**9}}, "'hparams.intermediate.batch_size'"),
    ("hparams", {"intermediate": {"max_length": 4}}, "'hparams.intermediate.max_length'"),
    ("hparams", {"intermediate": {"max_length": 10**7}}, "'hparams.intermediate.max_length'"),
    ("hparams", {"intermediate": {"warmup_ratio": 2}}, "'hparams.intermediate.warmup_ratio'"),
    ("hparams", {"intermediate": {"precision": "fp8"}}, "'hparams.intermediate.precision'"),
    ("hparams", {"intermediate": {"lr_typo": 1}}, "'hparams.intermediate.lr_typo'"),
    ("hparams", {"nophase": {}}, "'hparams.nophase'"), ("hparams", {"tasks": {"nosuch": {}}}, "'nosuch'"),
    ("hparams", {"tasks": {"demo-para": {"epochs": -2}}}, "'hparams.tasks.demo-para.epochs'"),
    ("hparams", [1, 2], "'hparams'"),
    ("sampler", {"kind": "random"}, "'sampler.kind'"), ("sampler", {"temperature": 0}, "'sampler.temperature'"),
    ("sampler", {"extra": 1}, "'sampler.extra'"), ("sampler", "uniform", "'sampler'"),
    ("retrieval", {"layer": -1}, "'retrieval.layer'"), ("retrieval", {"layer": 99}, "'retrieval.layer'"),
    ("retrieval", {"k": 0}, "'retrieval.k'"), ("retrieval", {"pooling": "max"}, "'retrieval.pooling'"),
    ("retrieval", {"max_length": 1}, "'retrieval.max_length'"),
    ("retrieval", {"batch_size": 0}, "'retrieval.batch_size'"),
    ("data", {"nosuch": {"data_dir": "."}}, "'nosuch'"),
    ("data", {"demo-para": {"data_dir": "/no/such/dir"}}, "demo-para"),
    ("data", {"demo-para": {"colour": "red"}}, "'data.demo-para.colour'"), ("data", ["x"], "'data'"),
    ("checkpoint_every", -1, "'checkpoint_every'"), ("checkpoint_every", "often", "'checkpoint_every'"),
    ("task_files", ["no-such-file.yaml"], "'task_files.0'"), ("task_files", "x.yaml", "'task_files'"),
    ("pushgateway", "not a url", "'pushgateway'"), ("pushgateway", "ftp://h:1", "'pushgateway'"),
    ("pushgateway", 9091, "'pushgateway'"),
    ("colour", "red", "'colour'"), ("target", ["demo-para"], "'target'"), ("Name", "x", "'Name'"),
]

# Whole files that are not a spec at all: (text, culprit)
SPEC_TEXTS: list[tuple[str, str]] = [
    ("", "a spec is a YAML mapping"), ("- a\n- b\n", "a spec is a YAML mapping"), ("just a string\n", "mapping"),
    ("name: [unclosed\n", "invalid YAML"), ("name: a\n  bad: indent\n", "invalid YAML"),
    ("name: fuzz\nname: again\ntargets: [demo-para]\n", "key 'name' given twice"),
    ("name: fuzz\ntargets: [demo-para]\nhparams: {target: {lr: 1, lr: 2}}\n", "key 'lr' given twice"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
    ("a: &x [1]\nb: *x\nc: !!python/object:os.system {}\n", "invalid YAML"),
    ("\t\x01\x02binary", "invalid YAML"),
    ("name: fuzz\ntargets: [demo-para]\nseeds: [0x100000000]\n", "'seeds"),
]

VALID_DESCRIPTOR: dict[str, Any] = {"format": "classification", "languages": ["en", "de"], "labels": ["a", "b"],
                                    "files": "data/{lang}/{split}.tsv"}
# (field, bad value, culprit) for a task descriptor named in task_files
DESCRIPTOR_FIELDS: list[tuple[str, Any, str]] = [
    ("languages", ["en", "../../etc"], "'../../etc'"), ("languages", ["en", "de/x"], "'de/x'"),
    ("languages", ["en", ".."], "'..'"), ("languages", ["en", "a.b"], "'a.b'"), ("languages", [], "'languages'"),
    ("languages", ["en", "en"], "'languages'"), ("languages", "en", "'languages'"), ("languages", ["/abs"], "'/abs'"),
    ("train_language", "../en", "'train_language'"), ("format", "regression", "'format'"),
    ("format", "dual_encoder", "'format'"), ("metric", "f1", "'metric'"), ("metric", "../m", "'metric'"),
    ("labels", [], "'labels'"), ("labels", ["a", "a"], "'labels'"), ("num_choices", 4, "'num_choices'"),
    ("retrieval", "tatoeba", "'retrieval'"), ("roles", [], "'roles'"), ("roles", ["teacher"], "'roles"),
    ("eval_split", "validation", "'eval_split'"), ("file_format", "conll", "'file_format'"),
    ("columns", {"question": "q"}, "'columns'"), ("colour", "red", "'colour'"),
    ("files", {"xx.test": "a.tsv"}, "'files'"), ("files", 5, "'files"),
    ("name", "Bad Name", "'name'"), ("name", "a/b", "'name'"), ("name", "../x", "'name'"), ("name", "", "'name'"),
    ("files", "missing/{lang}/{split}.tsv", "missing local data file"),
]

CLI_CALLS: list[tuple[list[str], str]] = [
    (["run"], "Missing argument"), (["validate"], "Missing argument"), (["plan"], "Missing argument"),
    (["run", "--nope", "s.yaml"], "--nope"), (["validate", "a.yaml", "b.yaml"], "unexpected extra argument"),
    (["run", "s.yaml", "--progress=1"], "--progress"),
    (["stage", "run"], "--key"), (["stage", "frobnicate"], "frobnicate"),
    (["frobnicate"], "frobnicate"), (["tasks", "--family", "nosuch"], "'nosuch'"), (["tasks", "--family"], "--family"),
    (["report", "--sweep"], "--sweep"), (["status"], "Missing argument"), (["stage", "plan"], "Missing argument"),
    (["validate", "no-such-spec.yaml"], "no-such-spec.yaml"), (["run", "no-such-spec.yaml"], "no-such-spec.yaml"),
    (["run", "s.yaml", "--store", ""], "store ''"), (["run", "s.yaml", "--store", "gopher://x"], "gopher"),
    (["run", "s.yaml", "--store", "s3://"], "s3://"), (["run", "s.yaml", "--out", "s.yaml"], "--out"),
    (["stage", "run", "--key", "k", "--plan", "no-plan.json"], "no-plan.json"),
    (["stage", "run", "--key", "k"], "exactly one of --plan"),
    (["stage", "run", "--key", "k", "--plan", "s.yaml"], "s.yaml"),
    (["stage", "run", "--key", "k", "--plan", "bad.json"], "bad.json"),
    (["plan", "."], "is a directory"), (["validate", "/dev/zero"], "/dev/zero"),
    (["validate", "s.yaml", "--json"], "--json"), (["run", "s.yaml", "--interval", "1"], "--interval"),
    (["submit"], "Missing argument"), (["run", "s.yaml", "--outputs", "x"], "--outputs"),
]


def _spec_cases() -> list[Any]:
    cases = []
    for i, (fld, value, culprit) in enumerate(SPEC_FIELDS):
        cases.append(pytest.param(yaml.safe_dump({**VALID_SPEC, fld: value}), culprit, id=f"spec-{fld}-{i}"))
    for i, (text, culprit) in enumerate(SPEC_TEXTS):
        cases.append(pytest.param(text, culprit, id=f"spec-text-{i}"))
    return cases


def assert_bad_input(code: int, out: str, err: str, culprit: str) -> None:
    lines = [ln for ln in (out + err).splitlines() if ln.strip()]
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1, out + err
    assert culprit in lines[0], lines[0]


def tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_registry: None) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XIT_PUSHGATEWAY", raising=False)
    return tmp_path


def test_there_are_at_least_a_hundred_cases() -> None:
    assert len(SPEC_FIELDS) + len(SPEC_TEXTS) + len(DESCRIPTOR_FIELDS) + len(CLI_CALLS) >= 100


@pytest.mark.parametrize(("text", "culprit"), _spec_cases())
def test_malformed_spec(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                        text: str, culprit: str) -> None:
    (workdir / "spec.yaml").write_text(text)
    before = tree(workdir)
    for command in (["validate", "spec.yaml"], ["run", "spec.yaml", "--store", "st", "--no-progress"]):
        code, out, err = cli(monkeypatch, capsys, *command)
        assert_bad_input(code, out, err, culprit)
        assert tree(workdir) == before


@pytest.mark.parametrize(("fld", "value", "culprit"), DESCRIPTOR_FIELDS,
                         ids=[f"descriptor-{f}-{i}" for i, (f, _, _) in enumerate(DESCRIPTOR_FIELDS)])
def test_malformed_descriptor(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                              fld: str, value: Any, culprit: str) -> None:
    name = f"fz-{abs(hash((fld, json.dumps(value)))) % 10**8}"
    for lang in ("en", "de"):
        for split in ("train", "dev", "test"):
            (workdir / "data" / lang).mkdir(parents=True, exist_ok=True)
            (workdir / "data" / lang / f"{split}.tsv").write_text("text_a\tlabel\nhello\ta\n")
    (workdir / "task.yaml").write_text(yaml.safe_dump({"name": name, **VALID_DESCRIPTOR, fld: value}))
    target = value if fld == "name" and isinstance(value, str) and value else name
    (workdir / "spec.yaml").write_text(yaml.safe_dump({"name": "fuzz", "task_files": ["task.yaml"],
                                                       "targets": [target]}))
    before = tree(workdir)
    for command in (["validate", "spec.yaml"], ["run", "spec.yaml", "--store", "st", "--no-progress"]):
        code, out, err = cli(monkeypatch, capsys, *command)
        assert_bad_input(code, out, err, culprit)
        assert tree(workdir) == before


@pytest.mark.parametrize(("args", "culprit"), CLI_CALLS, ids=[" ".join(a) or "none" for a, _ in CLI_CALLS])
def test_malformed_command_line(workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                args: list[str], culprit: str) -> None:
    (workdir / "s.yaml").write_text(yaml.safe_dump(VALID_SPEC))
    (workdir / "bad.json").write_text('{"not": "a plan"}')
    before = tree(workdir)
    code, out, err = cli(monkeypatch, capsys, *args)
    assert_bad_input(code, out, err, culprit)
    assert tree(workdir) == before
    assert not os.path.exists(workdir / "xit-runs")
