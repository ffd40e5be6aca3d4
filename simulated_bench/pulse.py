"""State after a rectangular pulse, for any number of cells at once.

During a pulse of fixed line voltages the cell's state obeys an autonomous scalar ODE
ds/dt = f(s) (the memristor voltage follows the state through the series solve). Its
solution is exact in quadrature: the time to move from s_a to s_b is the integral of
ds / f(s). So instead of stepping a stiff ODE in time, each distinct set of line
voltages gets a table of the cumulative traversal time tau(s) on a fine state grid,
with 1/|f| integrated as a log-linear function between grid points (exact for the
exponential dependences of the models) and the edges of no-motion regions (the
Stanford model's F_min field threshold) located by bisection. A pulse of width w on a
cell at s0 then lands at tau^-1(tau(s0) + w): two interpolations, whatever w is
(nanoseconds or milliseconds), and tables are cached per line-voltage set.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .cell import CellParams, solve_cell
from .devices.base import DeviceModel, FloatArray, state_bounds

#: traversal time standing in for "never" (no motion in that stretch), seconds
NEVER = 1e30
GRID_POINTS = 2048
_BISECT_ITER = 24
#: time-axis spacer (s) standing for a barrier between runs of motion in a table
_RUN_SPACER = 1.0


@dataclass(frozen=True)
class PulseTable:
    """Cumulative traversal time ``tau`` (s) along ``state`` in the direction of motion."""

    state: FloatArray  # ordered along the motion
    tau: FloatArray  # non-decreasing, starts at 0
    moves: bool  # False: nothing moves at these voltages
    #: per segment: True where motion never crosses it (a still stretch or the edge before one)
    barrier: FloatArray | None = None
    #: per segment: tau where motion starting in it stops (the end of its run of moving segments)
    stop: FloatArray | None = None

    def advance(self, s0: FloatArray, width: FloatArray) -> FloatArray:
        """States reached from ``s0`` after ``width`` seconds (both broadcast)."""
        if not self.moves:
            return np.array(s0, dtype=float, copy=True)
        ascending = self.state[-1] > self.state[0]
        key = self.state if ascending else -self.state
        x0 = np.asarray(s0, float) if ascending else -np.asarray(s0, float)
        t0 = np.interp(x0, key, self.tau)
        if self.barrier is None:
            return np.interp(t0 + width, self.tau, self.state)
        seg = np.clip(np.searchsorted(key, x0, side="right") - 1, 0, self.barrier.size - 1)
        t1 = np.minimum(t0 + width, self.stop[seg])
        return np.where(self.barrier[seg], s0, np.interp(t1, self.tau, self.state))


def _log_mean(y0: FloatArray, y1: FloatArray) -> FloatArray:
    """Logarithmic mean of positive arrays: (y1 - y0) / ln(y1 / y0), y0 where they agree."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = y1 / y0
        lm = (y1 - y0) / np.log(ratio)
    return np.where(np.abs(ratio - 1.0) < 1e-9, 0.5 * (y0 + y1), lm)


def build_table(model: DeviceModel, cell: CellParams, v_bl: float, v_sl: float, v_wl: float,
                points: int = GRID_POINTS) -> PulseTable:
    """Traversal-time table for one set of line voltages (volts)."""
    lo, hi = state_bounds(model)
    s = np.linspace(lo, hi, points)

    def rate(states: FloatArray) -> FloatArray:
        _, v_m = solve_cell(model, cell, states, v_bl, v_sl, v_wl)
        return model.state_rate(states, v_m)

    r = rate(s)
    moving = r != 0
    if not moving.any():
        return PulseTable(s, np.zeros_like(s), False)
    direction = np.sign(r[moving])
    if np.any(direction != direction[0]):
        raise ValueError("device model moves the state both ways under one voltage")
    # edges between moving and still neighbours: find each edge by bisection
    edge = np.nonzero(moving[:-1] != moving[1:])[0]
    if edge.size:
        a, b = s[edge].copy(), s[edge + 1].copy()
        a_moves = moving[edge]
        for _ in range(_BISECT_ITER):
            mid = 0.5 * (a + b)
            m_moves = rate(mid) != 0
            same_as_a = m_moves == a_moves
            a = np.where(same_as_a, mid, a)
            b = np.where(same_as_a, b, mid)
        # the edge point carries the moving side's rate; its still neighbour stays still
        edge_s = np.where(a_moves, a, b)
        s = np.concatenate([s, edge_s])
        r = np.concatenate([r, rate(edge_s)])
        order = np.argsort(s, kind="stable")
        s, r = s[order], r[order]
    if direction[0] < 0:
        s, r = s[::-1], r[::-1]
    inv = np.where(r != 0, 1.0 / np.maximum(np.abs(r), 1e-300), np.inf)
    h = np.abs(np.diff(s))
    start_still = ~np.isfinite(inv[:-1])
    end_still = ~np.isfinite(inv[1:])
    both = ~(start_still | end_still)
    dt = np.full(h.shape, NEVER)
    dt[both] = h[both] * _log_mean(inv[:-1][both], inv[1:][both])
    # a moving point followed by a still one: the still point is the edge itself
    # (within bisection precision), reached but never passed
    barrier = dt >= NEVER
    # Barriers get a finite spacer on the time axis and each run of moving segments its own
    # stop time: a cumulative sum through NEVER would leave every later run's times at
    # ~1e30, where a nanosecond pulse is below float resolution.
    tau = np.concatenate([[0.0], np.cumsum(np.where(barrier, _RUN_SPACER, dt))])
    first_barrier_after = np.searchsorted(np.nonzero(barrier)[0], np.arange(dt.size))
    barrier_starts = np.append(np.nonzero(barrier)[0], dt.size)  # segment k starts at point k
    stop = tau[barrier_starts[first_barrier_after]]
    return PulseTable(s, tau, True, barrier, stop)


class PulseEngine:
    """Applies pulses to many cells, caching one table per distinct line-voltage set."""

    def __init__(self, model: DeviceModel, cell: CellParams, cache_size: int = 4096,
                 grid_points: int = GRID_POINTS):
        self.model = model
        self.cell = cell
        self.grid_points = grid_points
        self._cache: OrderedDict[tuple[float, float, float], PulseTable] = OrderedDict()
        self._cache_size = cache_size

    def table(self, v_bl: float, v_sl: float, v_wl: float) -> PulseTable:
        key = (round(float(v_bl), 9), round(float(v_sl), 9), round(float(v_wl), 9))
        tab = self._cache.get(key)
        if tab is None:
            tab = build_table(self.model, self.cell, *key, points=self.grid_points)
            self._cache[key] = tab
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return tab

    def apply(self, state: ArrayLike, v_bl: ArrayLike, v_sl: ArrayLike, v_wl: ArrayLike,
              width: ArrayLike) -> FloatArray:
        """New states of cells at ``state`` after a pulse (all arguments broadcast).

        ``width`` is the effective duration per cell in seconds (already scaled by any
        device-to-device or cycle-to-cycle rate factor).
        """
        if np.ndim(v_bl) == np.ndim(v_sl) == np.ndim(v_wl) == 0:
            # one line-voltage set for every cell (a row pulse): one table, no grouping
            if v_bl == v_sl:
                return np.array(state, dtype=float, copy=True)
            return self.table(v_bl, v_sl, v_wl).advance(np.asarray(state, float), np.asarray(width, float))
        state, v_bl, v_sl, v_wl, width = np.broadcast_arrays(
            *(np.asarray(a, float) for a in (state, v_bl, v_sl, v_wl, width)))
        out = state.copy()
        volts = np.stack([v_bl.ravel(), v_sl.ravel(), v_wl.ravel()], axis=1)
        # cells with no potential across them cannot move: skip them cheaply
        live = volts[:, 0] != volts[:, 1]
        if not live.any():
            return out
        flat_state, flat_width, flat_out = state.ravel(), width.ravel(), out.reshape(-1)
        uniq, inverse = np.unique(volts[live], axis=0, return_inverse=True)
        live_idx = np.nonzero(live)[0]
        for k, (vb, vs, vw) in enumerate(uniq):
            idx = live_idx[inverse.ravel() == k] if len(uniq) > 1 else live_idx
            flat_out[idx] = self.table(vb, vs, vw).advance(flat_state[idx], flat_width[idx])
        return out
