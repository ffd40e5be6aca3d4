"""``--view`` for long commands: the live view in a process of its own beside the run.

A separate process, not a thread: the view's reads and page updates then never take the
writer's interpreter lock or share its HDF5 library state, and it runs at a lower CPU
priority, so the run it watches is not slowed. It ends when the command ends (it watches
its stdin, which closes however the command exits, ``kill -9`` included).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading


class ViewProcess:
    """``hil view PATH`` started in the background; :attr:`url` is where a browser finds it."""

    def __init__(self, path: str | os.PathLike, port: int = 0, timeout_s: float = 180.0):
        cmd = [sys.executable, "-m", "hil", "view", os.fspath(path), "--port", str(port), "--until-stdin-closes",
               "--nice", "5"]
        self._log = tempfile.TemporaryFile("w+")  # a pipe nobody reads could fill up and stall the view
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                      text=True, cwd=os.getcwd())
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        first = line[0].strip() if line else ""
        if not first.startswith("http"):
            self._log.seek(0)
            err = self._log.read()
            self.close()
            raise RuntimeError(f"the live view did not start: {(first + ' ' + err).strip()[-500:]}")
        self.url = first
        self.pid = self._proc.pid

    def close(self) -> None:
        """Stop the view (closing its stdin is the signal; it is killed if it lingers)."""
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def __enter__(self) -> "ViewProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
