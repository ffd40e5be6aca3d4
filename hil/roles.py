"""Bench roles: what a protocol may ask of the bench, and the bench that composes them.

A protocol sees a :class:`Bench` and nothing else: no driver, no address, no question
whether the chip is real. The bench is built from four role objects (selection, gate
supply, reader, pulser, and optionally a vector multiplier) that ``hil.bench`` makes
from instrument drivers, and it enforces the bench file's hard limits *before* any
role is asked to act, so no protocol can exceed them.

Conventions: SI units; ``row`` is a word line / source line index, ``cols`` bit line
indices; a positive pulse amplitude drives the selected bit lines (SET), a negative
one drives the row's source line (RESET) with the selected bit lines grounded.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

Route = Literal["read", "bl", "sl", "vmm"]


class LimitError(ValueError):
    """A request beyond the bench file's hard limits; raised before anything is sent."""


@dataclass(frozen=True)
class Limits:
    """Hard limits from the bench file (absolute values, SI units)."""

    v_line_max: float = 3.0  # V, largest |V| on any bit or source line
    v_gate_max: float = 5.0  # V, largest word-line (gate) voltage
    i_compliance: float = 10e-3  # A, SMU current compliance
    pulse_width_max: float = 1e-3  # s, longest pulse
    pulse_width_min: float = 1e-9  # s, shortest pulse the pulser can make

    def __post_init__(self) -> None:
        for name in ("v_line_max", "v_gate_max", "i_compliance", "pulse_width_max", "pulse_width_min"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"limit {name} must be a positive number, got {value!r}")
        if self.pulse_width_min > self.pulse_width_max:
            raise ValueError("limit pulse_width_min exceeds pulse_width_max")

    def check_line(self, v: float | ArrayLike, what: str = "line voltage") -> None:
        v_abs = float(np.max(np.abs(v))) if np.size(v) else 0.0
        if not np.isfinite(v_abs) or v_abs > self.v_line_max:
            raise LimitError(f"{what} {v_abs:g} V exceeds the bench limit v_line_max = {self.v_line_max:g} V")

    def check_gate(self, v_gate: float) -> None:
        if not np.isfinite(v_gate) or abs(v_gate) > self.v_gate_max:
            raise LimitError(f"gate voltage {v_gate:g} V exceeds the bench limit v_gate_max = {self.v_gate_max:g} V")

    def check_width(self, width: float) -> None:
        if not np.isfinite(width) or width > self.pulse_width_max:
            raise LimitError(f"pulse width {width:g} s exceeds the bench limit pulse_width_max = {self.pulse_width_max:g} s")
        if width < self.pulse_width_min:
            raise LimitError(f"pulse width {width:g} s is below pulse_width_min = {self.pulse_width_min:g} s")


class Selector(abc.ABC):
    """Routes instruments to chip lines (an addressing board or a switch matrix)."""

    @abc.abstractmethod
    def select(self, row: int, cols: Sequence[int], route: Route) -> None:
        """Connect word line ``row`` and bit lines ``cols`` for a read or a BL/SL pulse.

        ``route="vmm"`` turns every word line on and connects all source lines to the
        vector source and all bit lines to the current sense (row and cols ignored).
        """

    @abc.abstractmethod
    def deselect(self) -> None:
        """Open every switch and ground every line."""

    def use_array(self, name: str) -> None:
        """Route to array ``name`` of a multi-array chip; a single-array selector has nothing to do."""


class GateSupply(abc.ABC):
    @abc.abstractmethod
    def set_gate(self, v_gate: float) -> None:
        """Word-line voltage (V) applied to the selected row(s)."""


class Reader(abc.ABC):
    @abc.abstractmethod
    def read(self, v_read: float, n_cols: int) -> NDArray[np.float64]:
        """Apply ``v_read`` to the selected bit lines and return their currents (A)."""


class Pulser(abc.ABC):
    @abc.abstractmethod
    def pulse(self, amplitude: float, width: float) -> None:
        """One rectangular pulse of ``amplitude`` (V, >= 0) and ``width`` (s) on the routed lines."""


class VectorMultiplier(abc.ABC):
    @abc.abstractmethod
    def vmm(self, v_in: NDArray[np.float64]) -> NDArray[np.float64]:
        """Source-line voltages in (V), bit-line currents out (A), with routing set to "vmm"."""


class Bench:
    """The roles of one bench plus its limits and chip geometry.

    Every method checks the limits first, then drives the roles. ``outputs_off`` is
    called on close, on errors inside ``with bench:`` and on Ctrl-C.
    """

    def __init__(self, selector: Selector, gate: GateSupply, reader: Reader, pulser: Pulser,
                 limits: Limits, rows: int, cols: int, vmm: VectorMultiplier | None = None,
                 name: str = "bench", metadata: dict | None = None, closers: Sequence = (),
                 arrays: dict[str, tuple[int, int]] | None = None):
        self.selector, self.gate, self.reader, self.pulser = selector, gate, reader, pulser
        self.vector = vmm
        self.limits = limits
        self.rows, self.cols = int(rows), int(cols)
        self.name = name
        self.metadata = dict(metadata or {})
        #: the chip's arrays, name -> (rows, cols); a single-array chip has one entry "A"
        self.arrays: dict[str, tuple[int, int]] = dict(arrays) if arrays else {"A": (self.rows, self.cols)}
        self.array = next(iter(self.arrays))
        #: the simulated chip behind a simulated bench (ground truth for tests; never for protocols)
        self.sim = self.metadata.get("sim")
        self._closers = list(closers)
        self._closed = False

    def use_array(self, name: str) -> None:
        """Address array ``name`` of a multi-array chip from now on; rows / cols follow it."""
        if name not in self.arrays:
            raise KeyError(f"no array {name!r} on this chip; arrays: {', '.join(self.arrays)}")
        self.selector.use_array(name)
        self.array = name
        self.rows, self.cols = (int(n) for n in self.arrays[name])

    # checks ---------------------------------------------------------------------------
    def _row(self, row: int) -> int:
        if not 0 <= int(row) < self.rows:
            raise IndexError(f"row {row} outside the chip's 0..{self.rows - 1}")
        return int(row)

    def _cols(self, cols: int | Sequence[int] | None) -> list[int]:
        if cols is None:
            return list(range(self.cols))
        out = [int(c) for c in np.atleast_1d(cols)]
        bad = [c for c in out if not 0 <= c < self.cols]
        if bad:
            raise IndexError(f"columns {bad} outside the chip's 0..{self.cols - 1}")
        if not out:
            raise ValueError("no columns selected")
        return out

    # operations -----------------------------------------------------------------------
    def read_row(self, row: int, cols: int | Sequence[int] | None, v_read: float, v_gate: float,
                 n_avg: int = 1) -> NDArray[np.float64]:
        """Conductances (S) of the selected cells of one row: I / v_read, averaged over ``n_avg`` reads."""
        if v_read == 0:
            raise ValueError("v_read must be non-zero")
        if n_avg < 1:
            raise ValueError(f"n_avg must be >= 1, got {n_avg}")
        self.limits.check_line(v_read, "read voltage")
        self.limits.check_gate(v_gate)
        row, cols = self._row(row), self._cols(cols)
        self.gate.set_gate(v_gate)
        self.selector.select(row, cols, "read")
        total = np.zeros(len(cols))
        for _ in range(n_avg):
            total += self.reader.read(v_read, len(cols))
        return total / n_avg / v_read

    def read_array(self, v_read: float, v_gate: float, n_avg: int = 1,
                   rows: Sequence[int] | None = None, cols: Sequence[int] | None = None) -> NDArray[np.float64]:
        """Conductance map (S) of a region, row by row; shape (len(rows), len(cols))."""
        rows = list(range(self.rows)) if rows is None else [self._row(r) for r in rows]
        return np.stack([self.read_row(r, cols, v_read, v_gate, n_avg) for r in rows])

    def pulse_row(self, row: int, cols: int | Sequence[int] | None, amplitude: float, width: float,
                  v_gate: float) -> None:
        """One pulse on the selected cells of a row; amplitude > 0 SETs (bit lines), < 0 RESETs (source line)."""
        self.limits.check_line(amplitude, "pulse amplitude")
        self.limits.check_width(width)
        self.limits.check_gate(v_gate)
        row, cols = self._row(row), self._cols(cols)
        self.gate.set_gate(v_gate)
        self.selector.select(row, cols, "bl" if amplitude > 0 else "sl")
        self.pulser.pulse(abs(amplitude), width)

    def vmm(self, v_in: ArrayLike, v_gate: float) -> NDArray[np.float64]:
        """Vector-matrix multiply: source-line voltages in, the current each bit line sinks out (A)."""
        if self.vector is None:
            raise RuntimeError(f"bench {self.name!r} has no vector multiplier (no multi-channel board in its bench file)")
        v_in = np.asarray(v_in, dtype=float)
        if v_in.shape != (self.rows,):
            raise ValueError(f"v_in must have shape ({self.rows},), got {v_in.shape}")
        self.limits.check_line(v_in, "input voltage")
        self.limits.check_gate(v_gate)
        self.gate.set_gate(v_gate)
        self.selector.select(0, [], "vmm")
        return self.vector.vmm(v_in)

    def identities(self) -> dict[str, str]:
        """Every instrument's identification (``*IDN?`` answer: model, serial), by instrument name."""
        out: dict[str, str] = {}
        for closer in self._closers:
            ident = getattr(closer, "identities", None)
            if ident is not None:
                out.update(ident())
        return out

    # lifetime ---------------------------------------------------------------------------
    def outputs_off(self) -> None:
        """Ground every line and switch sources off; safe to call more than once."""
        errors = []
        for step in (lambda: self.gate.set_gate(0.0), self.selector.deselect):
            try:
                step()
            except Exception as exc:  # keep turning the rest off
                errors.append(exc)
        for closer in self._closers:
            off = getattr(closer, "outputs_off", None)
            if off is not None:
                try:
                    off()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise RuntimeError(f"could not switch every output off: {errors}")

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.outputs_off()
        finally:
            self._closed = True
            for closer in self._closers:
                close = getattr(closer, "close", None)
                if close is not None:
                    close()

    def __enter__(self) -> "Bench":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
            return
        try:  # the error that ended the block is the one to report, not a failure to switch off after it
            self.close()
        except Exception as close_exc:  # noqa: BLE001
            exc.add_note(f"closing the bench also failed: {close_exc}")
