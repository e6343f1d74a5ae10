"""Test doubles shared by the loader tests."""

from __future__ import annotations

from typing import Any


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
