"""Test doubles and small checks shared by the tests (one copy each, imported where used)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the loader tests import this module without loading torch
    import torch


class FakeHub:
    """Stands in for datasets.load_dataset: records each call and serves rows per (path, config, split)."""

    def __init__(self, data: dict[tuple[str, str | None, str], list[dict[str, Any]]], scripted: set[str]):
        self.data, self.scripted, self.calls = data, scripted, []

    def __call__(self, path: str, name: str | None = None, split: str | None = None, **kw: Any) -> Any:
        self.calls.append((path, name, split, kw))
        if path in self.scripted and not kw:
            raise RuntimeError(f"Dataset scripts are no longer supported, but found {path.split('/')[1]}.py")
        return self.data[(path, name if not kw else kw["data_dir"], split)]


class FakeDownloads:
    """Stands in for datasets.DownloadManager: records each URL asked for and answers with the folder the
    archive would unpack to, `where(url)` (a path, or a function of the URL)."""

    def __init__(self, where: Any):
        self.where, self.urls = where, []

    def __call__(self, *args: Any, **kw: Any) -> FakeDownloads:  # datasets.DownloadManager(...) -> itself
        return self

    def download_and_extract(self, url: str) -> str:
        self.urls.append(url)
        return str(self.where(url) if callable(self.where) else self.where)


class Counts:
    """Telemetry stand-in for `xit.train.train`: (task, examples, tokens, loss) of every step."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, int, int, float]] = []

    def step(self, task: str, *, loss: Any, lr: float, examples: int, tokens: int) -> None:
        self.steps.append((task, examples, tokens, float(loss)))

    def eval_score(self, *args: Any) -> None:
        pass


def no_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with every dropout off (p = 0), so that two trainings draw nothing at random; returned for chaining."""
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def gold_score(task: Any, rows: list[dict[str, Any]]) -> dict[str, float]:
    """The scores of a model that predicts every row's gold answer (a loader's rows and its format agree when the
    task's metric comes out 100)."""
    from xit.formats import get_format

    fmt = get_format(task.format)
    return fmt.score(task, rows, [fmt.gold(task, r) for r in rows])


def one_line(text: str) -> str:
    """The only non-blank line of a command's output (`text`: its stderr, or stdout and stderr together); fails
    the test on several lines or a traceback."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]
