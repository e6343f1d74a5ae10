"""The stage kinds: one `Kind` record each, in plan order — the one list every other reads.

`xit.plan` hashes a kind's version into every stage key of that kind and orders stages by `KIND_NAMES`;
`xit.stage` looks up a kind's body (`BODIES`) and the files a commit of it must hold; `xit.cluster` counts
workflow nodes per kind; the chart's tests check that exactly the `GPU_KINDS` ask for a GPU.

This module imports neither torch nor the kinds' bodies: each body lives in its own module,
``xit.stages.<name>`` (its function ``run(stage, ctx, out)``), imported when a stage of that kind first runs,
so `xit validate` and `xit plan` stay free of the model libraries.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# What every committed stage holds unless its kind says otherwise.
METRICS_ONLY = ("metrics.json",)

Body = Callable[[Any, Any, Any], None]  # run(stage: xit.plan.Stage, ctx: xit.stage.Context, out: Path)


@dataclass(frozen=True)
class Kind:
    """A stage kind: what the plan, the stage protocol and the cluster need to know of it."""

    name: str
    # Hashed into every key of the kind: bump it when the body changes what it writes.
    version: int
    gpu: bool  # whether its cluster pods ask for a GPU (the chart's stage templates)
    required_files: tuple[str, ...] = METRICS_ONLY  # a commit without them is damaged, whatever its manifest says

    @property
    def module(self) -> str:
        return f"xit.stages.{self.name}"

    @property
    def run(self) -> Body:
        """The kind's body, ``run(stage, ctx, out)``: writes the stage's files into ``out`` (imported on use)."""
        return importlib.import_module(self.module).run


# evaluate 2: per-example statistics (examples.json); retrieval 2: Tatoeba headline en->xx, BUCC mines de-duplicated
# texts, 3: Tatoeba's per-query hits (examples.json); report 2: XTREME-R, 3: intervals and paired tests
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("intermediate", 1, gpu=True),
    Kind("target", 1, gpu=True),
    Kind("evaluate", 2, gpu=True),
    Kind("retrieval", 3, gpu=True),
    Kind("report", 3, gpu=False, required_files=("results.csv", "per_language.csv", "results.md")),
)}
KIND_NAMES = tuple(KINDS)  # plan order: every kind's inputs are of kinds before it
GPU_KINDS = tuple(k.name for k in KINDS.values() if k.gpu)


class Bodies(dict[str, Body]):
    """Kind name -> body, each kind's module imported on first use (a test may put another body in)."""

    def __missing__(self, name: str) -> Body:
        body = self[name] = KINDS[name].run
        return body
