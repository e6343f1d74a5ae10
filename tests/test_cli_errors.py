"""The command line's answers to bad input: exit 2 and one line naming the culprit, nothing written, no
traceback; a failure during work exits 1 with one line. In-process (no subprocess, no torch import)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from fakes import one_line

from xit.cli import main


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """Run `xit ARGS` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["xit", *args])
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("args", "culprit"), [
    (["run"], "Missing argument 'spec'"),
    (["validate"], "Missing argument 'spec'"),
    (["run", "--bogus", "x.yaml"], "No such option: --bogus"),
    (["run", "a.yaml", "b.yaml"], "unexpected extra argument"),
    (["stage", "run"], "Missing option '--key'"),
    (["stage", "nosuch"], "No such command 'nosuch'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["run", "--progress=3", "x.yaml"], "--progress"),
    (["tasks", "--json", "extra"], "unexpected extra argument"),
])
def test_usage_errors_exit_2_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                         tmp_path: Path, args: list[str], culprit: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 2
    assert culprit in one_line(err)
    assert os.listdir(tmp_path) == []


# --- checks before any work: what `validate` and `run` refuse


def spec_file(tmp: Path, text: str, name: str = "spec.yaml") -> Path:
    p = tmp / name
    p.write_text(text)
    return p


GOOD = "name: ok\ntargets: [demo-tatoeba]\n"


@pytest.mark.parametrize(("text", "culprit"), [
    (GOOD + "seeds: [-1]\n", "field 'seeds.0'"),
    (GOOD + "seeds: [4294967296]\n", "field 'seeds.0'"),
    (GOOD + "model_seed: -3\n", "field 'model_seed'"),
    (GOOD + "hparams: {target: {epochs: 1.0e12}}\n", "field 'hparams.target.epochs'"),
    (GOOD + "hparams: {intermediate: {batch_size: 100000000}}\n", "field 'hparams.intermediate.batch_size'"),
    (GOOD + "retrieval: {layer: 5}\n", "field 'retrieval.layer': layer 5 is beyond the depth of xit-tiny"),
    (GOOD + "model: ''\n", "field 'model': empty"),
    (GOOD + "targets: [demo-para]\n", "key 'targets' given twice"),
    ("name: ok\nname: other\ntargets: [demo-tatoeba]\n", "key 'name' given twice (first on line 1)"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_validate_refuses_what_would_crash_mid_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                   tmp_path: Path, text: str, culprit: str) -> None:
    p = spec_file(tmp_path, text)
    for command in (["validate", str(p)], ["run", str(p), "--store", str(tmp_path / "st"), "--no-progress"]):
        monkeypatch.chdir(tmp_path)
        code, out, err = cli(monkeypatch, capsys, *command)
        assert code == 2, err
        line = one_line(err)
        assert culprit in line and str(p) in line
        assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]  # nothing written: no store, no reports/


def test_a_layer_within_a_local_models_depth_is_checked_too(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "xlm-roberta", "num_hidden_layers": 2}')
    p = spec_file(tmp_path, f"{GOOD}model: {model}\nretrieval: {{layer: 3}}\n")
    code, _, err = cli(monkeypatch, capsys, "validate", str(p))
    assert code == 2 and f"layer 3 is beyond the depth of {model} (2 layers: give 0..2)" in one_line(err)
    p.write_text(f"{GOOD}model: {model}\nretrieval: {{layer: 2}}\n")
    code, _, err = cli(monkeypatch, capsys, "validate", str(p))
    assert code == 0, err


def test_a_descriptor_whose_files_are_missing_fails_validate(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture, tmp_path: Path,
                                                             restore_registry: None) -> None:
    (tmp_path / "t.yaml").write_text("name: nofiles-task\nformat: classification\nlanguages: [en, de]\n"
                                     "labels: [a, b]\nfiles: 'data/{lang}/{split}.tsv'\n")
    p = spec_file(tmp_path, "name: ok\ntask_files: [t.yaml]\ntargets: [nofiles-task]\n")
    code, _, err = cli(monkeypatch, capsys, "validate", str(p))
    assert code == 2
    line = one_line(err)
    assert "field 'task_files'" in line and "missing local data file" in line and "data/de/test.tsv" in line


@pytest.mark.parametrize("kind", ["binary", "latin-1", "directory", "symlink loop", "/dev/zero", "NUL bytes"])
def test_unreadable_specs_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                       tmp_path: Path, kind: str) -> None:
    p = tmp_path / "spec.yaml"
    if kind == "binary":
        p.write_bytes(bytes(range(256)) * 4)
    elif kind == "latin-1":
        p.write_bytes("name: caf\xe9\ntargets: [demo-tatoeba]\n".encode("latin-1"))
    elif kind == "directory":
        p.mkdir()
    elif kind == "symlink loop":
        p.symlink_to(tmp_path / "loop.yaml")
        (tmp_path / "loop.yaml").symlink_to(p)
    elif kind == "/dev/zero":
        p = Path("/dev/zero")
    else:
        p.write_bytes(b"name: ok\x00\ntargets: [demo-tatoeba]\n")
    code, out, err = cli(monkeypatch, capsys, "validate", str(p))
    assert code == 2
    assert str(p) in one_line(err)


def test_out_and_store_are_checked_before_any_work(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                                   tmp_path: Path) -> None:
    p = spec_file(tmp_path, GOOD)
    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)
    for args, culprit in [
        (["--out", str(tmp_path / "afile")], "--out"),
        (["--out", str(tmp_path / "afile" / "sub")], "is not a directory"),
        (["--store", ""], "store ''"),
        (["--store", "   "], "store '   '"),
        (["--store", str(tmp_path / "afile")], "exists and is not a directory"),
        (["--store", str(tmp_path / "afile" / "deeper")], "is not a directory"),
        (["--store", "ftp://host/x"], "unsupported scheme"),
    ]:
        code, out, err = cli(monkeypatch, capsys, "run", str(p), "--no-progress", *args)
        assert code == 2, (args, err)
        assert culprit in one_line(err), args
        assert sorted(os.listdir(tmp_path)) == ["afile", "spec.yaml"], args


# --- smaller ones


def test_tasks_of_an_unknown_family(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    code, out, err = cli(monkeypatch, capsys, "tasks", "--family", "nosuch")
    assert code == 2 and out == ""
    line = one_line(err)
    assert "--family 'nosuch'" in line and "xtreme" in line and "demo" in line
    code, out, err = cli(monkeypatch, capsys, "tasks", "--family", "demo", "--json")
    assert code == 0 and '"demo-nli"' in out


@pytest.mark.parametrize("url", ["not a url", "localhost", "ftp://host:9091", "http://", "http://host:99999",
                                 "http://host:port"])
def test_a_pushgateway_must_be_a_url(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                     tmp_path: Path, url: str) -> None:
    monkeypatch.chdir(tmp_path)
    p = spec_file(tmp_path, f"{GOOD}pushgateway: '{url}'\n")
    code, _, err = cli(monkeypatch, capsys, "validate", str(p))
    assert code == 2 and "field 'pushgateway'" in one_line(err) and repr(url) in one_line(err)
    p.write_text(GOOD)
    monkeypatch.setenv("XIT_PUSHGATEWAY", url)
    code, _, err = cli(monkeypatch, capsys, "run", str(p), "--no-progress")
    assert code == 2 and f"XIT_PUSHGATEWAY={url!r}" in one_line(err)
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]


def test_stage_plan_checks_outputs_before_writing_to_the_store(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    p = spec_file(tmp_path, GOOD)
    (tmp_path / "outputs").write_text("a file, not a directory")
    code, _, err = cli(monkeypatch, capsys, "stage", "plan", str(p), "--store", str(tmp_path / "store"),
                       "--outputs", str(tmp_path / "outputs"))
    assert code == 2 and "--outputs" in one_line(err)
    assert not (tmp_path / "store").exists()
    code, out, err = cli(monkeypatch, capsys, "stage", "plan", str(p), "--store", str(tmp_path / "store"),
                         "--outputs", str(tmp_path / "outdir"))
    assert code == 0, err
    assert (tmp_path / "outdir" / "stages").is_file() and (tmp_path / "store" / "sweeps").is_dir()


def test_several_documents_are_a_spec_only_as_workflows(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """Two plain specs in one file are refused in one line (which one would run?); several Argo Workflows in
    one file (a pipeline) are read by validate and plan, one spec each (tests/test_pipelines.py)."""
    p = spec_file(tmp_path, "name: a\ntargets: [demo-para]\n---\nname: b\ntargets: [demo-para]\n")
    for command in ("validate", "plan", "run"):
        code, out, err = cli(monkeypatch, capsys, command, str(p))
        assert code == 2 and "2 YAML documents" in one_line(err)
    assert sorted(os.listdir(tmp_path)) == ["spec.yaml"]
