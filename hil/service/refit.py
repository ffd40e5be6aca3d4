"""Incremental re-factorization: repair a mapped matrix after new faults by moving as few devices as possible.

Warm start from what is programmed (the host's reference conductances of MA and MB) with
the new fault masks. A stuck device in row i of MA spoils only row i of the product,
one in column j of MB only column j, so the repair is a set of line problems:

    row i of MA:    min || a @ W_B - sign_i * alpha * M[i, :] ||     0 <= a <= g_max
    column j of MB: min || W_A @ (sign_B * b) - alpha * M[:, j] ||   0 <= b <= g_max

with the stuck entries fixed at their values. Each is solved with a sparse change
(:func:`sparse_refit`): devices join the moving set one at a time, largest gradient
first, and the bounded least-squares problem is re-solved on that set, until the line's
residual is back to its pre-fault value. Then every device whose new target is within the
write-and-verify band of what it holds is dropped from the set (writing it would land in
the same band) and the rest re-solved: only cells whose target moves beyond the band are
re-programmed. The penalty on moving programmed devices is thus an l0 budget grown
greedily, which keeps the write count to what the fidelity needs.

Rows of MA are repaired first, then columns of MB against the repaired MA. Checksum
columns are never re-programmed for a repair: the host's reference absorbs the change.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import lsq_linear

from hil.factorization import DeviceWindow, SolverParams

from .mapping import MappedMatrix, compensate_pairs, map_factorized

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class RefitParams:
    """Sparse repair settings."""

    band: float = 15e-6  #: S, write-and-verify band: smaller moves are not written (seed 003: +-15 uS)
    slack: float = 1.05  #: a line is repaired once its residual is within this factor of its pre-fault one
    max_support: int = 48  #: most devices moved per line
    min_gain: float = 0.002  #: stop growing a line's moving set once a device cuts its residual by less than this
    g_max: float = 150e-6  #: S, top of the window


@dataclass
class LineRepair:
    stage: int
    line: int  # row of MA (stage 0) or column of MB (stage 1)
    moved: NDArray[np.intp]  # indices along the line that get new targets
    residual_before: float
    residual_fault: float
    residual_after: float


@dataclass
class RepairPlan:
    """New targets (NaN: leave the device alone) per stage, and the line repairs behind them."""

    targets: list[FloatArray]
    lines: list[LineRepair] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return int(sum(np.isfinite(t).sum() for t in self.targets))

    def masks(self) -> list[NDArray[np.bool_]]:
        return [np.isfinite(t) for t in self.targets]


def sparse_refit(a_mat: FloatArray, y: FloatArray, x0: FloatArray, free: NDArray[np.bool_], upper: float,
                 target_res: float, p: RefitParams) -> tuple[FloatArray, NDArray[np.intp]]:
    """min ||a_mat @ x - y|| over a sparse set of moved free entries (0 <= x <= upper); returns (x, moved)."""
    x = x0.copy()
    support: list[int] = []
    cand = free.copy()

    def solve(sup: list[int]) -> FloatArray:
        xs = x0.copy()
        if sup:
            idx = np.array(sup)
            rhs = y - a_mat @ xs + a_mat[:, idx] @ xs[idx]
            res = lsq_linear(a_mat[:, idx], rhs, bounds=(0.0, upper), method="bvls")
            xs[idx] = res.x
        return xs

    res = np.linalg.norm(a_mat @ x - y)
    col_norm = np.linalg.norm(a_mat, axis=0) + 1e-300
    while res > target_res and len(support) < p.max_support and cand.any():
        grad = a_mat.T @ (a_mat @ x - y)
        # a device can only move into the window: at 0 it cannot go down, at upper not up
        room = np.where(grad > 0, x > 0, x < upper)
        score = np.where(cand & room, np.abs(grad) / col_norm, -1.0)
        best = int(np.argmax(score))
        if score[best] <= 0:
            break
        support.append(best)
        cand[best] = False
        x_new = solve(support)
        res_new = np.linalg.norm(a_mat @ x_new - y)
        if res_new > (1.0 - p.min_gain) * res:  # this device barely helps: the line is as good as it gets
            support.pop()
            break
        x, res = x_new, res_new
    moved = [i for i in support if abs(x[i] - x0[i]) > p.band]
    if len(moved) < len(support):
        x = solve(moved)
    return x, np.array(sorted(moved), dtype=np.intp)


def plan_repair(mm: MappedMatrix, new_codes: list[NDArray[np.int8]], p: RefitParams = RefitParams(),
                before: list[FloatArray] | None = None,
                lines: tuple[list[int], list[int]] | None = None) -> RepairPlan:
    """Targets to write after the host learned ``new_codes`` (per stage), from the stages' references.

    ``before`` are the references as they were before the fault (for each line's pre-fault
    residual); default: the present references with the new stuck devices not yet applied.
    ``lines`` (rows of MA, columns of MB) are re-fitted too, fault or not (a polish after the
    writes of a repair landed with their write-and-verify error).
    """
    if len(mm.stages) == 1:
        return _plan_pairs(mm, new_codes[0], p)
    if len(mm.stages) != 2:
        raise ValueError("plan_repair handles the two-stage factorized and the one-stage pair mappings")
    sa, sb = mm.stages
    g_now = [st.g_ref.copy() for st in mm.stages]
    g_pre = [g.copy() for g in (before or g_now)]
    for g, codes in zip(g_now, new_codes):
        g[codes == 1] = 0.0
        g[codes == 2] = p.g_max
    target = mm.scale * mm.target
    targets = [np.full(st.shape, np.nan) for st in mm.stages]
    plan = RepairPlan(targets)
    k, n = sa.n_data, sb.n_data
    changed = [(codes != 0) & (st.codes == 0) for st, codes in zip(mm.stages, new_codes)]
    # rows of MA holding a new fault (data part only; checksum columns need no writes)
    wb = sb.sign[:, None] * g_now[1][:, :n]
    wb_pre = sb.sign[:, None] * g_pre[1][:, :n]
    rows_a = set(np.flatnonzero(changed[0][:, :k].any(axis=1)).tolist()) | set(lines[0] if lines else [])
    cols_b = set(np.flatnonzero(changed[1][:, :n].any(axis=0)).tolist()) | set(lines[1] if lines else [])
    for i in sorted(rows_a):
        y = sa.sign[i] * target[i]
        free = new_codes[0][i, :k] == 0
        r_pre = np.linalg.norm(g_pre[0][i, :k] @ wb_pre - y)
        r_fault = np.linalg.norm(g_now[0][i, :k] @ wb - y)
        x, moved = sparse_refit(wb.T, y, g_now[0][i, :k], free, p.g_max, p.slack * r_pre, p)
        g_now[0][i, :k] = x
        targets[0][i, moved] = x[moved]
        plan.lines.append(LineRepair(0, int(i), moved, float(r_pre), float(r_fault),
                                     float(np.linalg.norm(x @ wb - y))))
    wa = sa.sign[:, None] * g_now[0][:, :k]
    wa_pre = sa.sign[:, None] * g_pre[0][:, :k]
    for j in sorted(cols_b):
        y = target[:, j]
        a_mat = wa * sb.sign[None, :]
        free = new_codes[1][:, j] == 0
        r_pre = np.linalg.norm(wa_pre @ (sb.sign * g_pre[1][:, j]) - y)
        r_fault = np.linalg.norm(a_mat @ g_now[1][:, j] - y)
        x, moved = sparse_refit(a_mat, y, g_now[1][:, j], free, p.g_max, p.slack * r_pre, p)
        g_now[1][:, j] = x
        targets[1][moved, j] = x[moved]
        plan.lines.append(LineRepair(1, int(j), moved, float(r_pre), float(r_fault),
                                     float(np.linalg.norm(a_mat @ x - y))))
    return plan


def _plan_pairs(mm: MappedMatrix, codes: NDArray[np.int8], p: RefitParams) -> RepairPlan:
    """Differential pairs: the partner of a newly stuck device takes the value that restores G+ - G-."""
    st = mm.stages[0]
    g_now = np.where(codes == 1, 0.0, np.where(codes == 2, p.g_max, st.g_ref))
    w_target = mm.scale * mm.target
    g_new = compensate_pairs(g_now, codes, w_target, p.g_max)
    new = (codes != 0) & (st.codes == 0)
    pair_hit = new[0::2] | new[1::2]
    touched = np.repeat(pair_hit, 2, axis=0) & (codes == 0) & (np.abs(g_new - st.g_ref) > p.band)
    targets = [np.where(touched, g_new, np.nan)]
    plan = RepairPlan(targets)
    for i, j in np.argwhere(pair_hit):
        before = st.g_ref[2 * i, j] - st.g_ref[2 * i + 1, j]
        plan.lines.append(LineRepair(0, int(i), np.flatnonzero(touched[2 * i:2 * i + 2, j]),
                                     float(abs(before - w_target[i, j])),
                                     float(abs(g_now[2 * i, j] - g_now[2 * i + 1, j] - w_target[i, j])),
                                     float(abs(g_new[2 * i, j] - g_new[2 * i + 1, j] - w_target[i, j]))))
    return plan


def plan_full_remap(mm: MappedMatrix, new_codes: list[NDArray[np.int8]], k: int, rng: np.random.Generator | int,
                    p: RefitParams = RefitParams(), solver: SolverParams = SolverParams(max_iter=3000, converging_iter=0)
                    ) -> tuple[MappedMatrix, RepairPlan]:
    """The baseline: factorize again on the same arrays with the new masks; every device whose new target
    leaves the band around what it holds is re-programmed."""
    checks = mm.stages[0].n_check > 0
    fresh = map_factorized(mm.target, k, new_codes[0], new_codes[1], rng, DeviceWindow(p.g_max), solver, checks,
                           (mm.stages[0].array, mm.stages[1].array))
    targets = []
    for st_old, st_new, codes in zip(mm.stages, fresh.stages, new_codes):
        move = (codes == 0) & (np.abs(st_new.g_target - st_old.g_ref) > p.band)
        targets.append(np.where(move, st_new.g_target, np.nan))
    return fresh, RepairPlan(targets)


__all__ = ["RefitParams", "RepairPlan", "LineRepair", "sparse_refit", "plan_repair", "plan_full_remap"]
