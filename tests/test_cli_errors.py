"""The command line's answers to bad input: exit 2 and one line naming the culprit, nothing written, no
traceback; a failure during work exits 1 with one line. In-process (no subprocess, no torch import)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


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
