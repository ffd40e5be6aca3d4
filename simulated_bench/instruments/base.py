"""Byte-level emulator base: bytes in, bytes out, one reply line per query.

Transports (an in-process adapter, a TCP server, a pyserial URL handler) only move
bytes; an emulator turns complete lines into reply lines. A query that fails gives no
reply at all, exactly like the real instruments, so the client times out and reads the
error queue.
"""
from __future__ import annotations

import abc
import contextlib
import threading


class Emulator(abc.ABC):
    """Line-terminated message handling shared by every emulated instrument."""

    #: ``*IDN?`` answer of the real model
    idn: str = ""
    #: model name printed by ``hil sim serve``
    model: str = ""
    terminator: bytes = b"\n"

    def __init__(self, lock: threading.RLock | None = None):
        self._inbuf = b""
        self.lock = lock or threading.RLock()
        #: every message received (decoded, without terminator), for transcripts in tests
        self.transcript: list[str] | None = None

    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the client; return the reply bytes they produced (maybe empty)."""
        self._inbuf += data
        if self.terminator not in self._inbuf:
            return b""
        *lines, self._inbuf = self._inbuf.split(self.terminator)
        out = []
        with self.lock:
            for raw in lines:
                line = raw.decode("ascii", errors="replace").strip("\r")
                if self.transcript is not None:
                    self.transcript.append(line)
                reply = self.handle_line(line)
                if reply is not None:
                    out.append(reply.encode("ascii") + self.terminator)
        return b"".join(out)

    @abc.abstractmethod
    def handle_line(self, line: str) -> str | None:
        """Execute one received line; return the reply text or None."""

    def outputs_off(self) -> None:
        """Switch every output off (called when a bench session ends)."""

    @contextlib.contextmanager
    def recording(self):
        """Collect the received lines in ``self.transcript`` for the duration of a block."""
        self.transcript = []
        try:
            yield self.transcript
        finally:
            self.transcript = None
