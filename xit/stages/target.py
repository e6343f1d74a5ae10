"""The ``target`` kind: fine-tuning on a target task's English data from an intermediate encoder (fresh head),
the checkpoint selected on English dev; a dual encoder for the retrieval tasks XTREME-R fine-tunes (LAReQA,
Mewsli-X)."""

from __future__ import annotations

from pathlib import Path

from xit.features import FeatureCache
from xit.plan import Stage
from xit.stage import Context
from xit.stages.common import checkpoints, source, task_of, train_data_id, write_json


def run(stage: Stage, ctx: Context, out: Path) -> None:
    from xit.modeling import load_tokenizer, new_model, save_model
    from xit.train import Job, train

    p = stage.params
    task = task_of(stage, p["task"])
    if p.get("dual_encoder"):
        task = task.dual_encoder()
    enc = ctx.input_dir(stage.inputs[0], "model/encoder")
    src = source(stage, task.name)
    job = Job(task, p["hp"], task.load(task.train_language, "train", src), task.load(task.train_language, "dev", src),
              data_id=train_data_id(task, src))
    model, tokenizer = new_model(enc, [task], seed=p["seed"]), load_tokenizer(enc)
    record = train(model, tokenizer, [job], seed=p["seed"], sampler={}, bar=ctx.bar, checkpoints=checkpoints(ctx),
                   telemetry=ctx.telemetry, features=FeatureCache(ctx.store))
    save_model(model, tokenizer, out / "model")
    write_json(out / "metrics.json", {"kind": "target", "task": task.name, **record})
