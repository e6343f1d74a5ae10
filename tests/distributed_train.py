"""Trainings the data-parallel tests compare: run in one process (imported by the test) and under
`torch.distributed.run` (this file as the script, gloo on CPU), rank 0 writing what it got to OUT.

usage: python -m torch.distributed.run --nproc_per_node 2 tests/distributed_train.py MODEL_DIR OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from fakes import Counts, no_dropout

from xit.modeling import load_tokenizer, new_model
from xit.spec import GLOBAL_HPARAMS
from xit.store import LocalStore
from xit.tasks.registry import Task, get_task
from xit.train import Checkpoints, Job, NotMainRank, train

# 21 examples in batches of 5: the last batch of each epoch has 1 example, so with 2 ranks one share is empty.
N_TRAIN, BATCH = 21, 5


def jobs() -> list[Job]:
    out = []
    for name in ("demo-nli", "demo-tag"):  # an example-level and a token-level loss; two heads
        t = get_task(name)
        hp = {**GLOBAL_HPARAMS, **t.defaults, "epochs": 2.0, "batch_size": BATCH, "lr": 5e-4,
              "max_dev_examples": 12, "evals_per_epoch": 1}
        out.append(Job(t, hp, t.load("en", "train")[:N_TRAIN], t.load("en", "dev")))
    # A loss over the whole batch (in-batch negatives): each rank encodes its share and gathers the others'.
    pairs = Task(name="pairs", format="dual_encoder", languages=("en",), metric="mrr", source="test", family="test",
                 load_fn=lambda *a: [])
    rows = [{"query": r["text_b"], "candidate": r["text_a"]} for r in get_task("demo-para").load("en", "train")]
    hp = {**GLOBAL_HPARAMS, "epochs": 2.0, "batch_size": BATCH, "lr": 5e-4, "max_query_length": 32,
          "max_length": 32, "max_dev_examples": 12, "evals_per_epoch": 1}
    out.append(Job(pairs, hp, rows[:N_TRAIN], rows[N_TRAIN : N_TRAIN + 12]))
    return out


def run(model_dir: Path, *, dropout: bool, store: Path | None = None) -> dict[str, Any] | None:
    """One multi-task training: its record, weights and per-step counts (None on ranks other than 0)."""
    js = jobs()
    model = new_model(model_dir, [j.task for j in js], seed=5)
    if not dropout:
        no_dropout(model)
    counts = Counts()
    ckpt = Checkpoints(LocalStore(store), "ckpt", every=3) if store is not None else None
    try:
        record = train(model, load_tokenizer(model_dir), js, seed=5, sampler={"kind": "proportional"},
                       telemetry=counts, checkpoints=ckpt)
    except NotMainRank:
        return None
    return {"record": record, "state": {k: v.clone() for k, v in model.state_dict().items()}, "steps": counts.steps}


def main() -> None:
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    results = {"exact": run(model_dir, dropout=False),
               "fresh": run(model_dir, dropout=True, store=out / "store"),  # leaves its last checkpoint ...
               "resumed": run(model_dir, dropout=True, store=out / "store")}  # ... which this one resumes from
    if results["exact"] is not None:
        for name, r in results.items():
            torch.save(r["state"], out / f"{name}.pt")
            (out / f"{name}.json").write_text(json.dumps({"record": r["record"], "steps": r["steps"]}))


if __name__ == "__main__":
    main()
