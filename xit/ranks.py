"""The processes of one stage: one per GPU, started by `torch.distributed.run` (`xit stage run --nproc N`).

A stage pod given N GPUs runs N copies of `xit stage run`, ranks 0..N-1 (the launcher sets ``RANK`` and
``WORLD_SIZE``). They train one model together (data parallel, `xit.train`); rank 0 alone reads the stage's
state, writes checkpoints and outputs, pushes telemetry and commits. The other ranks follow: they learn from
rank 0 whether there is training to do (`release` / `hear`), train in step with it, and write nothing.

This module reads the environment and, once a process group is joined, passes small Python objects from
rank 0 to the others; it imports torch only to join a group or count GPUs.
"""

from __future__ import annotations

import os
from typing import Any

ENV_NPROC = "XIT_NPROC"
"""Processes `xit stage run` starts for a training stage (the chart sets it from the pod's GPU limit)."""

TRAINING_KINDS = ("intermediate", "target")
# How long a rank waits in a collective for the others. Rank 0 alone scores the dev sets and uploads checkpoints
# (gigabytes to S3 for a large model) while the others wait: far longer than NCCL's default 10 minutes. A rank
# that dies is noticed at once anyway (torch.distributed.run stops the others).
GROUP_TIMEOUT_S = 2 * 3600
_released: bool | None = None


def world() -> int:
    """How many processes train this stage together (1 outside `torch.distributed.run`)."""
    return int(os.environ.get("WORLD_SIZE") or 1)


def rank() -> int:
    return int(os.environ.get("RANK") or 0)


def is_main() -> bool:
    return rank() == 0


def join() -> None:
    """Join the process group of the stage's processes (gloo on CPU, NCCL on GPUs), through accelerate, whose
    state the training loop then reuses. Nothing to do for one process."""
    if world() > 1:
        from datetime import timedelta

        import torch
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available(), timeout=timedelta(seconds=GROUP_TIMEOUT_S))


def share(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (the others' `obj` is ignored); `obj` itself for one process."""
    if world() == 1:
        return obj
    import torch.distributed as dist

    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None on the others); ``[obj]`` for one process."""
    if world() == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world()
    dist.all_gather_object(out, obj)  # (gather_object's NCCL support came later; these objects are small)
    return out if is_main() else None


def release(go: bool) -> None:
    """Rank 0 tells the other ranks, once per process, whether it trains the stage (True) or not (it was
    committed, or failed before training): they train in step with it or stop. Later calls do nothing."""
    global _released
    if world() == 1 or _released is not None:
        return
    _released = bool(share(bool(go)))


def hear() -> bool:
    """On a rank other than 0: whether rank 0 trains the stage (the `release` it sent)."""
    return bool(share(None))


def stage_trains(kind: str, params: dict[str, Any]) -> bool:
    """Whether a stage trains a model (intermediate with tasks, target): the stages worth several processes."""
    return kind in TRAINING_KINDS and (kind != "intermediate" or bool(params.get("tasks")))


def launch_count(nproc: int | None) -> int:
    """How many processes to start for a training stage: `nproc` (``--nproc``), else ``$XIT_NPROC``, else the
    number of visible GPUs (1 without any). More processes than visible GPUs is bad input on a GPU machine; on
    a machine without GPUs several processes train on CPU (gloo), as the tests do."""
    from xit.errors import XitError

    where = "--nproc"
    if nproc is None and os.environ.get(ENV_NPROC, "").strip():
        raw, where = os.environ[ENV_NPROC].strip(), f"${ENV_NPROC}"
        try:
            nproc = int(raw)
        except ValueError:
            raise XitError(f"{where} must be a whole number of processes, got {raw!r}") from None
    if nproc is not None and nproc < 1:
        raise XitError(f"{where} must be at least 1, got {nproc}")
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if nproc is None:
        return max(1, gpus)
    if gpus and nproc > gpus:
        raise XitError(f"{where} {nproc}: only {gpus} GPU(s) are visible to this process")
    return nproc


def launch_command(n: int, cli_args: list[str]) -> list[str]:
    """The command that runs ``xit <cli_args>`` as `n` processes, one per GPU: `torch.distributed.run` on this
    machine alone (``--standalone``: a free local port, so several stage pods on one node do not collide)."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
            "-m", "xit.cli", *cli_args]
