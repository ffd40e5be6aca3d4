"""RRAM-HIL AB64 addressing board: its line protocol over a serial port (pyserial).

The board routes a bench's READ input (an SMU) and PULSE input (a pulse generator) to a
1T1R chip's lines, drives the word lines from a 0..5 V DAC, senses every bit line on its
own transimpedance channel and runs vector-matrix products with a DAC per source line.

Protocol: ASCII, 115200 baud 8N1, one command per line terminated by LF; every command
gets exactly one reply line: the value for a query, ``OK`` for a setting,
``ERR <code>,<text>`` on failure (1 unknown command, 2 missing argument, 3 bad argument,
4 out of range, 5 wrong route for the request).

=====================  ================================================================
``*IDN?``              ``RRAM-HIL,AB64,<serial>,<firmware>``
``*RST``               switches open, every line grounded, WL DAC 0 V, first array
``ARRAYS?``            the chip's arrays, ``NAME:ROWSxCOLS,...``
``ARR <name>``         select the array the routes act on (grounds everything first)
``ROW <i>``            row (word line + source line) the routes act on
``COL <spec>``         selected bit lines: ``ALL``, ``i``, ``i-j`` or a comma list
``WL <V>``             word-line DAC (0..5 V) on the selected row, every row in VMM
``ROUTE <r>``          ``OFF`` all grounded; ``READ`` selected BLs to READ through the
                       sense channels, row SL grounded; ``BL`` selected BLs to PULSE,
                       row SL grounded (SET); ``SL`` row SL driven from PULSE, selected
                       BLs grounded, other BLs on PULSE (inhibit) (RESET); ``VMM``
                       SLs on their DACs, all WLs on, BLs at virtual ground
``MEAS? [n]``          currents (A) of the selected bit lines in column order (READ),
                       each the mean of ``n`` conversions (1..256)
``SEQ <step>;...``     pulse sequence on the selected row (up to 256 steps): each step
                       ``<route>:<WL V>:<col spec>`` (route BL or SL; ``<WL V>:<col spec>``
                       keeps the previous step's route) routes, sends a TRIG OUT edge to
                       the pulser's trigger input and waits for its pulse
``VMM? v0,...``        one source-line voltage per row; every bit line's current (VMM)
=====================  ================================================================

Settings have a query form (``ROW?``, ``COL?``, ``WL?``, ``ROUTE?``, ``ARR?``).
"""
from __future__ import annotations

import re
from typing import Sequence

import serial
from pymeasure.adapters import SerialAdapter
from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import InstrumentError

BAUD_RATE = 115200
ROUTES = ("OFF", "READ", "BL", "SL", "VMM")
WL_RANGE = [0.0, 5.0]  # V
VMM_RANGE = (-3.0, 3.0)  # V, source-line DACs
MAX_LINE = 4096  # characters the board takes in one command line
MAX_AVERAGE = 256  # conversions one MEAS? averages
MAX_SEQ_STEPS = 256  # steps one SEQ line holds
SEQ_ROUTES = ("BL", "SL")


class BoardError(InstrumentError):
    """An ``ERR <code>,<text>`` reply of the board."""


class LineSerialAdapter(SerialAdapter):
    """pymeasure's serial adapter, reading whole reply lines in chunks.

    pyserial's ``read_until`` fetches one byte per call; a 64-current reply is ~900
    bytes, so this adapter waits for one byte (honouring the port's timeout), then takes
    everything already received without waiting, and keeps any bytes past the
    terminator for the next reply.
    """

    def __init__(self, port, **kwargs):
        super().__init__(port, **kwargs)
        self._pending = b""

    def _read_bytes(self, count: int, break_on_termchar: bool, **kwargs) -> bytes:
        if not (break_on_termchar and self.read_termination):
            return super()._read_bytes(count, break_on_termchar, **kwargs)
        term = self.read_termination.encode()
        buf = self._pending
        conn = self.connection
        while term not in buf:
            chunk = conn.read(1)
            if not chunk:  # the port's timeout passed: return what arrived
                self._pending = b""
                return buf
            timeout, conn.timeout = conn.timeout, 0  # non-blocking: what has arrived already
            try:
                chunk += conn.read(1 << 16)
            finally:
                conn.timeout = timeout
            buf += chunk
        end = buf.index(term) + len(term)
        self._pending = buf[end:]
        return buf[:end]

    def flush_read_buffer(self) -> None:
        self._pending = b""
        super().flush_read_buffer()


def format_columns(cols: Sequence[int]) -> str:
    """Column spec for the ``COL`` command: runs of consecutive indices become ``i-j``."""
    idx = sorted({int(c) for c in cols})
    if not idx:
        raise ValueError("select at least one column")
    if idx[0] < 0:
        raise ValueError(f"column index {idx[0]} is negative")
    parts, start = [], idx[0]
    for k, c in enumerate(idx):
        if k + 1 == len(idx) or idx[k + 1] != c + 1:
            parts.append(str(start) if start == c else f"{start}-{c}")
            if k + 1 < len(idx):
                start = idx[k + 1]
    return ",".join(parts)


def _parse_arrays(reply: str) -> dict[str, tuple[int, int]]:
    out = {}
    for item in reply.split(","):
        m = re.fullmatch(r"\s*([^:]+):(\d+)x(\d+)\s*", item)
        if not m:
            raise InstrumentError("AB64", f"unreadable ARRAYS? reply {reply!r}")
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return out


class AddressingBoard(Instrument):
    """RRAM-HIL AB64 addressing board.

    ``adapter`` is a pyserial URL or port name (``/dev/ttyUSB0``,
    ``socket://127.0.0.1:5000``, ``hilsim://board``), an open :class:`serial.SerialBase`,
    or a pymeasure adapter.

    .. code-block:: python

        board = AddressingBoard("/dev/ttyUSB0")
        board.word_line_voltage = 3.0
        board.row = 5
        board.columns = range(64)
        board.route = "READ"
        currents = board.measure()
    """

    def __init__(self, adapter, name="RRAM-HIL AB64 addressing board", timeout: float = 2.0, **kwargs):
        if isinstance(adapter, str):
            adapter = serial.serial_for_url(adapter, baudrate=BAUD_RATE, timeout=timeout)
        if isinstance(adapter, serial.SerialBase):
            adapter = LineSerialAdapter(adapter, write_termination="\n", read_termination="\n")
        kwargs.setdefault("read_termination", "\n")
        kwargs.setdefault("write_termination", "\n")
        super().__init__(adapter, name, includeSCPI=False, **kwargs)
        self.forget()

    def read(self, **kwargs) -> str:
        """One reply line; an ``ERR`` reply raises :class:`BoardError`, silence :class:`TimeoutError`."""
        reply = super().read(**kwargs).strip()
        if not reply:
            # pyserial returns what arrived before its timeout: nothing means no answer
            raise TimeoutError(f"{self.name}: no reply within the serial timeout")
        if reply.startswith("ERR"):
            code, _, text = reply[3:].strip().partition(",")
            raise BoardError(self.name, [(int(code) if code.lstrip("-").isdigit() else 0, text)])
        return reply

    def check_set_errors(self) -> list:
        """Every setting is answered by ``OK`` (or an ``ERR`` reply, which raises)."""
        reply = self.read()
        if reply != "OK":
            raise BoardError(self.name, f"expected OK, got {reply!r}")
        return []

    id = Instrument.measurement("*IDN?", """Get the identification string (str).""", cast=str,
                                maxsplit=0)

    arrays = Instrument.measurement(
        "ARRAYS?", """Get the chip's arrays as a dict name -> (rows, cols).""",
        cast=str, maxsplit=0, get_process=_parse_arrays)

    array = Instrument.control(
        "ARR?", "ARR %s",
        """Control (str) the selected array; selecting one grounds every line first.""",
        cast=str, maxsplit=0, check_set_errors=True)

    row = Instrument.control(
        "ROW?", "ROW %d", """Control (int) the row the routes act on, 0 to rows - 1.""",
        cast=int, check_set_errors=True)

    columns = Instrument.control(
        "COL?", "COL %s",
        """Control the selected bit lines: set a sequence of indices, get the spec string
        (``ALL``, ``i-j`` runs, comma lists).""",
        cast=str, maxsplit=0, set_process=format_columns, check_set_errors=True)

    word_line_voltage = Instrument.control(
        "WL?", "WL %.4f", """Control (float) the word-line DAC voltage, 0 to 5 V.""",
        validator=strict_range, values=WL_RANGE, check_set_errors=True)

    route = Instrument.control(
        "ROUTE?", "ROUTE %s",
        """Control (str) the routing: OFF, READ, BL (SET), SL (RESET, source line driven) or VMM.""",
        validator=strict_discrete_set, values=ROUTES, cast=str, maxsplit=0, check_set_errors=True)

    def batch(self, row: int | None = None, columns: Sequence[int] | None = None,
              word_line_voltage: float | None = None, route: str | None = None,
              measure: bool = False, n_average: int = 1, extra: Sequence[str] = ()) -> list[float] | None:
        """Set any of row, columns, word-line voltage and route, send the ``extra`` command lines
        (each answered by OK), and optionally measure (``MEAS? n_average``), in one transfer: the
        lines go out in one write and their replies are read back together (one serial round trip
        instead of one per command). Returns the currents when measuring.
        """
        lines = []
        if row is not None:
            lines.append(f"ROW {int(row)}")
        if columns is not None:
            lines.append(f"COL {format_columns(columns)}")
        if word_line_voltage is not None:
            lines.append(f"WL {strict_range(word_line_voltage, WL_RANGE):.4f}")
        if route is not None:
            lines.append(f"ROUTE {strict_discrete_set(route, ROUTES)}")
        lines.extend(extra)
        if measure:
            n = int(strict_range(n_average, [1, MAX_AVERAGE]))
            lines.append("MEAS?" if n == 1 else f"MEAS? {n}")
        if not lines:
            return None
        self.write("\n".join(lines))
        replies = [self.read_reply() for _ in lines]
        errors = [r for r in replies if isinstance(r, BoardError)]
        if errors:
            raise errors[0]
        bad = [r for r in replies[:len(replies) - measure] if r != "OK"]
        if bad:
            raise BoardError(self.name, f"expected OK, got {bad[0]!r}")
        return [float(x) for x in replies[-1].split(",")] if measure else None

    # settings cache: staged settings go out with the next transfer, unchanged ones never ------------
    def forget(self) -> None:
        """Drop the settings cache (after an error or a reconnect the board's state is unknown)."""
        self._known: dict = {}
        self._staged: dict = {}

    def stage(self, row: int | None = None, columns: Sequence[int] | None = None,
              word_line_voltage: float | None = None, route: str | None = None) -> None:
        """Queue settings for the next :meth:`commit`, :meth:`measure_staged` or :meth:`sequence`;
        settings equal to what the board already holds are not sent again."""
        wanted = {"row": None if row is None else int(row),
                  "columns": None if columns is None else tuple(sorted({int(c) for c in columns})),
                  "word_line_voltage": None if word_line_voltage is None else float(word_line_voltage),
                  "route": route}
        for key, value in wanted.items():
            if value is None:
                continue
            if self._known.get(key) == value:
                self._staged.pop(key, None)
            else:
                self._staged[key] = value

    def _take_staged(self) -> dict:
        staged, self._staged = self._staged, {}
        return staged

    def _sent(self, settings: dict) -> None:
        self._known.update(settings)

    def commit(self) -> None:
        """Send the staged settings (one transfer; nothing when none changed)."""
        staged = self._take_staged()
        if staged:
            try:
                self.batch(**staged)
            except Exception:
                self.forget()
                raise
            self._sent(staged)

    def measure_staged(self, n_average: int = 1) -> list[float]:
        """The staged settings and ``MEAS? n_average`` in one transfer: currents (A) of the selected
        bit lines, each the board's mean of ``n_average`` conversions."""
        staged = self._take_staged()
        try:
            out = self.batch(**staged, measure=True, n_average=n_average)
        except Exception:
            self.forget()
            raise
        self._sent(staged)
        return out

    def sequence(self, steps: Sequence[tuple[str, float, Sequence[int]]]) -> None:
        """Pulse sequence on the selected row: per step ``(route, word-line V, columns)`` the board
        routes, triggers the pulser (TRIG OUT) and waits for its pulse. The staged settings and
        every ``SEQ`` line go out in one transfer (a line holds at most 256 steps and 4096
        characters). The last step's settings stay on the board."""
        if not steps:
            return
        lines, cur, size, last = [], [], 0, None
        for route, wl, cols in steps:
            route = strict_discrete_set(str(route).upper(), SEQ_ROUTES)
            body = f"{strict_range(float(wl), WL_RANGE):.4f}:{format_columns(cols)}"
            step = body if route == last else f"{route}:{body}"  # the route carries over within a line
            if cur and (len(cur) >= MAX_SEQ_STEPS or len("SEQ ") + size + len(step) + 16 > MAX_LINE):
                lines.append("SEQ " + ";".join(cur))
                cur, size, step = [], 0, f"{route}:{body}"
            cur.append(step)
            size += len(step) + 1
            last = route
        lines.append("SEQ " + ";".join(cur))
        staged = self._take_staged()
        try:
            self.batch(**staged, extra=lines)
        except Exception:
            self.forget()
            raise
        route, wl, cols = steps[-1]
        self._sent({**staged, "route": str(route).upper(), "word_line_voltage": float(wl),
                    "columns": tuple(sorted({int(c) for c in cols}))})

    def read_reply(self) -> str | BoardError:
        """One reply line; an ``ERR`` reply is returned as a :class:`BoardError` (not raised)."""
        try:
            return self.read()
        except BoardError as err:
            return err

    def reset(self) -> None:
        """``*RST``: switches open, lines grounded, WL DAC at 0 V, first array."""
        self.write("*RST")
        self.check_set_errors()

    def shutdown(self) -> None:
        """Safe state: every line grounded (route OFF) and the word-line DAC at 0 V, each acknowledged."""
        self.route = "OFF"
        self.word_line_voltage = 0.0
        super().shutdown()

    def measure(self) -> list[float]:
        """Currents (A) of the selected bit lines, in column order (needs route READ)."""
        return self.values("MEAS?")

    def vmm(self, voltages: Sequence[float]) -> list[float]:
        """Apply one voltage per source line (V) and return every bit line's current (A)."""
        v = [float(x) for x in voltages]
        bad = [x for x in v if not VMM_RANGE[0] <= x <= VMM_RANGE[1]]
        if bad:
            raise ValueError(f"VMM voltages {bad[:3]} outside the DAC range {VMM_RANGE} V")
        return self.values("VMM? " + ",".join(f"{x:.6g}" for x in v))
