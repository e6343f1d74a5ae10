"""The ``intermediate`` kind: the encoder after intermediate training on a task list.

The empty list is the base encoder itself (the tiny model built, or a base model materialised, once); every
other intermediate stage starts from it, trains on its tasks (a `nested_subset` of each with
``intermediate_sizes``) and saves the encoder.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from xit.features import FeatureCache
from xit.model_ids import TINY_MODEL
from xit.plan import Stage
from xit.stage import Context
from xit.stages.common import checkpoints, source, task_of, train_data_id, write_json


def run(stage: Stage, ctx: Context, out: Path) -> None:
    from xit.modeling import load_tokenizer, materialise_base, new_model, save_model
    from xit.train import Job, train

    p = stage.params
    if not p["tasks"]:
        if p["model"] == TINY_MODEL:
            from xit.tiny import materialise_tiny

            materialise_tiny(out / "model" / "encoder", seed=p["model_seed"])
        else:
            materialise_base(p["model"], out / "model" / "encoder", seed=p["model_seed"])
        write_json(out / "metrics.json", {"kind": "intermediate", "tasks": [], "model": p["model"]})
        return
    base = ctx.input_dir(stage.inputs[0], "model/encoder")
    tasks = [task_of(stage, t["name"]) for t in p["tasks"]]
    jobs = [Job(task, t["hp"], nested_subset(task.load(task.train_language, "train", source(stage, task.name)),
                                             t.get("size"), p["seed"], task.name),
                task.load(task.train_language, "dev", source(stage, task.name)),
                data_id=train_data_id(task, source(stage, task.name), t.get("size"), p["seed"]))
            for task, t in zip(tasks, p["tasks"], strict=True)]
    model, tokenizer = new_model(base, tasks, seed=p["seed"]), load_tokenizer(base)
    if p.get("mlm_head"):  # an MLM task starts from the pretrained model's LM head (xit.formats.mlm)
        from xit.formats.mlm import load_pretrained_lm_head

        for t in tasks:
            if t.format == "mlm":
                load_pretrained_lm_head(model.heads[t.name], stage.runtime["model"])
    record = train(model, tokenizer, jobs, seed=p["seed"], sampler=p["sampler"], bar=ctx.bar,
                   checkpoints=checkpoints(ctx), telemetry=ctx.telemetry, features=FeatureCache(ctx.store))
    save_model(model, tokenizer, out / "model")
    write_json(out / "metrics.json", {"kind": "intermediate", "tasks": [t.name for t in tasks], **record})


def nested_subset(rows: list[Any], size: int | None, seed: int, task: str) -> list[Any]:
    """The first `size` rows of one seeded order of `rows` (all of them, in file order, for None).

    The order depends on the seed and the task only, so for one seed every smaller subset is a prefix of every
    larger one: the points of a size sweep differ in size alone.
    """
    if size is None:
        return rows
    order = list(range(len(rows)))
    random.Random(f"xit-subset|{task}|{seed}").shuffle(order)
    return [rows[i] for i in order[:size]]
