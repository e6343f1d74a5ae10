"""Terminal output: one rich console, progress bars for every long loop."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Log lines go to stderr; off a terminal (CI, pods, pipes) never wrap them mid-line.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
# Results tables go to stdout; when it is not a terminal (logs, pipes) do not squeeze them into 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)


class Bars:
    """A shared rich Progress; `bar(desc, total)` returns an advance(n) callable."""

    def __init__(self, progress: Progress | None):
        self.progress = progress

    def __call__(self, description: str, total: int, keep: bool = False) -> Callable[[int], None]:
        """A bar; unless `keep`, it disappears once complete (inner loops of a stage)."""
        if self.progress is None:
            return lambda n: None
        p = self.progress
        tid = p.add_task(description, total=total)

        def advance(n: int) -> None:
            p.advance(tid, n)
            if not keep and next(t for t in p.tasks if t.id == tid).finished:
                p.remove_task(tid)

        return advance


@contextmanager
def progress(enabled: bool = True) -> Iterator[Bars]:
    if not enabled:
        yield Bars(None)
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    ) as p:
        yield Bars(p)
