"""Fast DC solver for a 1T1R crossbar with wire resistance (sparse nodal analysis).

Geometry (the SPICE netlists in ``simulated_bench.spice.netlist`` use the same): row i
has word line WL_i and source line SL_i driven from the column-0 end; column j has bit
line BL_j terminated at the last row's end; every line has ``r`` ohms per segment,
driver-to-first-cell included. Cell (i, j) sits between BL node (i, j) and SL node
(i, j) with its gate on WL_i. Gates draw no DC current, so word-line resistance does not
change a DC operating point and every gate sits at its driver's voltage.

Unknowns are every cell's internal node (memristor-transistor junction) and the BL and
SL node voltages at every cell (a line with zero resistance has none: its nodes are its
driver). The memristor and transistor are evaluated explicitly from the device model
and ``simulated_bench.transistor``, so no inner iteration is needed. The solver runs
chord iterations: one sparse LU of the Jacobian linearised at the read point (the
drivers' voltages) serves every input vector of a batch and later calls on the same
array state and gate voltages; it is refactored at the current point (a Newton step)
only when convergence slows, so the nonlinear I-V is solved to round-off while the
factorisation is reused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.sparse.linalg import splu

from .cell import CellConfig, CellParams
from .devices.base import DeviceModel, FloatArray
from .transistor import drain_current


@dataclass(frozen=True)
class WireParams:
    """Resistance of one line segment between neighbouring cells (ohms) on each line kind.

    The driver-to-first-cell segment counts as one segment. Zero means an ideal line.
    """

    r_wl: float = 0.0
    r_bl: float = 0.0
    r_sl: float = 0.0

    def __post_init__(self) -> None:
        for name in ("r_wl", "r_bl", "r_sl"):
            r = getattr(self, name)
            if not (np.isfinite(r) and r >= 0):
                raise ValueError(f"{name} must be a finite resistance >= 0 ohm, got {r!r}")

    @classmethod
    def uniform(cls, r_segment: float) -> WireParams:
        """The same segment resistance (ohm) on word, bit and source lines."""
        return cls(r_segment, r_segment, r_segment)

    @property
    def ideal(self) -> bool:
        """True when no line that carries DC current has resistance."""
        return self.r_bl == 0 and self.r_sl == 0


@dataclass(frozen=True)
class CrossbarSolution:
    """DC operating point of a (batch of) crossbar drive(s).

    Shapes carry the batch dimensions of the inputs first: node voltages and cell
    currents (..., rows, cols), driver currents (..., cols) and (..., rows).
    """

    v_bl_node: FloatArray  # V, bit-line voltage at each cell
    v_sl_node: FloatArray  # V, source-line voltage at each cell
    cell_current: FloatArray  # A, BL -> SL through each cell
    i_bl: FloatArray  # A, delivered by each bit-line driver into the array
    i_sl: FloatArray  # A, delivered by each source-line driver into the array
    iterations: int
    factorisations: int


class CrossbarSolver:
    """Solves one array (fixed states and gate voltages) for any number of line drives.

    Parameters
    ----------
    model, cell : device model and 1T1R cell design.
    state : (rows, cols) device states.
    wires : segment resistances; word-line resistance does not enter a DC solve.
    v_wl : (rows,) word-line (gate) voltages, V.
    v_tol : convergence on the node-voltage update, V.
    """

    max_iter = 200
    #: chord contraction beyond which the Jacobian is refactored at the current point
    slow_rate = 0.5
    #: largest node-voltage change per iteration (V): keeps Newton inside the exponential's reach
    max_step = 0.2

    def __init__(self, model: DeviceModel, cell: CellParams, state: ArrayLike, wires: WireParams,
                 v_wl: ArrayLike, v_tol: float = 1e-13):
        self.model, self.cell, self.wires = model, cell, wires
        self.state = np.array(state, float)
        self.rows, self.cols = self.state.shape
        self.v_wl = np.array(np.broadcast_to(np.asarray(v_wl, float), (self.rows,)))
        self.v_tol = v_tol
        self.mod = cell.config is CellConfig.MOD
        r, c = self.rows, self.cols
        cells = r * c
        self.free_bl = wires.r_bl > 0
        self.free_sl = wires.r_sl > 0
        # unknown layout: internal nodes, then free bit-line nodes, then free source-line nodes
        self._ix = np.arange(cells).reshape(r, c)
        nxt = cells
        self._ib = self._is = None
        if self.free_bl:
            self._ib = (nxt + np.arange(cells)).reshape(r, c)
            nxt += cells
        if self.free_sl:
            self._is = (nxt + np.arange(cells)).reshape(r, c)
            nxt += cells
        self.n = nxt
        self._laplacian = self._wire_matrix()
        self._lu = None
        self.factorisations = 0

    # assembly ---------------------------------------------------------------------------
    def _wire_matrix(self) -> sp.csr_matrix:
        rows_, cols_, vals = [np.zeros(0, int)], [np.zeros(0, int)], [np.zeros(0)]

        def chain(idx: np.ndarray, g: float, driver_end: np.ndarray) -> None:
            # idx: (lines, nodes) consecutive nodes along each line; driver_end: the nodes touching a driver
            a, b = idx[:, :-1].ravel(), idx[:, 1:].ravel()
            rows_.extend([a, b, a, b, driver_end])
            cols_.extend([a, b, b, a, driver_end])
            vals.extend([np.full(a.size, g), np.full(a.size, g), np.full(a.size, -g), np.full(a.size, -g),
                         np.full(driver_end.size, g)])

        if self.free_bl:
            # bit line j runs from its driver at the last row up to row 0
            chain(self._ib.T[:, ::-1], 1.0 / self.wires.r_bl, self._ib[-1, :])
        if self.free_sl:
            chain(self._is, 1.0 / self.wires.r_sl, self._is[:, 0])
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows_), np.concatenate(cols_))),
                             shape=(self.n, self.n))

    def _cell_matrix(self, t_a: FloatArray, t_x: FloatArray, b_x: FloatArray, b_s: FloatArray) -> sp.csr_matrix:
        """Cell Jacobian entries: top element (BL -> X) partials t_a, t_x; bottom (X -> SL) b_x, b_s."""
        ix = self._ix.ravel()
        r_, c_, v_ = [ix], [ix], [(b_x - t_x).ravel()]  # X: I_bottom - I_top = 0
        if self.free_bl:
            ib = self._ib.ravel()
            r_ += [ib, ib, ix]
            c_ += [ib, ix, ib]
            v_ += [t_a.ravel(), t_x.ravel(), -t_a.ravel()]
        if self.free_sl:
            is_ = self._is.ravel()
            r_ += [is_, is_, ix]
            c_ += [is_, ix, is_]
            v_ += [-b_s.ravel(), -b_x.ravel(), b_s.ravel()]
        return sp.csr_matrix((np.concatenate(v_), (np.concatenate(r_), np.concatenate(c_))), shape=(self.n, self.n))

    def _factorise(self, parts: tuple[FloatArray, ...]) -> None:
        mean = tuple(p.mean(axis=0) for p in parts)
        # minimum-degree ordering on A^T + A suits the grid-like crossbar graph (less fill than COLAMD)
        self._lu = splu((self._laplacian + self._cell_matrix(*mean)).tocsc(), permc_spec="MMD_AT_PLUS_A",
                        diag_pivot_thresh=0.1, options={"SymmetricMode": True})
        self.factorisations += 1

    def _solve_lu(self, f: FloatArray) -> FloatArray:
        """LU solve of (n, batch) right-hand sides.

        One column at a time: SuperLU's multi-column solve scales far worse than linearly
        with the batch (180 columns on a 65 x 100 array: ~5 s at once, ~0.15 s by column).
        """
        if f.shape[1] == 1:
            return self._lu.solve(f)
        out = np.empty_like(f)
        for k in range(f.shape[1]):
            out[:, k] = self._lu.solve(f[:, k])
        return out

    # device evaluation --------------------------------------------------------------------
    def _elements(self, u: FloatArray, x: FloatArray, w: FloatArray) -> tuple[FloatArray, ...]:
        """Top (BL -> X) and bottom (X -> SL) element currents and partials, each (batch, rows, cols)."""
        vg = self.v_wl[None, :, None]
        if self.mod:
            i_t = self.model.current(self.state, u - x)
            gm = self.model.d_current_dv(self.state, u - x)
            i_b, b_x, b_s = drain_current(self.cell.nmos, vg, x, w)
            return i_t, gm, -gm, i_b, b_x, b_s
        i_t, t_a, t_x = drain_current(self.cell.nmos, vg, u, x)
        i_b = self.model.current(self.state, x - w)
        gm = self.model.d_current_dv(self.state, x - w)
        return i_t, t_a, t_x, i_b, gm, -gm

    def _initial_x(self, u: FloatArray, w: FloatArray) -> FloatArray:
        """Internal nodes from the zero-bias divider of memristor and transistor conductances."""
        g_m = self.model.conductance(self.state)
        v_ov = np.maximum(self.v_wl[None, :, None] - np.minimum(u, w) - self.cell.nmos.v_th, 0.0)
        g_t = self.cell.nmos.beta * v_ov + self.cell.nmos.g_off
        g_top, g_bot = (g_m, g_t) if self.mod else (g_t, g_m)
        return (g_top * u + g_bot * w) / (g_top + g_bot)

    # solve ------------------------------------------------------------------------------
    def solve(self, v_bl: ArrayLike, v_sl: ArrayLike) -> CrossbarSolution:
        """Operating point(s) for bit-line drives ``v_bl`` (..., cols) and source-line drives ``v_sl`` (..., rows)."""
        v_bl = np.asarray(v_bl, float)
        v_sl = np.asarray(v_sl, float)
        if v_bl.shape[-1:] != (self.cols,) or v_sl.shape[-1:] != (self.rows,):
            raise ValueError(f"v_bl must end in ({self.cols},) and v_sl in ({self.rows},), "
                             f"got {v_bl.shape} and {v_sl.shape}")
        batch = np.broadcast_shapes(v_bl.shape[:-1], v_sl.shape[:-1])
        vb = np.broadcast_to(v_bl, batch + (self.cols,)).reshape(-1, self.cols)
        vs = np.broadcast_to(v_sl, batch + (self.rows,)).reshape(-1, self.rows)
        bsz = vb.shape[0]
        shape = (bsz, self.rows, self.cols)
        u0 = np.broadcast_to(vb[:, None, :], shape)
        w0 = np.broadcast_to(vs[:, :, None], shape)
        # unknowns as (n, batch); the driver of each line injects g * v_driver at its end node
        z = np.zeros((self.n, bsz))
        rhs = np.zeros((self.n, bsz))
        z[self._ix.ravel()] = self._initial_x(u0, w0).reshape(bsz, -1).T
        if self.free_bl:
            z[self._ib.ravel()] = u0.reshape(bsz, -1).T
            rhs[self._ib[-1, :]] = vb.T / self.wires.r_bl
        if self.free_sl:
            z[self._is.ravel()] = w0.reshape(bsz, -1).T
            rhs[self._is[:, 0]] = vs.T / self.wires.r_sl

        def unpack(z: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
            x = z[self._ix.ravel()].T.reshape(shape)
            u = z[self._ib.ravel()].T.reshape(shape) if self.free_bl else u0
            w = z[self._is.ravel()].T.reshape(shape) if self.free_sl else w0
            return u, x, w

        iterations = 0
        last_step = np.inf
        while True:
            u, x, w = unpack(z)
            i_t, t_a, t_x, i_b, b_x, b_s = self._elements(u, x, w)
            if self._lu is None:
                self._factorise((t_a, t_x, b_x, b_s))
            f = self._laplacian @ z - rhs
            f[self._ix.ravel()] += (i_b - i_t).reshape(bsz, -1).T
            if self.free_bl:
                f[self._ib.ravel()] += i_t.reshape(bsz, -1).T
            if self.free_sl:
                f[self._is.ravel()] -= i_b.reshape(bsz, -1).T
            dz = self._solve_lu(f)
            step = float(np.max(np.abs(dz)))
            damped = step > self.max_step
            z = z - (dz * (self.max_step / step) if damped else dz)
            iterations += 1
            # converged, or stalled at round-off just above the tolerance
            if step <= self.v_tol or (step <= 1e3 * self.v_tol and step >= 0.5 * last_step):
                break
            if iterations >= self.max_iter:
                raise RuntimeError(f"crossbar solve did not converge in {self.max_iter} iterations "
                                   f"(last update {step:.3g} V)")
            if damped or step > self.slow_rate * last_step:
                # the linearisation point is stale: refactor here (a Newton step)
                u, x, w = unpack(z)
                _, t_a, t_x, _, b_x, b_s = self._elements(u, x, w)
                self._factorise((t_a, t_x, b_x, b_s))
            last_step = step
        u, x, w = unpack(z)
        # report the element current the driver lines see (top for BL, bottom for SL); equal at convergence
        i_t, _, _, i_b, _, _ = self._elements(u, x, w)
        out_shape = batch + (self.rows, self.cols)
        i_cell = (0.5 * (i_t + i_b)).reshape(out_shape)
        return CrossbarSolution(np.array(u).reshape(out_shape), np.array(w).reshape(out_shape), i_cell,
                                i_t.reshape(out_shape).sum(axis=-2), -i_b.reshape(out_shape).sum(axis=-1),
                                iterations, self.factorisations)


def solve_crossbar(model: DeviceModel, cell: CellParams, state: ArrayLike, wires: WireParams,
                   v_wl: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike) -> CrossbarSolution:
    """One-shot :class:`CrossbarSolver` solve (voltages in V, resistances in ohm)."""
    return CrossbarSolver(model, cell, state, wires, v_wl).solve(v_bl, v_sl)
