"""Scratch space: one folder per xit process, removed by the next process if this one was killed.

Stages build their outputs and training writes checkpoint files in temporary folders before they
go to the store. A process killed with SIGKILL never removes them, and with real models they are
gigabytes. So every temporary folder of a process lives under one per-run folder,
``$TMPDIR/xit-scratch-<uid>/run-*``, which holds a lock for as long as its process lives; each new
process removes the run folders whose lock nobody holds (their process is gone), and never a
live one (two runners at once each keep theirs).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

_RUN_DIR: Path | None = None
_LOCK: IO[str] | None = None


def _user_dir(kind: str) -> Path:
    """``$TMPDIR/xit-<kind>-<uid>``: this user's folder of one kind (scratch runs, locks)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"xit-{kind}-{uid}"


def base_dir() -> Path:
    return _user_dir("scratch")


def run_dir() -> Path:
    """This process's scratch folder (created, and stale ones removed, on first use)."""
    global _RUN_DIR, _LOCK
    if _RUN_DIR is not None and _RUN_DIR.is_dir():
        return _RUN_DIR
    base = base_dir()
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    clean_stale(base)
    # Locked before it gets its run- name, so a cleaner never sees an unlocked live folder.
    new = Path(tempfile.mkdtemp(prefix=".new-", dir=base))
    lock = open(new / ".lock", "w")  # noqa: SIM115 - held open (and locked) for the life of the process
    if not _try_lock(lock):
        raise OSError(f"cannot lock the scratch folder {new}")
    d = new.with_name("run-" + new.name[len(".new-"):])
    new.rename(d)
    _RUN_DIR, _LOCK = d, lock
    atexit.register(shutil.rmtree, d, True)
    return d


def clean_stale(base: Path, new_grace: float = 3600.0) -> None:
    """Remove the run folders of processes that are gone (their lock is free); best effort."""
    with contextlib.suppress(OSError):
        for d in base.iterdir():
            if d == _RUN_DIR:
                continue
            if d.name.startswith(".new-"):  # killed between creating and naming it
                with contextlib.suppress(OSError):
                    if time.time() - d.stat().st_mtime > new_grace:
                        shutil.rmtree(d, ignore_errors=True)
                continue
            if not d.name.startswith("run-"):
                continue
            try:
                f = open(d / ".lock", "a")  # noqa: SIM115
            except OSError:
                continue
            with f:
                if _try_lock(f):
                    shutil.rmtree(d, ignore_errors=True)


def _try_lock(f: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # not POSIX: nothing is ever taken for stale
        return True
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def machine_lock(name: str, waiting: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Hold the lock called `name` on this machine (an flock on ``$TMPDIR/xit-locks-<uid>/<hash>.lock``):
    a second holder waits until the first lets go, or its process dies (the kernel drops an flock with its
    process: a killed runner never leaves a stage locked). `waiting` is called once when it must wait.
    Without flock (not POSIX), it does not lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    d = _user_dir("locks")
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Lock files stay (a few bytes each): removing one while another process waits on it would let a third
    # process lock a new file of the same name beside the waiter.
    with open(d / f"{hashlib.sha256(name.encode()).hexdigest()[:32]}.lock", "a") as f:
        if not _try_lock(f):
            waiting()
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def temp_dir(prefix: str) -> tempfile.TemporaryDirectory:
    """A temporary folder inside this process's scratch folder."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=run_dir())
