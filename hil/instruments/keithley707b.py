"""Keithley 707B switching matrix as the addresser: matrix rows carry the inputs, matrix
columns across the cards are the chip's lines (bit lines, then source lines, then word lines).

Its wiring section (``wiring.matrix``)::

    matrix:
      rows: {A: read, B: pulse, C: gate, D: gnd}   # matrix row letter -> input
      array: {rows: 16, cols: 16}                  # chip lines: BL0.., SL0.., WL0..
"""
from __future__ import annotations

from typing import Any, Literal, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.keithley707b import Keithley707B

from ..roles import Route, Selector
from .base import InstrumentPlugin

MATRIX_LINES = 72  # six 8x12 cards
INPUTS = ("read", "pulse", "gate", "gnd")


class MatrixArray(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rows: int = Field(ge=1, le=MATRIX_LINES, strict=True)
    cols: int = Field(ge=1, le=MATRIX_LINES, strict=True)

    @model_validator(mode="after")
    def _fits(self) -> "MatrixArray":
        if self.cols + 2 * self.rows > MATRIX_LINES:
            raise ValueError(f"{self.rows}x{self.cols} needs {self.cols + 2 * self.rows} matrix columns "
                             f"(BL + SL + WL); a 707B has {MATRIX_LINES}")
        return self


class MatrixWiring(BaseModel):
    """``wiring.matrix``: which matrix row carries which input, and the chip lines it reaches."""

    model_config = ConfigDict(extra="forbid")
    rows: dict[str, Literal["read", "pulse", "gate", "gnd"]]
    array: MatrixArray
    #: the 707B's node number on the TSP-Link of the read SourceMeter (its own node is 1): with
    #: it a 2600B on the READ row runs a row's write-and-verify and scan itself, routing each
    #: cell through the matrix; without it every step is sent from the host
    tsplink_node: Optional[int] = Field(default=None, ge=2, le=64, strict=True)

    @field_validator("rows")
    @classmethod
    def _letters(cls, rows: dict[str, str]) -> dict[str, str]:
        for letter in rows:
            if not (len(letter) == 1 and letter.upper() in "ABCDEFGH"):
                raise ValueError(f"matrix rows are the letters A to H, not {letter!r}")
        missing = [inp for inp in INPUTS if inp not in rows.values()]
        if missing:
            raise ValueError(f"no matrix row carries the {missing[0]} input")
        return {k.upper(): v for k, v in rows.items()}


class MatrixSelector(Selector):
    """Each selection is one ``exclusiveclose``, sent only when the crosspoints change."""

    def __init__(self, station, name: str, matrix: MatrixWiring):
        self.station, self.name = station, name
        self.matrix: Keithley707B = station.drivers[name]
        self.n_rows, self.n_cols = matrix.array.rows, matrix.array.cols
        # input -> matrix row letter (the first letter when an input has several rows)
        self.letter = {inp: letter for letter, inp in sorted(matrix.rows.items(), reverse=True)}
        self.row: int | None = None
        self.cols: tuple[int, ...] | None = None
        self._closed: str | None = None
        self.link_node = matrix.tsplink_node
        station.cached(self.forget)

    def forget(self) -> None:
        self._closed = None

    def _xp(self, line: int, inp: str) -> str:
        return f"{line // 12 + 1}{self.letter[inp]}{line % 12 + 1:02d}"

    def _crosspoints(self, row: int, cols: Sequence[int], route: Route) -> str:
        bl, sl, wl = (lambda j: j), (lambda i: self.n_cols + i), (lambda i: self.n_cols + self.n_rows + i)
        xps = [self._xp(wl(row), "gate")]
        if route in ("read", "bl"):
            xps += [self._xp(bl(j), "read" if route == "read" else "pulse") for j in cols]
            xps.append(self._xp(sl(row), "gnd"))
        else:  # RESET: source line driven, selected bit lines grounded, the rest inhibited
            xps.append(self._xp(sl(row), "pulse"))
            xps += [self._xp(bl(j), "gnd" if j in cols else "pulse") for j in range(self.n_cols)]
        return ",".join(xps)

    def cell_routes(self, row: int, cols: Sequence[int]) -> list[str]:
        return [self._crosspoints(row, [int(c)], "read") for c in cols]

    def select(self, row: int, cols: Sequence[int], route: Route) -> None:
        if route == "vmm":
            raise RuntimeError("a switch matrix bench has no vector multiplier")
        cols = tuple(cols)
        spec = self._crosspoints(row, cols, route)
        if spec != self._closed:
            with self.station.guard(self.name, f"closing the crosspoints of row {row}"):
                self.matrix.exclusive_close(spec)
                self.matrix.ask("*OPC?")
            self._closed = spec
        self.row, self.cols = row, cols

    def deselect(self) -> None:
        with self.station.guard(self.name, "opening every crosspoint"):
            self.matrix.open_all()
            self.matrix.ask("*OPC?")
        self._closed = ""


class Plugin(InstrumentPlugin):
    model = "keithley707b"
    description = "Keithley 707B switching matrix (TSP), up to six 8x12 cards"
    roles = frozenset({"addresser"})
    idn_model = r"(MODEL )?707B"
    emulator = "simulated_bench.instruments.keithley707b:Keithley707BEmulator"
    wiring_section = "matrix"
    wiring_schema = MatrixWiring

    @classmethod
    def driver_class(cls) -> type:
        return Keithley707B

    @classmethod
    def selector(cls, station, name, wiring: Mapping[str, Any]):
        return MatrixSelector(station, name, wiring["matrix"])

    @classmethod
    def arrays(cls, station, name, wiring):
        shape = wiring["matrix"].array
        return {"A": (shape.rows, shape.cols)}

    @classmethod
    def emulator_options(cls, wiring) -> dict:
        m = wiring["matrix"]
        return {"matrix": {"rows": dict(m.rows), "array": {"rows": m.array.rows, "cols": m.array.cols}},
                "tsplink_node": m.tsplink_node}
