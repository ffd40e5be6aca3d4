"""RRAM-HIL AB64 addressing board (serial): routes READ / PULSE to the chip's lines, drives
the word lines from its 0-5 V DAC, senses every bit line and runs vector-matrix products."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray

from drivers.addressing_board import WL_RANGE, AddressingBoard
from drivers.errors import InstrumentError

from ..roles import GateSupply, Reader, Route, Selector, VectorMultiplier
from .base import InstrumentPlugin, NoOptions


class BoardSelector(Selector):
    """ROW / COL / ROUTE through the board driver's settings cache: a setting the board already
    holds is never sent again, and the settings of a read go out with its ``MEAS?`` when the
    board senses the bit lines itself (one transfer per row read)."""

    ROUTES = {"read": "READ", "bl": "BL", "sl": "SL", "vmm": "VMM"}

    def __init__(self, station, name: str):
        self.station, self.name = station, name
        self.board: AddressingBoard = station.drivers[name]
        self.row: int | None = None
        self.cols: tuple[int, ...] | None = None
        #: True once the board's own sense reads the bit lines: read routes then travel with MEAS?
        self.read_by_board = False
        self.board.selector_commits = True  # the word-line level staged by BoardGate goes out with the route
        station.cached(self._forget)
        self._forget()

    def _forget(self) -> None:
        self.board.forget()

    def select(self, row: int, cols: Sequence[int], route: Route) -> None:
        with self.station.guard(self.name, f"routing row {row} for {route}"):
            if route != "vmm":
                cols = tuple(cols)
                self.board.stage(row=row, columns=cols)
                self.row, self.cols = row, cols
            self.board.stage(route=self.ROUTES[route])
            if not (route == "read" and self.read_by_board):
                self.board.commit()

    def drives_gate(self, gate: GateSupply) -> bool:
        """True when ``gate`` is this board's word-line DAC (a pulse sequence then sets it per step)."""
        return isinstance(gate, BoardGate) and gate.board is self.board

    def sequence(self, row: int, steps: Sequence[tuple[Sequence[int], Route, float]]) -> None:
        """Pulse sequence on ``row``: per step ``(cols, route "bl" | "sl", word-line V)`` the board
        routes and triggers the pulser armed for external triggers; one transfer."""
        if not steps:
            return
        with self.station.guard(self.name, f"running a {len(steps)}-step pulse sequence on row {row}"):
            self.board.stage(row=row)
            self.board.sequence([(self.ROUTES[route], gate, cols) for cols, route, gate in steps])
        self.row, self.cols = row, tuple(steps[-1][0])

    def deselect(self) -> None:
        with self.station.guard(self.name, "opening every route"):
            self.board.stage(route="OFF")
            self.board.commit()

    def use_array(self, name: str) -> None:
        with self.station.guard(self.name, f"selecting array {name}"):
            self.board.forget()
            self.board.array = name


class BoardGate(GateSupply):
    """Word lines from the board's DAC; the level is staged in the driver's settings cache and goes
    out with the next routing (or at once on a board that routes nothing of this bench)."""

    def __init__(self, station, name: str):
        self.station, self.name = station, name
        self.board: AddressingBoard = station.drivers[name]

    def set_gate(self, v_gate: float) -> None:
        with self.station.guard(self.name, f"setting the word lines to {v_gate:g} V"):
            self.board.stage(word_line_voltage=v_gate)
            if not getattr(self.board, "selector_commits", False):
                self.board.commit()


class BoardSenseReader(Reader):
    """Read voltage from the SMU on the READ input, one current per bit line from the board's sense.

    The routing and ``MEAS? n`` go out in one transfer; the board averages ``n`` conversions
    per channel. The board answers in ascending column order; the currents are returned in
    the order the columns were selected (repeats included).
    """

    averages = True

    def __init__(self, station, source, board_name: str, selector: BoardSelector):
        self.station, self.source, self.name, self.selector = station, source, board_name, selector
        self.board: AddressingBoard = station.drivers[board_name]
        selector.read_by_board = True

    def read(self, v_read: float, n_cols: int, n_avg: int = 1) -> NDArray[np.float64]:
        cols = np.asarray(self.selector.cols if self.selector.cols is not None else (), dtype=int)
        if cols.size != n_cols:
            raise RuntimeError("select the cells before reading them")
        self.source.source(v_read)
        with self.station.guard(self.name, f"sensing {cols.size} bit lines"):
            currents = np.asarray(self.board.measure_staged(n_avg), dtype=float)
        ascending = np.unique(cols)
        if currents.shape != ascending.shape:
            raise InstrumentError(self.station.describe(self.name),
                                  f"returned {currents.size} currents for {ascending.size} selected columns")
        return currents[np.searchsorted(ascending, cols)]

    def tripped(self) -> bool:
        """The READ source's own compliance status: the bus current it supplies hit its limit."""
        return self.source.tripped()


class BoardVmm(VectorMultiplier):
    def __init__(self, station, name: str):
        self.station, self.name = station, name
        self.board: AddressingBoard = station.drivers[name]

    def vmm(self, v_in: NDArray[np.float64]) -> NDArray[np.float64]:
        with self.station.guard(self.name, "running a vector-matrix product"):
            return np.asarray(self.board.vmm(v_in), dtype=float)


class Plugin(InstrumentPlugin):
    model = "rram-hil-ab64"
    description = "RRAM-HIL AB64 addressing board (serial): routes, 0-5 V word-line DAC, per-line sense, VMM"
    kind = "serial"
    options_schema = NoOptions  # 115200 8N1, fixed by the board
    roles = frozenset({"addresser", "gate", "sense"})
    idn_model = r"AB64"
    v_range = tuple(WL_RANGE)  # the word-line DAC
    emulator = "simulated_bench.instruments.board:AddressingBoardEmulator"

    @classmethod
    def driver_class(cls) -> type:
        return AddressingBoard

    @classmethod
    def open(cls, target, timeout, options):
        return AddressingBoard(target, timeout=timeout, **dict(options))

    @classmethod
    def selector(cls, station, name, wiring):
        return BoardSelector(station, name)

    @classmethod
    def arrays(cls, station, name, wiring):
        with station.guard(name, "listing the chip's arrays"):
            return station.drivers[name].arrays

    @classmethod
    def gate(cls, station, name, channel):
        return BoardGate(station, name)

    @classmethod
    def sense(cls, station, name, source, selector):
        return BoardSenseReader(station, source, name, selector)

    @classmethod
    def vmm(cls, station, name):
        return BoardVmm(station, name)
