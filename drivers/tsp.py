"""Common ground of Keithley TSP instruments (2600B SourceMeters, 707B switch matrix).

A TSP instrument executes every line it receives as Lua; a query is a ``print(...)``.
Errors are read from ``errorqueue`` (code, message, severity, node, tab separated).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

from pymeasure.instruments import Instrument

from .errors import InstrumentError


class TspInstrument(Instrument):
    """Base for TSP instruments: error queue, named scripts, ``print`` queries."""

    def __init__(self, adapter, name, **kwargs):
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self._scripts: set[str] = set()

    id = Instrument.measurement("*IDN?", """Get the identification string (str).""", cast=str, maxsplit=0)

    error_count = Instrument.measurement(
        "print(errorqueue.count)", """Get (int) the number of entries in the error queue.""",
        cast=lambda v: int(float(v)))

    def reset(self) -> None:
        """``reset()``: every channel to its power-on state, error queue cleared."""
        self.write("reset()")

    def clear_errors(self) -> None:
        self.write("errorqueue.clear()")

    def next_error(self) -> tuple[int, str]:
        """The oldest error-queue entry as (code, message); (0, "Queue Is Empty") when empty."""
        reply = self.ask("print(errorqueue.next())")
        fields = reply.split("\t")
        return int(float(fields[0])), fields[1] if len(fields) > 1 else ""

    def check_errors(self) -> list[tuple[int, str]]:
        """Drain the error queue and return its entries."""
        errors = []
        for _ in range(self.error_count):
            code, text = self.next_error()
            if code == 0:
                break
            errors.append((code, text))
        return errors

    def raise_errors(self) -> None:
        """Drain the error queue; raise :class:`InstrumentError` if it held anything."""
        errors = self.check_errors()
        if errors:
            raise InstrumentError(self.name, errors)

    @contextlib.contextmanager
    def reply_within(self, seconds: float) -> Iterator[None]:
        """Wait up to ``seconds`` for the replies inside the block (a script that runs long on the
        instrument), at least the adapter's own timeout; adapters without one are left alone."""
        conn = getattr(self.adapter, "connection", None)
        if conn is None or not isinstance(getattr(conn, "timeout", None), (int, float)):
            yield
            return
        old = conn.timeout
        conn.timeout = max(old, 1000.0 * seconds)  # PyVISA counts milliseconds
        try:
            yield
        finally:
            conn.timeout = old

    def load_script(self, name: str, lines: Sequence[str], run: bool = True) -> None:
        """Send a named script (``loadscript`` ... ``endscript``) and optionally run it once."""
        # one transfer: the instrument reads the lines in order, as if sent one by one
        self.write("\n".join([f"loadscript {name}", *lines, "endscript"]))
        if run:
            self.write(f"{name}.run()")
        self.raise_errors()
        self._scripts.add(name)
