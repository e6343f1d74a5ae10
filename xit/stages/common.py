"""What the kinds' bodies share: a stage's data sources and tasks, the device, metrics files, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xit.plan import Stage
from xit.stage import Context, is_committed
from xit.tasks.registry import DataSource, Task, during_work, get_task

EXAMPLES = "examples.json"  # per-example statistics of an evaluation (what the report resamples: xit.stats)


def source(stage: Stage, task: str) -> DataSource | None:
    d = stage.runtime.get("data", {}).get(task)
    if d is None:
        return None
    return DataSource(Path(d["data_dir"]) if d.get("data_dir") else None,
                      {k: Path(v) for k, v in d.get("data_files", {}).items()})


def task_of(stage: Stage, name: str) -> Task:
    """The registered task with its label inventory (derived from this stage's data for CCG)."""
    return get_task(name).for_data(source(stage, name))


def train_data_id(task: Task, src: DataSource | None, size: int | None = None, seed: int | None = None) -> str:
    """The fingerprint of the task's training rows (a `nested_subset` of `size` rows drawn with `seed`, where
    given), the data part of its cached features' key. A stage takes it while it works: a data file gone since
    the spec was checked is a `WorkError` (exit 1), as when it loads the rows, not bad input."""
    with during_work():
        data = task.data_fingerprint([(task.train_language, "train")], src)
    return data if size is None else f"{data}|subset {size} seed {seed}"


def device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False))


def summary(task: Any, per_lang: dict[str, dict], ctx: Context) -> dict[str, Any]:
    """A scoring stage's metrics.json: per-language metrics and their mean (each pushed as a score)."""
    scores = [m[task.metric] for m in per_lang.values()]
    for lang, m in per_lang.items():
        ctx.telemetry.eval_score(task.name, lang, task.metric, m[task.metric])
    return {"task": task.name, "metric": task.metric, "languages": per_lang,
            "score": sum(scores) / len(scores) if scores else None}


def checkpoints(ctx: Context) -> Any:
    """Where a training stage checkpoints (None unless asked): resumed by the next attempt."""
    from xit.train import Checkpoints

    if not ctx.checkpoint_every:
        return None
    return Checkpoints(ctx.store, ctx.checkpoint_prefix, ctx.checkpoint_every,
                       committed=lambda: is_committed(ctx.store, ctx.key))
