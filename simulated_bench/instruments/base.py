"""Byte-level emulator base: bytes in, bytes out, one reply line per query.

Transports (an in-process adapter, a TCP server, a pyserial URL handler) only move
bytes; an emulator turns complete lines into reply lines. A query that fails gives no
reply at all, exactly like the real instruments, so the client times out and reads the
error queue.

What arrives is untrusted (a served emulator is a network service): a line longer than
:data:`MAX_LINE_BYTES` is discarded up to its terminator and reported as an input-buffer
overrun, a line with a byte outside ASCII is reported as an invalid character; both
land in the instrument's error queue and the connection stays usable.

Every emulator charges its :class:`~.clock.BenchClock` for each host write and each reply
(its :class:`~.clock.Transport`; a write may carry several lines, as a driver that batches
does) and for its own execution time (:meth:`Emulator.busy`).
"""
from __future__ import annotations

import abc
import contextlib
import threading

from .clock import BenchClock, Transport, transport_for

MAX_LINE_BYTES = 1 << 18  # 256 KiB: a 2500-point list or a long TSP line fits, a flood does not
OVERRUN = -363  # SCPI "Input buffer overrun"
INVALID_CHARACTER = -101  # SCPI "Invalid character"


class LineBuffer:
    """Splits a byte stream into lines, bounded: an over-long line is dropped up to its terminator."""

    def __init__(self, terminator: bytes, max_line: int | None = None):
        self.terminator = terminator
        self.max_line = MAX_LINE_BYTES if max_line is None else max_line
        self._buf = b""
        self._discarding = False

    @property
    def pending(self) -> bool:
        """Part of a line has arrived without its terminator (or an over-long one is being skipped)."""
        return bool(self._buf) or self._discarding

    def push(self, data: bytes) -> tuple[list[bytes], int]:
        """Add bytes; return the complete lines and how many over-long lines were dropped.

        An over-long line is counted once, when it first exceeds the bound; its remaining
        bytes are skipped up to the next terminator.
        """
        if self._discarding:
            idx = data.find(self.terminator)
            if idx < 0:
                return [], 0
            data = data[idx + len(self.terminator):]
            self._discarding = False
        *lines, rest = (self._buf + data).split(self.terminator)
        kept = [line for line in lines if len(line) <= self.max_line]
        overruns = len(lines) - len(kept)
        if len(rest) > self.max_line:
            rest, self._discarding = b"", True
            overruns += 1
        self._buf = rest
        return kept, overruns


class Emulator(abc.ABC):
    """Line-terminated message handling shared by every emulated instrument."""

    #: ``*IDN?`` answer of the real model
    idn: str = ""
    #: model name printed by ``hil sim serve``
    model: str = ""
    terminator: bytes = b"\n"
    #: the link a bench usually uses for this model (see :mod:`.clock`)
    default_transport: str = "lan"

    def __init__(self, lock: threading.RLock | None = None):
        self._lines = LineBuffer(self.terminator)
        self.lock = lock or threading.RLock()
        #: every message received (decoded, without terminator), for transcripts in tests
        self.transcript: list[str] | None = None
        #: where round trips and execution time are charged; SimulatedInstruments shares one
        self.clock = BenchClock()
        self.clock_name = self.model or type(self).__name__
        self.transport: Transport = transport_for(self.default_transport)

    def feed(self, data: bytes) -> bytes:
        """Consume bytes from the client; return the reply bytes they produced (maybe empty)."""
        with self.lock:
            self.clock.message(self.clock_name, self.transport, len(data))
            return self.feed_lines(*self._lines.push(data))

    def feed_lines(self, lines: list[bytes], overruns: int = 0) -> bytes:
        """Execute complete lines (after ``overruns`` over-long ones were dropped); return the replies."""
        with self.lock:
            out = [self._reply(self.input_error(OVERRUN, "Input buffer overrun; line discarded"))
                   for _ in range(overruns)]
            reply = b"".join(out + [self.feed_line(raw) for raw in lines])
            if reply:
                self.clock.reply(self.clock_name, self.transport, len(reply))
            return reply

    def feed_line(self, raw: bytes) -> bytes:
        """Execute one received line (without terminator); return its reply bytes."""
        with self.lock:
            try:
                line = raw.decode("ascii").strip("\r")
            except UnicodeDecodeError:
                return self._reply(self.input_error(INVALID_CHARACTER, "Invalid character; non-ASCII byte in message"))
            if self.transcript is not None:
                self.transcript.append(line)
            return self._reply(self.handle_line(line))

    def _reply(self, reply: str | None) -> bytes:
        if reply is None:
            return b""
        return reply.encode("ascii", errors="backslashreplace") + self.terminator

    @abc.abstractmethod
    def handle_line(self, line: str) -> str | None:
        """Execute one received line; return the reply text or None."""

    @abc.abstractmethod
    def input_error(self, code: int, text: str) -> str | None:
        """Report malformed input the way the instrument does: queue it (return None) or return an error reply."""

    def busy(self, seconds: float) -> None:
        """The instrument spends ``seconds`` executing (charged to the bench clock)."""
        self.clock.busy(self.clock_name, seconds)

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
