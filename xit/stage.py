"""Running one stage: the single unit of execution, shared by the local runner and Argo pods.

`run_stage(plan, key, store)`:

1. if ``stages/<key>/MANIFEST.json`` exists the stage is committed: return at once;
2. run the stage's kind (its body: `xit.stages`) into a scratch directory, reading inputs from the store (training
   resumes from ``stages/<key>/checkpoint/`` when a killed attempt left one);
3. upload every file under ``stages/<key>/<attempt>/``;
4. create the manifest (attempt, sha256 + size per file) last, create-only.

A stage without a manifest is never taken as done, so a run killed at any point can be
started again: finished stages are skipped, the unfinished one starts over cleanly (from
its last checkpoint, with the same result).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from xit import __version__, ranks, scratch
from xit.errors import WorkError, XitError
from xit.files import sha256_file
from xit.plan import Plan, Stage
from xit.stages import KINDS, METRICS_ONLY, Bodies
from xit.store import ChecksumError, Store

MANIFEST = "MANIFEST.json"
Bar = Callable[..., Callable[[int], None]]


def _no_bar(description: str, total: int, keep: bool = False) -> Callable[[int], None]:
    return lambda n: None


def stage_prefix(key: str) -> str:
    return f"stages/{key}"


def is_committed(store: Store, key: str) -> bool:
    """Whether the stage has a manifest (cheap; `check_commit` says whether that commit is intact)."""
    return store.exists(f"{stage_prefix(key)}/{MANIFEST}")


# Files every committed stage of a kind holds: a commit without them is damaged, whatever its manifest says.
REQUIRED_FILES = {k.name: k.required_files for k in KINDS.values()}
# Each kind's body, ``run(stage, ctx, out)`` in ``xit.stages.<kind>``, imported when a stage of it first runs.
BODIES = Bodies()
_ATTEMPT = re.compile(r"attempt-[A-Za-z0-9-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class DamagedStage(WorkError):
    """A committed stage that cannot be used: unreadable manifest, files missing, or a checksum mismatch."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"stage {key}: {reason}")
        self.key, self.reason = key, reason


def read_manifest(store: Store, key: str) -> dict[str, Any]:
    """A committed stage's manifest, checked to hold together (`DamagedStage` if it does not)."""
    where = f"{stage_prefix(key)}/{MANIFEST}"
    try:
        m = json.loads(store.read_bytes(where).decode())
    except ChecksumError as e:
        raise DamagedStage(key, str(e)) from None
    except (UnicodeDecodeError, ValueError):
        raise DamagedStage(key, f"{where} is not valid JSON (truncated or overwritten)") from None
    files = m.get("files") if isinstance(m, dict) else None
    if not isinstance(m, dict) or m.get("key") != key or not isinstance(m.get("attempt"), str) \
            or not _ATTEMPT.fullmatch(m["attempt"]) or not isinstance(files, dict):
        raise DamagedStage(key, f"{where} is not a manifest of this stage (key, attempt or files wrong)")
    for rel, info in files.items():
        if not (isinstance(info, dict) and isinstance(info.get("sha256"), str) and _SHA256.fullmatch(info["sha256"])
                and isinstance(info.get("size"), int)):
            raise DamagedStage(key, f"{where}: entry {rel!r} has no valid sha256 and size")
    required = REQUIRED_FILES.get(str(m.get("kind")), METRICS_ONLY)
    missing = [f for f in required if f not in files]
    if missing:
        raise DamagedStage(key, f"{where} lists no {', '.join(missing)}")
    return m


def check_commit(store: Store, key: str) -> str | None:
    """Why a committed stage cannot be taken as done, or None when it can.

    Its manifest must parse and name this stage, and every file it lists must be there with its size; where
    the store has its files at hand (a local directory) their sha256 is checked too (cached by file identity,
    so an untouched stage is hashed once). S3 objects are checked against the manifest when downloaded.
    """
    try:
        m = read_manifest(store, key)
        prefix = f"{stage_prefix(key)}/{m['attempt']}"
        sizes = store.sizes(prefix)
        if not sizes:
            return f"its attempt folder {prefix} is missing"
        for rel, info in sorted(m["files"].items()):
            if rel not in sizes:
                return f"{prefix}/{rel} is missing"
            if sizes[rel] != info["size"]:
                return f"{prefix}/{rel} has {sizes[rel]} bytes, its manifest says {info['size']}"
        if store.local_digests:
            got = store.digests(prefix, sorted(m["files"]))
            for rel, info in sorted(m["files"].items()):
                if got.get(rel) != info["sha256"]:
                    return f"checksum mismatch for {prefix}/{rel} (changed after it was committed)"
    except DamagedStage as e:
        return e.reason
    except XitError as e:  # a manifest removed meanwhile (another runner un-committed it), or unreadable
        if not is_committed(store, key):
            return None
        return str(e)
    return None


def uncommit(store: Store, key: str, reason: str, *, log: bool = True) -> None:
    """Take a damaged stage as not done: remove its manifest, so the next run builds it again."""
    store.delete_prefix(f"{stage_prefix(key)}/{MANIFEST}")
    if log:
        from xit import ui

        ui.console.print(f"[yellow]stage {key}[/]: {escape(reason)}; not taken as done, rebuilding it",
                         highlight=False, soft_wrap=True)


def _damaged(store: Store, key: str, reason: str) -> DamagedStage:
    uncommit(store, key, reason, log=False)
    return DamagedStage(key, f"{reason}; the stage is no longer taken as done: run again to rebuild it")


def _checked_manifest(store: Store, key: str) -> dict[str, Any]:
    """`read_manifest` for a stage about to be read: a damaged manifest un-commits the stage."""
    try:
        return read_manifest(store, key)
    except DamagedStage as e:
        raise _damaged(store, key, e.reason) from None


@contextmanager
def _reading(store: Store, key: str, where: str) -> Iterator[None]:
    """Reading `where` of a committed stage: a checksum failure or a file gone un-commits the stage."""
    try:
        yield
    except ChecksumError as e:
        raise _damaged(store, key, str(e)) from None
    except XitError:
        if not is_committed(store, key):
            raise
        raise _damaged(store, key, f"{where} is missing") from None


def output_prefix(store: Store, key: str) -> str:
    """Where a committed stage's files are: the attempt its manifest names."""
    return f"{stage_prefix(key)}/{_checked_manifest(store, key)['attempt']}"


def output_dir(store: Store, key: str, sub: str = "") -> Path:
    """A local directory with a committed stage's files (under `sub`), each checked against its manifest.

    A file missing or changed un-commits the stage and raises `DamagedStage` naming the file.
    """
    m = _checked_manifest(store, key)
    prefix = f"{stage_prefix(key)}/{m['attempt']}"
    path = f"{prefix}/{sub}" if sub else prefix
    cut = len(sub) + 1 if sub else 0
    wanted = {rel[cut:]: info for rel, info in m["files"].items() if not sub or rel.startswith(sub + "/")}
    with _reading(store, key, path):
        d = store.local_dir(path)
    got = {rel[cut:]: d for rel, d in store.digests(prefix, sorted(f"{sub}/{r}" if sub else r for r in wanted)).items()}
    for rel, info in sorted(wanted.items()):
        if rel not in got:
            raise _damaged(store, key, f"{path}/{rel} is missing")
        if got[rel] != info["sha256"]:
            raise _damaged(store, key, f"checksum mismatch for {path}/{rel}: sha256 {got[rel]}, its manifest "
                                       f"says {info['sha256']} (changed after it was committed)")
    return d


def read_output(store: Store, key: str, name: str) -> bytes:
    """One file of a committed stage, checked against its manifest (a mismatch un-commits the stage)."""
    m = _checked_manifest(store, key)
    prefix = f"{stage_prefix(key)}/{m['attempt']}"
    info = m["files"].get(name)
    if info is None:
        raise _damaged(store, key, f"its manifest lists no {name}")
    with _reading(store, key, f"{prefix}/{name}"):
        data = store.read_bytes(f"{prefix}/{name}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != info["sha256"]:
        raise _damaged(store, key, f"checksum mismatch for {prefix}/{name}: sha256 {digest}, its manifest says "
                                   f"{info['sha256']} (changed after it was committed)")
    return data


def read_metrics(store: Store, key: str) -> dict[str, Any]:
    return json.loads(read_output(store, key, "metrics.json"))


@dataclass
class Context:
    """What a stage kind gets besides its parameters: the store, its own key, progress bars."""

    store: Store
    key: str
    bar: Bar = _no_bar
    checkpoint_every: int = 0
    telemetry: Any = None
    # What the body hands to the caller of `run_stage` in this process, by stage key (the report kind's tables, so
    # that exporting the report does not aggregate it again); None: the caller wants nothing back.
    handoff: dict[str, Any] | None = None

    def input_dir(self, key: str, sub: str) -> Path:
        """A committed input's files, checked. A damaged one un-commits that input, so the next run rebuilds it."""
        return output_dir(self.store, key, sub)

    @property
    def checkpoint_prefix(self) -> str:
        return f"{stage_prefix(self.key)}/checkpoint"


def run_stage(plan: Plan, key: str, store: Store, bar: Bar = _no_bar, *, checkpoint_every: int = 0,
              pushgateway: str | None = None, handoff: dict[str, Any] | None = None) -> str:
    """Run one stage of the plan unless committed; return "skipped" or "done". A body that ran may put what it
    computed into `handoff` (`Context.handoff`), for the caller.

    Each attempt uploads its files under ``stages/<key>/<attempt>/``, then creates the
    manifest, which names the attempt, with a create-only write: of two runners racing on
    one stage exactly one commits, and the other's files are never read. Files of attempts
    that died are never read either, and are removed when the stage commits. A runner that
    finds the stage committed by another (it lost the race, or its work failed because the
    winner cleared it away) answers "skipped" and clears what it left.
    """
    stage = plan.stage(key)
    plan.register_tasks()
    if ranks.world() > 1:  # one of the stage's processes (xit stage run --nproc N): rank 0 runs it as below
        ranks.join()
        if not ranks.is_main():
            return _follow(plan, stage, store, checkpoint_every)
    try:
        # Runners on one machine take a stage in turn (two local sweeps sharing stages, `xit stage run` by
        # hand beside `xit run`): the second waits, then finds it committed and skips it without doing the
        # work. Runners on different machines (pods, an S3 store) may still race: on Argo the stage's mutex
        # keeps them apart, and the create-only manifest below makes exactly one commit whatever happens.
        with scratch.machine_lock(f"stage\0{store.url}\0{key}", lambda: _say_waiting(key)):
            return _run_unless_committed(plan, stage, store, bar, checkpoint_every, pushgateway, handoff)
    finally:
        ranks.release(False)  # the other ranks stop, unless told to train (nothing happens for one process)


def _say_waiting(key: str) -> None:
    from xit import ui

    ui.console.print(f"[dim]stage {key}: another runner on this machine is running it; waiting for it[/]",
                     highlight=False, soft_wrap=True)


def _run_unless_committed(plan: Plan, stage: Stage, store: Store, bar: Bar, checkpoint_every: int,
                          pushgateway: str | None, handoff: dict[str, Any] | None) -> str:
    from xit.telemetry import Telemetry

    key = stage.key
    if is_committed(store, key):  # no push either: the run that committed it owns its metrics group
        why = check_commit(store, key)
        if why is None:
            _clear_leftovers(store, key)  # a kill between commit and clean-up left dead attempts, checkpoints
            return "skipped"
        uncommit(store, key, why)
    telemetry = Telemetry.from_env(sweep=plan.name, stage_key=key, kind=stage.kind,
                                   url=pushgateway or stage.runtime.get("pushgateway"))
    started = time.time()
    status = "failed"
    try:
        status = _run(plan, stage, store, bar, checkpoint_every, telemetry, handoff)
        return status
    finally:
        if status != "skipped":  # a racer that found the stage committed leaves the winner's group alone
            telemetry.finish(status, time.time() - started)


def _context(stage: Stage, store: Store, bar: Bar, checkpoint_every: int, telemetry: Any,
             handoff: dict[str, Any] | None = None) -> Context:
    """The Context a stage's body runs with (rank 0 or a follower): `checkpoint_every` when given (non-zero), else
    the stage's own runtime setting."""
    return Context(store, stage.key, bar, checkpoint_every or int(stage.runtime.get("checkpoint_every", 0) or 0),
                   telemetry, handoff)


def _follow(plan: Plan, stage: Stage, store: Store, checkpoint_every: int) -> str:
    """A rank other than 0: when rank 0 trains the stage, train in step with it (xit.train), writing nothing;
    "followed", or "skipped" when rank 0 does not train it (committed, or it failed first)."""
    from xit.telemetry import Telemetry
    from xit.train import NotMainRank

    if not ranks.hear():
        return "skipped"
    ctx = _context(stage, store, _no_bar, checkpoint_every,
                   Telemetry(None, sweep=plan.name, stage_key=stage.key, kind=stage.kind))
    with scratch.temp_dir(f"xit-{stage.key}-rank{ranks.rank()}-") as tmp:
        try:
            BODIES[stage.kind](stage, ctx, Path(tmp))
        except NotMainRank:
            pass
        except Exception:
            if is_committed(store, stage.key):  # another runner committed it meanwhile: rank 0 stops too
                return "skipped"
            raise
    return "followed"


def _run(plan: Plan, stage: Stage, store: Store, bar: Bar, checkpoint_every: int, telemetry: Any,
         handoff: dict[str, Any] | None) -> str:
    key = stage.key
    if is_committed(store, key):
        return "skipped"
    missing = [k for k in stage.inputs if not is_committed(store, k)]
    if missing:
        raise XitError(f"stage {key}: input stage(s) not committed yet: {', '.join(missing)}")
    prefix = stage_prefix(key)
    attempt = f"attempt-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    ctx = _context(stage, store, bar, checkpoint_every, telemetry, handoff)
    started = time.time()
    try:
        with scratch.temp_dir(f"xit-{key}-") as tmp:  # under this run's scratch folder: a kill leaves no trace
            work = Path(tmp)
            ranks.release(True)  # the other ranks (if any) train with this one
            BODIES[stage.kind](stage, ctx, work)
            manifest = {"key": key, "kind": stage.kind, "attempt": attempt, "xit_version": __version__,
                        "seconds": round(time.time() - started, 3), "files": {}}
            for p in sorted(p for p in work.rglob("*") if p.is_file()):
                rel = p.relative_to(work).as_posix()
                manifest["files"][rel] = {"sha256": sha256_file(p), "size": p.stat().st_size}
                store.put_file(p, f"{prefix}/{attempt}/{rel}")
            store.remember_digests(f"{prefix}/{attempt}", {r: f["sha256"] for r, f in manifest["files"].items()})
        blob = json.dumps(manifest, indent=1, sort_keys=True).encode()
        created = store.write_bytes_if_absent(f"{prefix}/{MANIFEST}", blob)
    except Exception:
        # Another runner committed meanwhile and cleared what this one was writing (its attempt, the
        # checkpoints it trains from), or the manifest write failed as it did: the stage is done, by the other.
        if not is_committed(store, key):
            raise
        created = False
    if not created:
        _clear_leftovers(store, key)  # lost the race: the committed attempt stands
        return "skipped"
    _clear_leftovers(store, key, attempt)
    return "done"


def _clear_leftovers(store: Store, key: str, attempt: str | None = None) -> None:
    """Remove everything under stages/<key>/ but the manifest and the attempt it names (`attempt`, or
    read from the manifest): attempts that died or lost a race, and training checkpoints.

    Best effort: the stage is committed whatever happens here. A racing runner still writing there
    finds the stage committed when it is done or fails, and clears up after itself then.
    """
    prefix = stage_prefix(key)
    try:
        keep = attempt or json.loads(store.read_text(f"{prefix}/{MANIFEST}"))["attempt"]
        parts = sorted(set(store.children(prefix)) - {keep, MANIFEST})
    except (OSError, XitError, ValueError, KeyError):
        return
    for part in parts:
        try:
            store.delete_prefix(f"{prefix}/{part}")
        except (OSError, XitError):
            continue
