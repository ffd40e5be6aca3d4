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

from hil.bench import Bench

from .read import read_cells
from .runner import Drive, Page, Run, device_model, execute


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
        for f in dataclasses.fields(self):
            if not np.isfinite(getattr(self, f.name)):
                raise ValueError(f"forming parameter {f.name} must be a finite number, got {getattr(self, f.name)!r}")
        if (self.v_max - self.v_start) / max(self.v_step, 1e-12) > 10000:
            raise ValueError(f"a ramp of {self.v_start:g}..{self.v_max:g} V in {self.v_step:g} V steps has over "
                             "10000 pulses: raise v_step")
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


class FormPage(Page):
    """Forming: per row, a ramp until every cell reads at or below ``r_target``."""

    name, label = "form", "form"
    fields = {"v_form": (float, np.nan), "r_final": (float, np.nan)}

    def __init__(self, p: FormParams):
        self.p = p
        self.pulses = 0

    def params(self, rows, cols):
        return {"params": dataclasses.asdict(self.p), "rows": rows, "cols": cols}

    def plan(self) -> list[Drive]:
        p = self.p
        return [Drive("v_max (the top of the forming ramp)", amplitudes=p.ramp, widths=[p.width]),
                Drive("gate (the forming compliance)", gates=[p.gate]),
                Drive("width (the forming pulse)", widths=[p.width]),
                Drive("v_read / read_gate", amplitudes=[p.v_read], gates=[p.read_gate])]

    def start(self, run: Run) -> None:
        if run.resumed:
            self.v_form, self.r_final = run.store.cells("v_form"), run.store.cells("r_final")
        else:
            self.v_form, self.r_final = np.full(run.shape, np.nan), np.full(run.shape, np.nan)

    def confirm(self, run: Run) -> None:
        """Rows the file calls formed are re-read; a row with a formed cell no longer below r_target is redone."""
        p = self.p
        v_form = run.store.cells("v_form")
        for ri in np.nonzero(run.done.all(axis=1))[0]:
            formed = np.isfinite(v_form[ri])
            if not formed.any():
                continue
            g, _ = read_cells(run.bench, int(run.rows[ri]), run.cols[formed], p.v_read, p.read_gate, p.n_read)
            if np.any(g < 1.0 / p.r_target):
                run.reopen_rows([ri])

    def row(self, run: Run, ri: int) -> None:
        p, bench, cols = self.p, run.bench, run.cols
        row = int(run.rows[ri])
        g_form = 1.0 / p.r_target
        v_form = self.v_form[ri]
        v_form[:] = np.nan
        g, _ = read_cells(bench, row, cols, p.v_read, p.read_gate, p.n_read)
        v_form[g >= g_form] = 0.0
        for v in p.ramp:
            todo = ~np.isfinite(v_form)
            if not todo.any():
                break
            bench.pulse_row(row, cols[todo], float(v), p.width, p.gate, g_before=g[todo])
            self.pulses += int(todo.sum())
            g_t, _ = read_cells(bench, row, cols[todo], p.v_read, p.read_gate, p.n_read, g[todo])
            g[todo] = g_t
            newly = np.zeros(cols.size, bool)
            newly[todo] = g_t >= g_form
            v_form[newly] = v
        self.r_final[ri] = 1.0 / np.maximum(g, 1e-15)
        run.bar.update(pulses=0)
        run.save_row(ri, v_form=v_form, r_final=self.r_final[ri])

    def finish(self, run: Run) -> "FormResult":
        formed = np.isfinite(self.v_form)
        never = [(int(run.rows[r]), int(run.cols[c])) for r, c in np.argwhere(~formed)]
        return FormResult(formed, self.v_form, self.r_final, run.rows, run.cols, self.pulses, never)


def form(bench: Bench, params: FormParams | None = None, *, rows=None, cols=None, out: str | None = None,
         chip_id: str = "", bench_file: str | None = None, resume: bool = True, overwrite: bool = False,
         progress: bool = False) -> FormResult:
    """Form the cells of a region; with ``out`` each finished row streams to the run file (resumable).

    The whole ramp (up to ``v_max`` at ``gate``) is checked against the bench limits
    before the first pulse.
    """
    p = params or FORM_PRESETS.get(device_model(bench), FormParams())
    return execute(bench, FormPage(p), rows, cols, out=out, resume=resume, overwrite=overwrite, chip_id=chip_id,
                   bench_file=bench_file, progress=progress)
