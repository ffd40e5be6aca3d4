"""Electroforming / first SET: a voltage ramp under a gate-limited compliance, per row.

Every cell of a row that is not yet formed gets the same pulse; after each pulse the
row is read and cells whose resistance fell to ``r_target`` or below are formed (their
forming voltage is kept) and receive no more pulses. Cells still above ``r_target``
at the top of the ramp are reported as never formed. The word-line voltage is the
compliance: the access transistor caps the forming current.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hil.progress import Progress
from hil.bench import Bench

from .common import finishing, open_run
from .ispp import device_model
from .read import read_cells


@dataclass(frozen=True)
class FormParams:
    v_start: float = 1.0  # V, first ramp pulse
    v_step: float = 0.1  # V
    v_max: float = 3.0  # V, top of the ramp
    gate: float = 1.2  # V on the word line: the compliance
    width: float = 1e-6  # s
    r_target: float = 20e3  # ohm, formed at or below
    v_read: float = 0.05  # V
    read_gate: float = 3.0  # V
    n_read: int = 1

    def __post_init__(self) -> None:
        if not (0 < self.v_start <= self.v_max and self.v_step > 0 and self.r_target > 0):
            raise ValueError("need 0 < v_start <= v_max, v_step > 0, r_target > 0")

    @property
    def ramp(self) -> NDArray[np.float64]:
        n = int(np.floor((self.v_max - self.v_start) / self.v_step + 1e-9)) + 1
        return np.round(self.v_start + self.v_step * np.arange(n), 6)


#: seed 004 forms its Cu:Te device at 2 V with ms pulses at a 3 V gate
FORM_PRESETS = {"stanford_gap": FormParams(),
                "cute_multilevel": FormParams(v_start=0.8, v_step=0.1, v_max=2.5, gate=3.0, width=1e-3)}


@dataclass
class FormResult:
    formed: NDArray[np.bool_]  # formed by the ramp or already below r_target
    v_form: NDArray[np.float64]  # V of the pulse that formed the cell (0 = already formed, NaN = never)
    r_final: NDArray[np.float64]  # ohm, last read
    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    pulses: int = 0
    never_formed: list[tuple[int, int]] = field(default_factory=list)


def form(bench: Bench, params: FormParams | None = None, *, rows=None, cols=None, out: str | None = None,
         chip_id: str = "", bench_file: str | None = None, resume: bool = True, progress: bool = False) -> FormResult:
    """Form the cells of a region; with ``out`` each finished row streams to the run file (resumable)."""
    p = params or FORM_PRESETS.get(device_model(bench), FormParams())
    rows_idx = np.arange(bench.rows) if rows is None else np.asarray(rows, dtype=np.intp)
    cols_idx = np.arange(bench.cols) if cols is None else np.asarray(cols, dtype=np.intp)
    shape = (rows_idx.size, cols_idx.size)
    v_form = np.full(shape, np.nan)
    r_final = np.full(shape, np.nan)
    store = None
    if out is not None:
        store = open_run(bench, out, "form", {"params": dataclasses.asdict(p), "rows": rows_idx, "cols": cols_idx},
                         shape, chip_id=chip_id, bench_file=bench_file, resume=resume)
        store.cell_field("v_form", float, np.nan)
        store.cell_field("r_final", float, np.nan)
        if store.resumed:
            v_form[:], r_final[:] = store.cells("v_form"), store.cells("r_final")
    done = store.done.all(axis=1) if store is not None else np.zeros(shape[0], bool)
    g_form = 1.0 / p.r_target
    n_pulses = 0
    bar = Progress(shape[0] * shape[1], "form", enabled=progress, initial=int(done.sum()) * shape[1])
    with finishing(store, bench, bar):
        for ri, row in enumerate(rows_idx):
            if done[ri]:
                continue
            row = int(row)
            g, _ = read_cells(bench, row, cols_idx, p.v_read, p.read_gate, p.n_read)
            v_form[ri, g >= g_form] = 0.0
            for v in p.ramp:
                todo = ~np.isfinite(v_form[ri])
                if not todo.any():
                    break
                bench.pulse_row(row, cols_idx[todo], float(v), p.width, p.gate)
                n_pulses += int(todo.sum())
                g_t, _ = read_cells(bench, row, cols_idx[todo], p.v_read, p.read_gate, p.n_read, g[todo])
                g[todo] = g_t
                newly = np.zeros(shape[1], bool)
                newly[todo] = g_t >= g_form
                v_form[ri, newly] = v
            r_final[ri] = 1.0 / np.maximum(g, 1e-15)
            if store is not None:
                store.write_cells(np.full(shape[1], ri), np.arange(shape[1]), done=True, v_form=v_form[ri],
                                  r_final=r_final[ri])
                store.flush()
            bar.update(cells=shape[1], pulses=0)
    formed = np.isfinite(v_form)
    never = [(int(rows_idx[r]), int(cols_idx[c])) for r, c in np.argwhere(~formed)]
    return FormResult(formed, v_form, r_final, rows_idx, cols_idx, n_pulses, never)
