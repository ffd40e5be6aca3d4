"""Who has a bench open, and did the last session end cleanly.

One lock file per bench, keyed by the bench file's hash, under the state directory
(``$RRAM_HIL_STATE_DIR``, else ``$XDG_STATE_HOME/rram-hil``, else
``~/.local/state/rram-hil``). Opening a bench takes an exclusive ``flock`` on it (the
kernel drops it when the process dies, however it dies) and writes who holds it; a
clean close empties the file. So an open that finds a record it can lock was left by a
session that never closed (``kill -9``, power loss): the instruments may still be
sourcing, and the bench puts them in their safe state before anything else. An open
that cannot lock the file is refused: another live process drives those instruments.
"""
from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from .station import BenchConnectionError


class BenchBusyError(BenchConnectionError):
    """Another live process has this bench open."""


def state_dir() -> Path:
    env = os.environ.get("RRAM_HIL_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "rram-hil"


@dataclass(frozen=True)
class UncleanSession:
    """The record a session left behind when it did not close its bench."""

    pid: int
    host: str
    started: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"


class BenchLock:
    """Exclusive hold of one bench for this process; :meth:`release` on a clean close."""

    def __init__(self, key: str, name: str):
        self.path = state_dir() / "benches" / f"{key}.lock"
        self.name = name
        self._fd: int | None = None
        #: set by :meth:`acquire` when the previous session ended without closing the bench
        self.unclean: UncleanSession | None = None

    def acquire(self) -> "BenchLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            who = f" by pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')}" if holder else ""
            raise BenchBusyError(f"bench {self.name!r} is open{who}; close that session first "
                                 f"(lock {self.path})") from None
        previous = _read(fd)
        if previous:
            self.unclean = UncleanSession(int(previous.get("pid", 0)), str(previous.get("host", "?")),
                                          str(previous.get("started", "?")))
        record = {"pid": os.getpid(), "host": socket.gethostname(), "bench": self.name,
                  "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """The session ended cleanly: forget it and let others open the bench."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing drops the flock


def _read(fd: int) -> dict:
    try:
        raw = os.pread(fd, 4096, 0)
        return json.loads(raw) if raw.strip() else {}
    except (OSError, ValueError):
        return {"pid": 0, "host": "?", "started": "? (unreadable record)"}


__all__ = ["BenchLock", "BenchBusyError", "UncleanSession", "state_dir"]
