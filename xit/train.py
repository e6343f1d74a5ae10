"""One training recipe for both phases: single- or multi-task fine-tuning of a shared encoder.

Read top to bottom: featurise each task's English training rows, build one shuffled
loader per task, decide the task of every step up front with the sampler (so the
schedule is seeded and identical on every process), AdamW with linear warmup and decay,
evaluate on the English dev sets at regular points and keep the best weights (mean of
the tasks' headline dev metrics). Accelerate places it on CPU, one GPU or several, with
bf16 when asked.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from xit.formats import get_format
from xit.formats.base import collate
from xit.modeling import XitModel


@dataclass
class Job:
    """One task of a training run: its data and resolved hyper-parameters."""

    task: Any
    hp: dict[str, Any]
    train_rows: list[dict]
    dev_rows: list[dict]


def sampling_probs(steps: list[int], kind: str, temperature: float) -> np.ndarray:
    """Task sampling probabilities: proportional to size, uniform, or size^(1/T)."""
    s = np.asarray(steps, dtype=np.float64)
    if kind == "uniform":
        w = np.ones_like(s)
    elif kind == "temperature":
        w = s ** (1.0 / temperature)
    else:
        w = s
    return w / w.sum()


def _cycle(loader: DataLoader) -> Iterator[dict]:
    while True:
        yield from loader


def evaluate_dev(model: XitModel, job: Job, tokenizer: Any, device: torch.device) -> dict[str, float]:
    fmt = get_format(job.task.format)
    rows = job.dev_rows[: job.hp["max_dev_examples"]] if job.hp.get("max_dev_examples") else job.dev_rows
    preds = fmt.predict(model, job.task, rows, tokenizer, job.hp, device)
    return fmt.score(job.task, rows, preds)


def train(model: XitModel, tokenizer: Any, jobs: list[Job], *, seed: int, sampler: dict[str, Any],
          bar: Callable[[str, int], Callable[[int], None]] | None = None) -> dict[str, Any]:
    """Train `model` in place on `jobs`; return the training record (loss curve, dev history, best)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    set_seed(seed)
    # One optimizer for the whole run (jiant-style): optimiser settings come from the first task.
    main = jobs[0].hp
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=main["precision"])
    loaders, steps = [], []
    for i, job in enumerate(jobs):
        rows = job.train_rows[: job.hp["max_train_examples"]] if job.hp.get("max_train_examples") else job.train_rows
        feats = get_format(job.task.format).featurize(rows, tokenizer, job.task, job.hp, train=True)
        if not feats:
            raise ValueError(f"task {job.task.name}: no training examples")
        g = torch.Generator().manual_seed(seed * 1000 + i)
        loader = DataLoader(feats, batch_size=int(job.hp["batch_size"]), shuffle=True, generator=g,
                            collate_fn=partial(collate, pad_id=tokenizer.pad_token_id))
        loaders.append(loader)
        steps.append(math.ceil(len(loader) * float(job.hp["epochs"])))
    total = sum(steps)
    schedule = np.random.default_rng(seed).choice(
        len(jobs), size=total, p=sampling_probs(steps, sampler.get("kind", "proportional"),
                                                float(sampler.get("temperature", 2.0))))

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": float(main["weight_decay"])},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=float(main["lr"]))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(float(main["warmup_ratio"]) * total), total)
    model, optimizer, scheduler, *loaders = accelerator.prepare(model, optimizer, scheduler, *loaders)
    iters = [_cycle(dl) for dl in loaders]

    max_epochs = max(float(j.hp["epochs"]) for j in jobs)
    evals = max(1, round(max_epochs * max(int(j.hp["evals_per_epoch"]) for j in jobs)))
    eval_at = {min(total, math.ceil(total * (k + 1) / evals)) for k in range(evals)}
    record: dict[str, Any] = {"steps": total, "tasks": [j.task.name for j in jobs], "loss": [], "dev": []}
    best_score, best_state = -math.inf, None
    advance = bar("train " + "+".join(record["tasks"]), total) if bar else None
    running, n_running = 0.0, 0
    unwrapped = accelerator.unwrap_model(model)
    for step in range(1, total + 1):
        model.train()
        t = int(schedule[step - 1])
        batch = next(iters[t])
        with accelerator.autocast():
            loss, _ = model(jobs[t].task.name, batch)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), float(main["max_grad_norm"]))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        running += float(loss.detach())
        n_running += 1
        if advance:
            advance(1)
        if step in eval_at:
            record["loss"].append({"step": step, "loss": running / n_running})
            running, n_running = 0.0, 0
            dev = {j.task.name: evaluate_dev(unwrapped, j, tokenizer, accelerator.device) for j in jobs}
            score = float(np.mean([dev[j.task.name][j.task.metric] for j in jobs]))
            record["dev"].append({"step": step, "score": score, "metrics": dev})
            if score > best_score:
                best_score, best_state = score, copy.deepcopy(
                    {k: v.detach().cpu() for k, v in unwrapped.state_dict().items()})
                record["best"] = {"step": step, "score": score, "metrics": dev}
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    return record
