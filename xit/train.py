"""One training recipe for both phases: single- or multi-task fine-tuning of a shared encoder.

Read top to bottom: featurise each task's English training rows; decide the task of every
step up front with the sampler and the order of every task's examples per epoch from the
seed (so the data position at any step is a pure function of the step — nothing to save
but the step, and identical on every process); AdamW with linear warmup and decay;
evaluate on the English dev sets at regular points and keep the best weights (mean of the
tasks' headline dev metrics). A step is one optimizer step: with `grad_accum_steps` k it sums
the gradients of k consecutive batches of its task (jiant's `Runner.run_train_step`). Dev
evaluation comes `evals_per_epoch` times an epoch or, with `eval_every_steps`, every N steps
and at the end; with `patience`, training stops after that many evaluations without a better
score (jiant's `JiantMetarunner.should_break_training`). Every `Checkpoints.every` steps the
whole training state — model, best weights, optimizer, scheduler, CPU and CUDA RNG, record —
goes to the store, and a restarted stage resumes from it to the same result. Accelerate places
it on CPU, one or several GPUs, with bf16 when asked.

Several processes (`torch.distributed.run`, one per GPU: `xit stage run --nproc N`) train one model data
parallel: every rank computes the same seeded batch order and takes its share of each batch (every
`world`-th example; the batch size stays the spec's, the global batch), DistributedDataParallel averages
the gradients, and each rank's loss is weighted by its share of the batch's loss terms (examples, or labelled
tokens for token-level losses) so the step is the one a single process takes on the whole batch. Rank 0
alone evaluates (the others get its scores), keeps the best weights, writes checkpoints (with every rank's
random state) and pushes telemetry; `train` returns on rank 0 and raises `NotMainRank` on the others.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xit import ranks, scratch
from xit.encoding import collate
from xit.errors import WorkError, XitError
from xit.features import FeatureCache
from xit.formats import get_format
from xit.modeling import XitModel
from xit.store import Store

log = logging.getLogger(__name__)

# Formats whose loss compares the examples of a batch with each other (the dual encoder's in-batch negatives):
# with several processes each rank encodes its share and the format gathers the others' (its `forward` reads
# the batch's "rows": this rank's real examples, 0 for a stand-in), so the objective stays the whole batch's.
GATHERING_FORMATS = frozenset({"dual_encoder"})


class NotMainRank(Exception):  # noqa: N818 - not an error: the other ranks' way out of `train`
    """Raised by `train` on ranks other than 0 once training is over: rank 0 holds the result and saves it."""


@dataclass
class Job:
    """One task of a training run: its data and resolved hyper-parameters."""

    task: Any
    hp: dict[str, Any]
    train_rows: list[dict]
    dev_rows: list[dict]
    dev_features: list[dict] | None = field(default=None, repr=False, compare=False)  # filled by evaluate_dev
    data_id: str | None = None  # the training data's fingerprint: with a FeatureCache, its features are shared


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


# Length grouping: batches are formed inside windows of this many batches of one epoch's seeded order, as
# transformers' LengthGroupedSampler forms them inside "megabatches" of 50 batches (trainer_pt_utils.py,
# get_length_grouped_indices).
GROUP_WINDOW = 50


class BatchOrder:
    """The example indices of every batch of one task: a pure function of (seed, task, epoch, position).

    Each epoch is a seeded permutation cut into batches, so the data at any step follows from the step alone
    and a resumed run sees exactly the batches an uninterrupted one would. With `lengths` (group by length),
    each window of GROUP_WINDOW batches of that permutation is sorted by length before it is cut, and the
    epoch's batches are then put in a seeded order: batches of similar lengths pad little, and the order of
    lengths over the epoch stays random. An epoch's batches are computed once (not once per step).
    """

    def __init__(self, n: int, batch_size: int, seed: int, task_index: int, lengths: list[int] | None = None):
        self.n, self.batch_size, self.seed, self.task_index = n, batch_size, seed, task_index
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.per_epoch = math.ceil(n / batch_size)
        self._epoch, self._batches = -1, []

    def __call__(self, position: int) -> np.ndarray:
        epoch, b = divmod(position, self.per_epoch)
        if epoch != self._epoch:
            self._epoch, self._batches = epoch, self._epoch_batches(epoch)
        return self._batches[b]

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        order = np.random.default_rng([self.seed, self.task_index, epoch]).permutation(self.n)
        if self.lengths is None:
            return [order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        window = self.batch_size * GROUP_WINDOW
        batches = []
        for w in range(0, self.n, window):
            part = order[w : w + window]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches += [part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        shuffle = np.random.default_rng([self.seed, self.task_index, epoch, 1]).permutation(len(batches))
        return [batches[i] for i in shuffle]


def evaluate_dev(model: XitModel, job: Job, tokenizer: Any, device: torch.device) -> dict[str, float]:
    """The job's dev metrics; its dev rows are featurised at the first evaluation only."""
    fmt = get_format(job.task.format)
    rows = job.dev_rows[: job.hp["max_dev_examples"]] if job.hp.get("max_dev_examples") else job.dev_rows
    if job.dev_features is None and fmt.predicts_from_features:
        job.dev_features = fmt.featurize(rows, tokenizer, job.task, job.hp, train=False)
    preds = fmt.predict(model, job.task, rows, tokenizer, job.hp, device, features=job.dev_features)
    return fmt.score(job.task, rows, preds)


def _feature_length(feature: dict[str, Any]) -> int:
    ids = feature["input_ids"]
    return max(len(c) for c in ids) if ids and isinstance(ids[0], list) else len(ids)


def feature_tokens(feature: dict[str, Any]) -> int:
    """The real (unpadded) tokens a training feature puts through the encoder: the ones of every attention mask
    it has (a dual encoder's query and candidate; each choice of a multiple-choice example)."""
    n = 0
    for key, mask in feature.items():
        if key.endswith("attention_mask"):
            n += sum(sum(m) for m in mask) if mask and isinstance(mask[0], list) else sum(mask)
    return n


def loss_terms(feature: dict[str, Any]) -> int:
    """How many terms a feature adds to its batch's mean loss: its labelled tokens for token-level labels
    (tagging, masked-language modelling: a mean over labelled tokens), else 1 (a mean over examples)."""
    labels = feature.get("labels")
    return sum(x != -100 for x in labels) if isinstance(labels, list) else 1


class Checkpoints:
    """Training state in the store under `prefix`, every `every` steps.

    Each checkpoint goes to its own ``step-N-<runner>/`` folder, its ``progress.json``
    uploaded last: a folder without it is incomplete (a process killed mid-checkpoint) and
    is never read. `load` takes the newest complete folder, and the next older one when a
    folder turns out unreadable. Two runners racing on the same stage (a pod taken for lost
    that still runs) write to folders of their own and each prunes only folders older than
    its newest, best effort, so neither mixes its files into the other's checkpoint or
    deletes a newer one. ``latest.json`` names the newest folder this process saved, for
    people and tools. Weights are safetensors; the optimizer/scheduler/RNG state is loaded
    with ``torch.load(weights_only=True)`` (no unpickling of code).
    """

    REQUIRED = frozenset({"progress.json", "model.safetensors", "state.pt"})

    def __init__(self, store: Store, prefix: str, every: int, committed: Callable[[], bool] | None = None):
        """`committed()` says whether another runner has committed the stage meanwhile: `save` then
        stops the training (this runner's result would be thrown away)."""
        self.store, self.prefix, self.every = store, prefix, int(every)
        self.committed = committed
        self.runner = uuid.uuid4().hex[:8]

    def _folders(self) -> list[tuple[str, set[str]]]:
        """The step folders, newest first, with the files each holds."""
        folders: dict[str, set[str]] = {}
        for k in self.store.list(self.prefix):
            part, _, rest = k[len(self.prefix) + 1:].partition("/")
            if part.startswith("step-") and part.split("-")[1].isdigit() and rest:
                folders.setdefault(part, set()).add(rest)
        return sorted(folders.items(), key=lambda f: (_step(f[0]), f[0]), reverse=True)

    def load(self, only: str | None = None) -> dict[str, Any] | None:
        """The newest readable checkpoint (its folder under "folder"), or with `only`, that folder's (None if it
        cannot be read: the other ranks of a distributed run load the one rank 0 chose)."""
        from safetensors.torch import load_file

        for name, files in self._folders():
            if not self.REQUIRED <= files or (only is not None and name != only):
                continue
            try:
                d = self.store.local_dir(f"{self.prefix}/{name}")
                progress = json.loads((d / "progress.json").read_text())
                best = d / "best.safetensors"
                if "best" in progress["record"] and not best.exists():
                    continue  # pruned by a racer while listed: its best weights are gone
                return {
                    **progress,
                    "folder": name,
                    "model": load_file(str(d / "model.safetensors")),
                    "best_state": load_file(str(best)) if "best" in progress["record"] else None,
                    "state": torch.load(d / "state.pt", map_location="cpu", weights_only=True),
                }
            except Exception as e:  # removed or damaged under us: an older one, or a fresh start, gives the
                # same result (training is a function of the seed and the step), only later
                log.warning("checkpoint %s/%s cannot be read (%s: %s); trying the one before it",
                            self.prefix, name, type(e).__name__, e)
        return None

    def save(self, step: int, model_state: dict, best_state: dict | None, state: dict, progress: dict) -> None:
        from safetensors.torch import save_file

        if self.committed is not None and self.committed():
            raise WorkError(f"{self.prefix}: the stage was committed by another runner; this one stops training")
        name = f"step-{step:09d}-{self.runner}"
        with scratch.temp_dir("xit-ckpt-") as tmp:  # under this run's scratch folder: a kill leaves no trace
            d = Path(tmp)
            save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, str(d / "model.safetensors"))
            if best_state is not None:
                save_file(best_state, str(d / "best.safetensors"))
            torch.save(state, d / "state.pt")
            (d / "progress.json").write_text(json.dumps({**progress, "step": step}))
            try:
                for p in sorted(d.iterdir(), key=lambda p: (p.name == "progress.json", p.name)):  # progress.json last
                    self.store.put_file(p, f"{self.prefix}/{name}/{p.name}")
            except FileNotFoundError:
                if any(_step(f) > step for f, _ in self._folders()):
                    return  # a faster racer, past this step, pruned the folder mid-write: its checkpoint stands
                raise
        self.store.write_text(f"{self.prefix}/latest.json", json.dumps({"dir": name, "step": step}))
        try:
            for older, _ in self._folders():
                if _step(older) < step:
                    self.store.delete_prefix(f"{self.prefix}/{older}")
        except (OSError, XitError):  # a racer writing or pruning there too: what is left goes next time
            pass


def _step(folder: str) -> int:
    """The step of a ``step-N`` or ``step-N-<runner>`` checkpoint folder."""
    return int(folder.split("-")[1])


def _accum(hp: dict[str, Any]) -> int:
    return int(hp.get("grad_accum_steps") or 1)


def evaluation_steps(jobs: list[Job], total: int) -> set[int]:
    """The steps after which the dev sets are scored: every `eval_every_steps` steps and the last one (jiant's
    `JiantMetarunner.should_eval_model`, then the evaluation after its loop), or else `evals_per_epoch` times
    over the longest task's epochs, evenly spread."""
    every = jobs[0].hp.get("eval_every_steps")
    if every:
        return set(range(int(every), total + 1, int(every))) | {total}
    max_epochs = max(float(j.hp["epochs"]) for j in jobs)
    evals = max(1, round(max_epochs * max(int(j.hp["evals_per_epoch"]) for j in jobs)))
    return {min(total, math.ceil(total * (k + 1) / evals)) for k in range(evals)}


def rng_state() -> dict[str, Any]:
    """The random state a checkpoint keeps: the CPU generator's and, on GPUs, every CUDA device's (dropout draws
    from the device's generator there)."""
    state = {"rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`; a checkpoint written on GPUs resumed where there are none restores the CPU part.
    A checkpoint of a distributed run keeps every rank's state ("ranks"): each rank takes its own when the run
    resumes with as many ranks (with another number, rank 0's: the same data, other dropout draws)."""
    per_rank = state.get("ranks")
    if per_rank:
        state = per_rank[ranks.rank()] if len(per_rank) == ranks.world() else per_rank[0]
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda_rng"]))


def adamw_kernel(device: torch.device) -> dict[str, bool]:
    """AdamW's implementation: fused on CUDA (one kernel for all parameters), else foreach (one op per step for
    each group, not one per parameter; the same numbers as the per-parameter loop)."""
    return {"fused": True} if device.type == "cuda" else {"foreach": True}


def enable_tf32(device: torch.device) -> None:
    """On CUDA, float32 matrix products and convolutions may use TF32 tensor cores (bf16 autocast covers most of
    the model; this speeds up what stays in float32). Nothing changes on CPU."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def compiled(model: Any, hp: dict[str, Any], device: torch.device) -> Any:
    """The module the training steps call: `model` wrapped by `torch.compile` when the recipe's `compile` is on
    and training runs on CUDA; `model` itself otherwise (on CPU compiling costs more than it saves on the
    small models run there, so the option is accepted and left out). Evaluation runs the eager model."""
    if not hp.get("compile"):
        return model
    if device.type != "cuda":
        log.info("compile: true applies on GPUs only; training on %s runs eagerly", device.type)
        return model
    return torch.compile(model)


def train(model: XitModel, tokenizer: Any, jobs: list[Job], *, seed: int, sampler: dict[str, Any],
          bar: Callable[[str, int], Callable[[int], None]] | None = None,
          checkpoints: Checkpoints | None = None, telemetry: Any = None,
          features: FeatureCache | None = None) -> dict[str, Any]:
    """Train `model` in place on `jobs`; return the training record (loss curve, dev history, best).

    Under `torch.distributed.run` the ranks train together (module docstring); ranks other than 0 raise
    `NotMainRank` at the end instead of returning. With `features`, the training rows of every job with a
    `data_id` are featurised once per (data, tokenizer, featurisation parameters) across stages: read from the
    cache, or computed and cached."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from transformers import get_linear_schedule_with_warmup

    set_seed(seed + ranks.rank())  # dropout draws differ between ranks; the data order is seeded apart
    # One optimizer for the whole run (jiant-style): optimiser settings come from the first task.
    main = jobs[0].hp
    # accelerate keeps one state per process and refuses a second Accelerator with another precision: each
    # training run (a stage; the local runner runs several in one process) starts from a fresh one. The
    # process-level state (devices, a distributed group) is kept.
    from accelerate.state import AcceleratorState, GradientState

    ranks.join()  # under torch.distributed.run: the process group, with xit's timeout (once per process)
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    # A multi-task model's other heads get no gradient in a step: DDP must look for unused parameters then.
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=main["precision"],
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=len(jobs) > 1)])
    enable_tf32(accelerator.device)
    rank, world = accelerator.process_index, accelerator.num_processes
    is_main = accelerator.is_main_process
    if not is_main:  # rank 0 reports for all
        telemetry, bar = None, None
    feats, steps = [], []
    # With a feature cache, rank 0 featurises first and the other ranks read its features.
    with accelerator.main_process_first() if features is not None and world > 1 else nullcontext():
        for job in jobs:
            limit = job.hp.get("max_train_examples")
            rows = job.train_rows[:limit] if limit else job.train_rows
            # The run's seed goes to featurisation too: masked-language modelling draws its masks from it.
            hp = {**job.hp, "seed": seed}
            fmt = get_format(job.task.format)

            def compute(fmt: Any = fmt, rows: list[dict] = rows, job: Job = job, hp: dict = hp) -> list[dict]:
                return fmt.featurize(rows, tokenizer, job.task, hp, train=True)

            f = (features.get(job.task, job.data_id, tokenizer, hp, True, compute)
                 if features is not None and job.data_id else compute())
            if not f:
                raise ValueError(f"task {job.task.name}: no training examples")
            feats.append(f)
            batches = math.ceil(math.ceil(len(f) / int(job.hp["batch_size"])) * float(job.hp["epochs"]))
            steps.append(math.ceil(batches / _accum(job.hp)))
    total = sum(steps)
    orders = [BatchOrder(len(f), int(job.hp["batch_size"]), seed, t,
                         [_feature_length(x) for x in f] if job.hp.get("group_by_length") else None)
              for t, (f, job) in enumerate(zip(feats, jobs, strict=True))]
    gathers = [world > 1 and j.task.format in GATHERING_FORMATS for j in jobs]
    # Per feature, counted on the host once, only where read: real tokens for telemetry, and loss terms with
    # several ranks, which split every batch (each rank's share of the batch's mean loss).
    n_tokens = ([np.array([feature_tokens(x) for x in f], dtype=np.int64) for f in feats]
                if telemetry is not None else None)
    n_terms = [np.array([loss_terms(x) for x in f], dtype=np.int64) if world > 1 else None for f in feats]
    schedule = np.random.default_rng(seed).choice(
        len(jobs), size=total, p=sampling_probs(steps, sampler.get("kind", "proportional"),
                                                float(sampler.get("temperature", 2.0))))

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    named = list(model.named_parameters())
    groups = [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": float(main["weight_decay"])},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=float(main["lr"]), **adamw_kernel(accelerator.device))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(float(main["warmup_ratio"]) * total), total)

    record: dict[str, Any] = {"steps": total, "tasks": [j.task.name for j in jobs], "loss": [], "dev": []}
    best_score, best_state = -math.inf, None
    running, n_running, start = 0.0, 0, 0
    resumed = checkpoints.load() if checkpoints and is_main else None
    if checkpoints and world > 1:  # the other ranks load the checkpoint rank 0 chose
        folder = ranks.share(resumed["folder"] if resumed else None)
        if not is_main and folder is not None:
            resumed = checkpoints.load(only=folder)
            if resumed is None:
                raise WorkError(f"{checkpoints.prefix}/{folder}: rank {rank} cannot read the checkpoint rank 0 "
                                "resumes from")
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        record, (running, n_running), start = resumed["record"], resumed["running"], resumed["step"]
        best_state = resumed["best_state"] if is_main else None
        best_score = record["best"]["score"] if "best" in record else -math.inf
    # The scheduler stays outside accelerate, which steps a prepared one once per process and step (it takes
    # each process's batch for a batch of its own): here the ranks share one batch, so one step is one step.
    model, optimizer = accelerator.prepare(model, optimizer)
    if resumed is not None:
        optimizer.load_state_dict(resumed["state"]["optimizer"])
        scheduler.load_state_dict(resumed["state"]["scheduler"])
        set_rng_state(resumed["state"])
        record["resumed_from"] = record.get("resumed_from", []) + [start]
        resumed = None  # the weights are in the model now
    step_fn = compiled(model, main, accelerator.device)

    eval_at = evaluation_steps(jobs, total)
    patience = main.get("patience")
    accum = [_accum(j.hp) for j in jobs]
    positions = (np.bincount(schedule[:start], minlength=len(jobs)) * accum).tolist()
    advance = bar("train " + "+".join(record["tasks"]), total) if bar else None
    if advance and start:
        advance(start)
    unwrapped = accelerator.unwrap_model(model)
    pad = tokenizer.pad_token_id
    device = accelerator.device
    # The running loss stays on the device, in float64 (as the Python float it replaces: the same numbers), and
    # is read only when the record or a checkpoint needs it: no device sync per step.
    running_sum = torch.tensor(running, dtype=torch.float64, device=device)
    for step in range(start + 1, total + 1):
        model.train()
        t = int(schedule[step - 1])
        job = jobs[t]
        step_loss = torch.zeros((), dtype=torch.float64, device=device)
        tokens = examples = 0
        for k in range(accum[t]):  # the step's batches: their mean loss's gradient, as one batch k times larger
            idx = orders[t](positions[t])
            positions[t] += 1
            examples += len(idx)
            if n_tokens is not None:
                tokens += int(n_tokens[t][idx].sum())
            mine, share = idx, 1.0
            if (terms_of := n_terms[t]) is not None:
                # This rank's examples and its part of the batch's mean loss: DDP averages the ranks' gradients,
                # so a rank's loss counts `world` times its share of the batch's loss terms.
                mine, terms = idx[rank::world], terms_of[idx].sum()
                share = float(terms_of[mine].sum() / terms) if terms else len(mine) / len(idx)
                if not len(mine):  # fewer examples than ranks: one stands in, with no weight
                    mine, share = idx[:1], 0.0
            batch = collate([feats[t][i] for i in mine], pad)
            batch = {key: v.to(device, non_blocking=True) for key, v in batch.items()}
            if gathers[t]:
                batch["rows"] = torch.tensor(len(mine) if share else 0)
            # Gradients are averaged across ranks once a step, after its last batch.
            with accelerator.no_sync(model) if k < accum[t] - 1 else nullcontext(), accelerator.autocast():
                loss, _ = step_fn(job.task.name, batch)
                if world > 1:
                    # A share with no loss terms (no labelled token here) has a NaN mean: it counts 0.
                    loss = (loss.nan_to_num(0.0) if share == 0.0 else loss) * (share * world)
                accelerator.backward(loss / accum[t])
            step_loss += loss.detach().double() / accum[t]
        if world > 1:  # the step's loss on the whole batch: the mean of the ranks' weighted losses
            torch.distributed.all_reduce(step_loss)
            step_loss /= world
        accelerator.clip_grad_norm_(model.parameters(), float(main["max_grad_norm"]))
        optimizer.step()
        if not optimizer.step_was_skipped:  # an fp16 step skipped for overflow leaves the schedule where it was
            scheduler.step()
        optimizer.zero_grad()
        running_sum += step_loss
        n_running += 1
        if telemetry is not None:  # the loss stays a device tensor: telemetry reads it when it pushes
            telemetry.step(job.task.name, loss=step_loss, lr=float(scheduler.get_last_lr()[0]),
                           examples=examples, tokens=tokens)
        if advance:
            advance(1)
        if step in eval_at:
            record["loss"].append({"step": step, "loss": float(running_sum) / n_running})
            running_sum.zero_()
            n_running = 0
            # Rank 0 evaluates; the other ranks take its scores, so all of them stop and select alike.
            dev = {j.task.name: evaluate_dev(unwrapped, j, tokenizer, device) for j in jobs} if is_main else None
            dev = ranks.share(dev) if world > 1 else dev
            score = float(np.mean([dev[j.task.name][j.task.metric] for j in jobs]))
            record["dev"].append({"step": step, "score": score, "metrics": dev})
            if telemetry is not None:
                for j in jobs:
                    m = j.task.metric
                    telemetry.eval_score(j.task.name, j.task.train_language, m, dev[j.task.name][m])
            if score > best_score:
                best_score = score
                if is_main:
                    best_state = {k: v.detach().cpu().clone() for k, v in unwrapped.state_dict().items()}
                record["best"] = {"step": step, "score": score, "metrics": dev}
            # Early stopping: `patience` evaluations since the best one (a function of the record, so a
            # resumed run stops where an uninterrupted one does).
            if patience and sum(d["step"] > record["best"]["step"] for d in record["dev"]) >= int(patience):
                record["stopped_early"] = step
                break
        if checkpoints and step % checkpoints.every == 0 and step < total:
            _checkpoint(checkpoints, step, unwrapped, best_state, optimizer, scheduler,
                        {"record": record, "running": [float(running_sum), n_running]})
    if world > 1 and not is_main:
        raise NotMainRank
    if best_state is not None:
        unwrapped.load_state_dict(best_state)
    return record


def _checkpoint(checkpoints: Checkpoints, step: int, model: Any, best_state: dict | None, optimizer: Any,
                scheduler: Any, progress: dict[str, Any]) -> None:
    """Save the training state (rank 0, with every rank's random state). With several ranks, a save that finds
    the stage committed by another runner stops every rank."""
    states = ranks.gather(rng_state())
    stop = None
    if ranks.is_main():
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **rng_state()}
        if ranks.world() > 1:
            state["ranks"] = states
        try:
            checkpoints.save(step, model.state_dict(), best_state, state, progress)
        except WorkError as e:
            if ranks.world() == 1:
                raise
            stop = str(e)
    stop = ranks.share(stop)
    if stop is not None:
        raise WorkError(stop)
