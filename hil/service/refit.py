"""Incremental re-factorization: repair a mapped matrix after new faults by moving as few devices as possible.

Warm start from what is programmed (the host's reference conductances of MA and MB) with
the new fault masks. A stuck device in row i of MA spoils only row i of the product,
one in column j of MB only column j, so the repair works on lines:

    row i of MA:    min || a @ W_B - sign_i * c * M[i, :] ||     0 <= a <= g_max
    column j of MB: min || W_A @ (sign_B * b) - c * M[:, j] ||   0 <= b <= g_max

with the stuck entries fixed at their values; c = |P|^2 / <P, M> of the pre-fault product P
(:func:`cos_scale`), at which the squared residual is 1 - cos linearised at P, so a repair
cannot trade the product's angle for its length. Two stages:

1. support selection (:func:`line_path`): on every line a fault touched, and on the first
   few moves of every line that crosses a damaged line of the product (a column of MB
   crosses the product row a fault on MA spoiled), devices join the moving set largest normalised gradient
   first, with an exact bounded refit on the set at each step; each step's predicted cost
   is the residual^2 plus the write error (sd ``sigma_at``) of the devices it writes;
2. a shared budget (:func:`allocate`): supports grow where a write cuts the product's
   squared residual the most, until it is back to ``slack``^2 x its pre-fault value. This
   is the penalty on moving programmed devices, as an l0 budget: a write is bought only
   while it buys fidelity (at least ``min_cut`` of its line's residual^2), wherever it buys
   the most. Then each chosen support is refitted exactly (:func:`finish_line`, columns of
   MB against the repaired MA) and devices whose target stays within the write-and-verify
   band of what they hold are dropped: only cells that move beyond the band are written.

The session writes the plan, reads back, and while the read-back product is still above
the budget re-plans around what landed (``ServiceParams.polish_rounds``). Checksum
columns are never re-programmed for a repair: the host's reference absorbs the change.

That line planner (``RefitParams.planner = "lines"``) cannot cancel a stuck device's rank-1
error at bench precision: a row of MA cancels d e_i W_B[l, :] exactly only with a move in
W_B's left null space, ~rank(W_B) + 1 = 50 devices for Re(DFT64) at k = 64. The default
planner (:func:`plan_joint`) prices every working device of both stages against the whole
product's residual, adds the best few, and re-balances the chosen devices of both factors
by alternating exact bounded refits: on the through-bench 1 % case (one-shot, bench write
model) it reaches 1 - cos 1.05x its pre-fault value writing 17 % of the devices, where the
line planner stops at 3.4 % written and 8.6x, and its polish rounds end at 23.9 % and 1.48x
(``benchmarks/reprogram.py --only repair-tradeoff``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import lsq_linear

from hil.factorization import DeviceWindow, SolverParams
from simulated_bench.window_array import WindowParams

from .mapping import MappedMatrix, compensate_pairs, map_factorized, pin_stuck

FloatArray = NDArray[np.float64]


_WINDOW = WindowParams()


@dataclass(frozen=True)
class RefitParams:
    """Sparse repair settings, and the write model the repair plans with.

    The write model is the engine's (:func:`write_model_of`, taken when the mapping is programmed):
    a write of target g is accepted within +-``band_at(g)`` of it and lands with sd ``sigma_at(g)``,
    each an absolute part and a part relative to g + ``g_offset`` (a bench cell's conductance sits on
    its floor, and ISPP's band is relative to what it reads). The defaults are the window-level chip's
    (simulated_bench.window_array: +-15 uS, sigma band / 3)."""

    band: float = _WINDOW.verify_band  #: S, write-and-verify band (absolute part): smaller moves are not written
    write_sigma: float = _WINDOW.write_sigma  #: S, sd of where a verified write lands in its band (absolute part)
    band_rel: float = 0.0  #: band part relative to g + g_offset (a bench's ISPP: accept_fraction x tol_rel)
    write_sigma_rel: float = 0.0  #: sd part relative to g + g_offset (measured on the programming run)
    g_offset: float = 0.0  #: S, what the relative parts are taken above (a bench: the floor under the window)
    slack: float = 1.03  #: the product's residual (write error included) is brought back to this factor of its
    #: pre-fault value (Re(DFT64), 1 % new faults, 40 trials: 1.0 -> 1 - cos <= 1.014x, up to 10.1 % written;
    #: 1.03 -> <= 1.072x, up to 9.1 %)
    max_support: int = 48  #: most devices moved per line
    min_gain: float = 0.002  #: stop growing a line's path once a device cuts its residual by less than this
    min_cut: float = 0.1  #: a device is written only if it cuts its line's squared residual by this fraction
    #: of the line's pre-fault value (net of its own write error); for pairs, of the column's output error
    spare_support: int = 3  #: moves per untouched line offered to the shared budget, on lines that cross a damaged
    #: line of the product (0: only the lines the faults are on)
    pair_support: int = 6  #: most pairs of a column that take up a weight error its own pair cannot
    floor: float = 0.6  #: a line's path stops once its residual is this fraction of its pre-fault one
    g_max: float = 150e-6  #: S, top of the window
    planner: str = "joint"  #: two-stage repairs: "joint" (:func:`plan_joint`, both factors' devices in one greedy)
    #: or "lines" (line-local paths and a shared budget, the planner up to session 6)
    joint_batch: int = 4  #: devices the joint greedy adds per step before its refit (1 is exact greedy; Re(DFT64)
    #: bench 1 % case, one-shot with exact writes at 9.4 % written: batch 4 -> 2.37x, 16 -> 2.67x)
    joint_sweeps: int = 2  #: alternating refit sweeps (rows of MA, then columns of MB) after each step
    joint_min_cut: float = 0.03  #: a device joins the joint support only if its own write cuts at least this
    #: fraction of an average product line's pre-fault residual^2 (lower than ``min_cut``: after the refit a
    #: device buys more than alone; Re(DFT64) bench 1 % case: 0.1 stops at 12 % written and 1.56x, 0.03 reaches
    #: the budget at 17 %)

    write_budget: int | None = None  #: most devices one plan moves (None: as many as ``slack`` needs); the
    #: hybrid repair's refit runs under the writes its patches left it (ServiceParams.patch_write_budget)

    def __post_init__(self) -> None:
        if self.planner not in PLANNERS:
            raise ValueError(f"planner must be one of {PLANNERS}, got {self.planner!r}")
        if self.joint_batch < 1 or self.joint_sweeps < 1:
            raise ValueError("joint_batch and joint_sweeps must be >= 1")

    def band_at(self, g: ArrayLike) -> FloatArray:
        """S, half-width of the write-and-verify band around target(s) ``g``."""
        return np.maximum(self.band, self.band_rel * (np.abs(np.asarray(g, float)) + self.g_offset))

    def sigma_at(self, g: ArrayLike) -> FloatArray:
        """S, sd of where a verified write of target(s) ``g`` lands."""
        return np.hypot(self.write_sigma, self.write_sigma_rel * (np.abs(np.asarray(g, float)) + self.g_offset))

    def write_model(self) -> dict[str, float]:
        """The write-model fields (what :func:`write_model_of` measures and the run file records)."""
        return {k: float(getattr(self, k)) for k in WRITE_MODEL_FIELDS}


PLANNERS = ("joint", "lines")
WRITE_MODEL_FIELDS = ("band", "band_rel", "write_sigma", "write_sigma_rel", "g_offset")


def fit_write_sigma(target: ArrayLike, read: ArrayLike, g_offset: float = 0.0) -> tuple[float, float]:
    """(sigma_abs, sigma_rel) of where verified writes landed: the read-back minus the target of every
    written cell, its square fitted as sigma_abs^2 + (sigma_rel (g + g_offset))^2 by non-negative least
    squares (an absolute part: read noise, the levels too low to program; a relative part: a relative
    verify band). Fewer than 8 cells: the RMS as an absolute sd."""
    from scipy.optimize import nnls

    t, r = np.asarray(target, float).ravel(), np.asarray(read, float).ravel()
    ok = np.isfinite(t) & np.isfinite(r)
    t, e2 = t[ok], (r[ok] - t[ok]) ** 2
    if t.size < 8:
        return (float(np.sqrt(e2.mean())) if t.size else 0.0), 0.0
    a = np.column_stack([np.ones_like(t), (np.abs(t) + g_offset) ** 2])
    coef = nnls(a, e2)[0]
    return float(np.sqrt(coef[0])), float(np.sqrt(coef[1]))


def write_model_of(engine, targets: dict[str, FloatArray], reads: dict[str, FloatArray], p: RefitParams
                   ) -> RefitParams:
    """``p`` with the write model of the engine that wrote ``targets`` (array name -> S, NaN: not written) and
    read back ``reads``: ``engine.write_model(targets, reads)`` (the engine's own: a bench's from its ISPP
    settings and this programming run, the window chip's from its verify band); an engine without one keeps
    ``p``'s."""
    own = getattr(engine, "write_model", None)
    if own is None:
        return p
    fields = own(targets, reads)
    bad = [k for k in fields if k not in WRITE_MODEL_FIELDS]
    if bad:
        raise ValueError(f"engine write model: unknown field {bad[0]!r}; known: {', '.join(WRITE_MODEL_FIELDS)}")
    return replace(p, **{k: float(v) for k, v in fields.items()})


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


@dataclass
class LinePath:
    """The greedy (OMP) path of one line: support order, solution and predicted post-write cost per support size.

    ``cost[s]`` = ||a_mat @ x_s - y||^2 + sum over the first s devices of (sigma_at(x_l) * ||a_mat[:, l]||)^2:
    the residual a write of those s devices is expected to leave, each landing within the band.
    """

    stage: int
    line: int
    a_mat: FloatArray
    y: FloatArray
    x0: FloatArray
    free: NDArray[np.bool_]
    r_pre: float
    order: list[int]
    xs: list[FloatArray]
    cost: FloatArray


def line_path(stage: int, line: int, a_mat: FloatArray, y: FloatArray, x0: FloatArray, free: NDArray[np.bool_],
              r_pre: float, p: RefitParams) -> LinePath:
    """Support selection of one line: devices join largest normalised gradient first, bounded refit each step.

    Stops at ``max_support`` devices, when the residual is at ``floor`` x the pre-fault one (the
    allocation never needs more), or when a device cuts the residual by less than ``min_gain``.
    """
    col_sq = np.sum(a_mat * a_mat, axis=0)
    col_norm = np.sqrt(col_sq) + 1e-300
    x = x0.copy()
    order: list[int] = []
    xs = [x0.copy()]
    res = float(np.linalg.norm(a_mat @ x - y))
    cost = [res ** 2]
    cand = free.copy()
    while len(order) < p.max_support and cand.any() and res > p.floor * r_pre:
        grad = a_mat.T @ (a_mat @ x - y)
        room = np.where(grad > 0, x > 0, x < p.g_max)  # at 0 a device cannot go down, at g_max not up
        score = np.where(cand & room, np.abs(grad) / col_norm, -1.0)
        best = int(np.argmax(score))
        if score[best] <= 0:
            break
        cand[best] = False
        x_new = _solve_on(a_mat, y, x0, order + [best], p.g_max)
        res_new = float(np.linalg.norm(a_mat @ x_new - y))
        if res_new > (1.0 - p.min_gain) * res:  # this device barely helps: the line is as good as it gets
            break
        order.append(best)
        x, res = x_new, res_new
        xs.append(x)
        # a device that moves less than the band is not written (finish_line drops it): no write error
        moved = np.array(order)[np.abs(x[order] - x0[order]) > p.band_at(x[order])]
        cost.append(res ** 2 + float(np.sum(p.sigma_at(x[moved]) ** 2 * col_sq[moved])))
    return LinePath(stage, line, a_mat, y, x0, free, r_pre, order, xs, np.array(cost))


def _solve_on(a_mat: FloatArray, y: FloatArray, x0: FloatArray, sup: list[int], upper: float) -> FloatArray:
    """Exact bounded least squares on the support ``sup``, every other entry held at x0."""
    xs = x0.copy()
    if sup:
        idx = np.array(sup)
        rhs = y - a_mat @ xs + a_mat[:, idx] @ xs[idx]
        xs[idx] = lsq_linear(a_mat[:, idx], rhs, bounds=(0.0, upper), method="bvls").x
    return xs


def allocate(paths: list[LinePath], p: RefitParams, total: float, budget: float) -> list[int]:
    """How many devices each line moves: the fewest writes that bring the squared residual of the product,
    ``total`` now (write error included), within ``budget`` (a shared budget: a line that cannot get back
    is paid for by lines that can go below theirs). Greedy by cut per device, looking ahead along each path
    (paths are not convex: a pair of devices can do what one cannot). A row of MA and a column of MB cut
    the same product's residual, each its own line of it."""
    k = [0] * len(paths)
    while total > budget:
        best, best_rate, best_to = -1, 0.0, 0
        room = len(paths) * p.max_support if p.write_budget is None else p.write_budget - sum(k)
        for n, pa in enumerate(paths):
            c = pa.cost
            if k[n] + 1 >= len(c) or room <= 0:
                continue
            cut = ((c[k[n]] - c[k[n] + 1:]) / np.arange(1, len(c) - k[n]))[:room]
            j = int(np.argmax(cut))
            # a device must pay for itself: cut at least min_cut of its line's pre-fault residual^2
            if cut[j] > best_rate and cut[j] > p.min_cut * pa.r_pre ** 2:
                best, best_rate, best_to = n, float(cut[j]), k[n] + 1 + j
        if best < 0:
            break
        total -= paths[best].cost[k[best]] - paths[best].cost[best_to]
        k[best] = best_to
    return k


def residual_sq(mm: MappedMatrix, gs: list[FloatArray] | None = None, scale: float | None = None,
                patched: bool = True) -> float:
    """||product - scale * M||^2 of the data part (S^4), from ``gs`` or the references (``patched``: the
    stages' digital patch added, :meth:`MappedMatrix.product`); ``scale`` defaults to the mapping's (use
    :func:`cos_scale` to measure what 1 - cos sees)."""
    return float(np.sum((mm.product(gs, patched) - (mm.scale if scale is None else scale) * mm.target) ** 2))


def cos_scale(mm: MappedMatrix, gs: list[FloatArray] | None = None, patched: bool = True) -> float:
    """The scale c = |P|^2 / <P, M> of the product P (from ``gs`` or the references) at which
    ||P' - c M||^2 is 1 - cos linearised at P: with P' = a M + E (E orthogonal to M), tan^2 of the
    angle is |E|^2 / (a |M|)^2, and ||P' - c M||^2 = |E|^2 + (a - c)^2 |M|^2 has the same gradient,
    up to the factor (a |M|)^2, at P' = P (Dinkelbach's linearisation of the ratio). Against the
    mapping's own scale instead, a repair that shrinks the product by 5 % pays (0.05 |M|)^2, a
    quarter of what it costs in angle when 1 - cos is ~0.06 (Re(DFT64) at 10 % faults)."""
    p = mm.product(gs, patched)
    dot = float(np.sum(p * mm.target))
    return float(np.sum(p * p)) / dot if dot > 0 else mm.scale


def finish_line(pa: LinePath, size: int, p: RefitParams, a_mat: FloatArray | None = None
                ) -> tuple[FloatArray, NDArray[np.intp]]:
    """The chosen support's exact refit (against ``a_mat`` if the other stage was repaired meanwhile),
    then devices whose move stays within the write-and-verify band are dropped and the rest re-solved."""
    a = pa.a_mat if a_mat is None else a_mat
    sup = pa.order[:size]
    x = _solve_on(a, pa.y, pa.x0, sup, p.g_max)
    moved = [i for i in sup if abs(x[i] - pa.x0[i]) > p.band_at(x[i])]
    if len(moved) < len(sup):
        x = _solve_on(a, pa.y, pa.x0, moved, p.g_max)
    return x, np.array(sorted(moved), dtype=np.intp)


def served(mm: MappedMatrix, new_codes: list[NDArray[np.int8]], p: RefitParams,
           before: list[FloatArray] | None = None, patches: list[FloatArray] | None = None
           ) -> tuple[list[FloatArray], list[FloatArray]]:
    """The conductances (S) a repair plans from: the served ones before the fault (``before``, default
    :meth:`MappedMatrix.effective`) and now, with ``new_codes``' stuck devices at their rails plus the
    ``patches`` that stay on (default the stages' own :attr:`Stage.patch`)."""
    g_pre = [g.copy() for g in (before or mm.effective())]
    patches = patches if patches is not None else [st.patch for st in mm.stages]
    g_now = [pin_stuck(st.g_ref, codes, p.g_max) + np.where(codes != 0, d, 0.0)
             for st, codes, d in zip(mm.stages, new_codes, patches)]
    return g_pre, g_now


def plan_repair(mm: MappedMatrix, new_codes: list[NDArray[np.int8]], p: RefitParams = RefitParams(),
                before: list[FloatArray] | None = None,
                lines: tuple[list[int], list[int]] | None = None,
                patches: list[FloatArray] | None = None) -> RepairPlan:
    """Targets to write after the host learned ``new_codes`` (per stage), from the stages' references.

    Two stages with ``p.planner == "joint"`` (the default): :func:`plan_joint` (``lines`` is not needed: it
    picks its devices from the whole product's residual). With ``"lines"``: every touched line's support is selected greedily (:func:`line_path`), the
    supports are sized together against a shared budget (:func:`allocate`), then each chosen
    support is refitted exactly (:func:`finish_line`; columns of MB against the repaired MA).

    ``before`` are the references as they were before the fault (for each line's pre-fault
    residual); default: the served conductances now (:meth:`MappedMatrix.effective`).
    ``lines`` (rows of MA, columns of MB) are re-fitted too, fault or not (a polish after the
    writes of a repair landed with their write-and-verify error).

    The plan works on the conductances the host serves: ``before`` holds them with the digital patch
    then in force (:meth:`MappedMatrix.effective`), and ``patches`` (S per stage, default the stages'
    own :attr:`Stage.patch`) is the patch that stays on while and after the plan is written: a patched
    stuck device counts at its patched value, an unpatched one at its rail. Only working devices get
    targets (patches sit on stuck devices), so the targets are conductances to write.
    """
    if len(mm.stages) == 1:
        return _plan_pairs(mm, new_codes[0], p)
    if len(mm.stages) != 2:
        raise ValueError("plan_repair handles the two-stage factorized and the one-stage pair mappings")
    if p.planner == "joint":
        return plan_joint(mm, new_codes, p, before, patches=patches)
    sa, sb = mm.stages
    g_pre, g_now = served(mm, new_codes, p, before, patches)
    target = cos_scale(mm, g_pre, False) * mm.target  # the pre-fault product's direction, at the scale 1 - cos sees
    targets = [np.full(st.shape, np.nan) for st in mm.stages]
    plan = RepairPlan(targets)
    k, n = sa.n_data, sb.n_data
    changed = [(codes != 0) & (st.codes == 0) for st, codes in zip(mm.stages, new_codes)]
    rows_a = set(np.flatnonzero(changed[0][:, :k].any(axis=1)).tolist()) | set(lines[0] if lines else [])
    cols_b = set(np.flatnonzero(changed[1][:, :n].any(axis=0)).tolist()) | set(lines[1] if lines else [])
    # data part only; checksum columns need no writes (the host's reference absorbs the change)
    wb = sb.sign[:, None] * g_now[1][:, :n]
    wb_pre = sb.sign[:, None] * g_pre[1][:, :n]
    wa = sa.sign[:, None] * g_now[0][:, :k]
    wa_pre = sa.sign[:, None] * g_pre[0][:, :k]
    paths = []
    for i in sorted(rows_a):
        y = sa.sign[i] * target[i]
        r_pre = float(np.linalg.norm(g_pre[0][i, :k] @ wb_pre - y))
        paths.append(line_path(0, i, wb.T, y, g_now[0][i, :k], new_codes[0][i, :k] == 0, r_pre, p))
    a_mat = wa * sb.sign[None, :]
    for j in sorted(cols_b):
        y = target[:, j]
        r_pre = float(np.linalg.norm(wa_pre @ (sb.sign * g_pre[1][:, j]) - y))
        paths.append(line_path(1, j, a_mat, y, g_now[1][:, j], new_codes[1][:, j] == 0, r_pre, p))
    if p.spare_support:
        # A fault on row i of MA spoils row i of the product, which every column of MB crosses: those columns
        # are repair lines of the same damage, at a price (they move the rest of their product column too).
        # So lines no fault touched compete for the same budget with their first few moves, but only lines
        # that cross a damaged product line: rows of MA if a column of MB was hit, columns of MB if a row of
        # MA was. A row of MA whose product row is intact is never written (that would polish old error,
        # not repair the new one).
        for i in sorted(set(range(sa.shape[0])) - rows_a) if cols_b else []:
            y = sa.sign[i] * target[i]
            r_pre = float(np.linalg.norm(g_pre[0][i, :k] @ wb_pre - y))
            paths.append(line_path(0, i, wb.T, y, g_now[0][i, :k], new_codes[0][i, :k] == 0, r_pre,
                                   replace(p, max_support=p.spare_support)))
        for j in sorted(set(range(n)) - cols_b) if rows_a else []:
            y = target[:, j]
            r_pre = float(np.linalg.norm(wa_pre @ (sb.sign * g_pre[1][:, j]) - y))
            paths.append(line_path(1, j, a_mat, y, g_now[1][:, j], new_codes[1][:, j] == 0, r_pre,
                                   replace(p, max_support=p.spare_support)))
    c = cos_scale(mm, g_pre, False)
    total = residual_sq(mm, g_now, c, False)
    sizes = allocate(paths, p, total, p.slack ** 2 * residual_sq(mm, g_pre, c, False))
    for pa, size in zip(paths, sizes):
        if pa.stage == 0:
            x, moved = finish_line(pa, size, p)
            g_now[0][pa.line, :k] = x
            targets[0][pa.line, moved] = x[moved]
            res_fault = pa.cost[0] ** 0.5
            res_after = float(np.linalg.norm(pa.a_mat @ x - pa.y))
        else:
            a_rep = (sa.sign[:, None] * g_now[0][:, :k]) * sb.sign[None, :]  # against the repaired MA
            x, moved = finish_line(pa, size, p, a_rep)
            g_now[1][:, pa.line] = x
            targets[1][moved, pa.line] = x[moved]
            res_fault = pa.cost[0] ** 0.5
            res_after = float(np.linalg.norm(a_rep @ x - pa.y))
        if moved.size or pa.line in (rows_a if pa.stage == 0 else cols_b):
            plan.lines.append(LineRepair(pa.stage, pa.line, moved, pa.r_pre, float(res_fault), res_after))
    return plan


def _line_refit(a_mat: FloatArray, y: FloatArray, x: FloatArray, sup: NDArray[np.bool_], upper: float) -> FloatArray:
    """:func:`_solve_on` with the support as a mask."""
    return _solve_on(a_mat, y, x, np.flatnonzero(sup).tolist(), upper)


def _refit_supports(ga: FloatArray, gb: FloatArray, sign_a: FloatArray, sign_b: FloatArray, target: FloatArray,
                    sup_a: NDArray[np.bool_], sup_b: NDArray[np.bool_], upper: float, sweeps: int) -> None:
    """Alternating bounded least squares on the chosen devices (in place): every row of MA with a chosen device
    is refitted exactly against MB, then every such column of MB against the new MA; ``sweeps`` times. Each
    half-step is the exact minimum over its block, so ||W_A W_B - target|| never grows."""
    for _ in range(sweeps):
        wb = sign_b[:, None] * gb
        for i in np.flatnonzero(sup_a.any(axis=1)):
            ga[i] = _line_refit(wb.T * sign_a[i], target[i], ga[i], sup_a[i], upper)
        a_mat = (sign_a[:, None] * ga) * sign_b[None, :]
        for j in np.flatnonzero(sup_b.any(axis=0)):
            gb[:, j] = _line_refit(a_mat, target[:, j], gb[:, j], sup_b[:, j], upper)


def device_gains(ga: FloatArray, gb: FloatArray, sign_a: FloatArray, sign_b: FloatArray, residual: FloatArray,
                 p: RefitParams) -> tuple[FloatArray, FloatArray]:
    """Exact predicted cut of ||residual||^2 (S^4) by one write of each device of MA and of MB, net of its
    own write error, all at once (two matrix products).

    Device (i, l) of MA moves row i of the product along sign_a[i] W_B[l, :]; device (l, j) of MB moves column
    j along sign_b[l] W_A[:, l]. With g the gradient of ||R||^2 / 2 along that direction and n its squared
    norm, the best step -g / n is clipped to the window [0, g_max]; the cut is -(2 step g + step^2 n), less
    the write error sigma_at(new)^2 n that a verified write leaves."""
    wa, wb = sign_a[:, None] * ga, sign_b[:, None] * gb
    grad_a = sign_a[:, None] * (residual @ wb.T)
    n_a = np.sum(wb * wb, axis=1)[None, :]
    grad_b = sign_b[:, None] * (wa.T @ residual)
    n_b = np.sum(wa * wa, axis=0)[:, None]
    out = []
    for g, grad, norm in ((ga, grad_a, n_a), (gb, grad_b, n_b)):
        step = np.clip(-grad / np.maximum(norm, 1e-300), -g, p.g_max - g)
        out.append(-(2.0 * step * grad + step * step * norm) - p.sigma_at(g + step) ** 2 * norm)
    return out[0], out[1]


def plan_joint(mm: MappedMatrix, new_codes: list[NDArray[np.int8]], p: RefitParams = RefitParams(),
               before: list[FloatArray] | None = None, max_writes: int | None = None,
               patches: list[FloatArray] | None = None) -> RepairPlan:
    """Both factors at once: the fewest writes, over every working device of MA and MB, that bring the
    product's squared residual (write error included) back to ``slack``^2 x its pre-fault value.

    Why: a row of MA alone cancels a stuck device's rank-1 error d e_i W_B[l, :] only if its change v has
    v W_B = -d W_B[l, :] with v_l = 0, i.e. u = v + d e_l in W_B's left null space: impossible for W_B of full
    rank, and to 1e-3 of its largest singular value (Re(DFT64), k = 64, 10 %: rank 49, the product's 33) such
    u need ~50 non-zeros per fault. Sparse moves cancel part of it, and the same damaged product row is also
    reachable from every column of MB. The greedy therefore prices every device of both stages against the
    product's whole residual:

    1. :func:`device_gains`: the exact cut of ||R||^2 each single write would buy (window-clipped, net of its
       write error), vectorised over both arrays;
    2. the best ``joint_batch`` devices join the support, if each cuts at least ``joint_min_cut`` of an average
       product line's pre-fault residual^2 (a write must buy fidelity, as in the line planner);
    3. :func:`_refit_supports`: alternating exact bounded least squares on the supports (rows of MA against
       MB, columns of MB against the new MA), ``joint_sweeps`` times: the moves chosen one at a time are
       re-balanced together, across the two factors;
    4. repeat until the residual plus the expected write error of the support is within the budget (or
       ``max_writes`` devices are chosen), then drop the devices whose move stays within the write-and-verify
       band (they are not written) and refit without them; if that leaves the plan above the budget, go on
       from 1. without the dropped devices (at most three rounds).

    Measured (Re(DFT64), k = 64, the bench's 1 % case, one-shot planning with exact writes,
    ``benchmarks/reprogram.py --only repair-tradeoff``): see that part's results for the write-vs-fidelity
    curve beside the line planner's. ``before``, ``patches``: as :func:`plan_repair` (the served conductances
    before the fault, and the digital patch that stays on: a patched stuck device counts at its patched value).
    ``max_writes`` defaults to ``p.write_budget``."""
    sa, sb = mm.stages
    k, n = sa.n_data, sb.n_data
    g_pre, g_now = served(mm, new_codes, p, before, patches)
    c = cos_scale(mm, g_pre, False)
    target = c * mm.target
    e_pre = residual_sq(mm, g_pre, c, False)
    max_writes = p.write_budget if max_writes is None else max_writes
    budget = p.slack ** 2 * e_pre
    min_gain = p.joint_min_cut * e_pre / (mm.target.shape[0] + mm.target.shape[1])
    ga, gb = g_now[0][:, :k].copy(), g_now[1][:, :n].copy()
    ga0, gb0 = ga.copy(), gb.copy()
    free = [new_codes[0][:, :k] == 0, new_codes[1][:, :n] == 0]
    sup = [np.zeros_like(free[0]), np.zeros_like(free[1])]
    sign_a, sign_b = sa.sign.astype(float), sb.sign.astype(float)
    limit = np.inf if max_writes is None else max_writes

    def write_error(ga_, gb_) -> float:
        moved_a = sup[0] & (np.abs(ga_ - ga0) > p.band_at(ga_))
        moved_b = sup[1] & (np.abs(gb_ - gb0) > p.band_at(gb_))
        n_a = np.sum((sign_b[:, None] * gb_) ** 2, axis=1)[None, :]
        n_b = np.sum((sign_a[:, None] * ga_) ** 2, axis=0)[:, None]
        return float(np.sum((p.sigma_at(ga_) ** 2 * n_a)[moved_a]) + np.sum((p.sigma_at(gb_) ** 2 * n_b)[moved_b]))

    def cost(ga_, gb_) -> float:
        residual_ = (sign_a[:, None] * ga_) @ (sign_b[:, None] * gb_) - target
        return float(np.sum(residual_ ** 2)) + write_error(ga_, gb_)

    # devices whose move stayed within the band: not written, and not offered again
    banned = [np.zeros_like(free[0]), np.zeros_like(free[1])]
    for _ in range(3):
        while True:
            chosen = int(sup[0].sum() + sup[1].sum())
            if cost(ga, gb) <= budget or chosen >= limit:
                break
            residual = (sign_a[:, None] * ga) @ (sign_b[:, None] * gb) - target
            gain_a, gain_b = device_gains(ga, gb, sign_a, sign_b, residual, p)
            gains = np.concatenate([np.where(free[0] & ~sup[0] & ~banned[0], gain_a, -np.inf).ravel(),
                                    np.where(free[1] & ~sup[1] & ~banned[1], gain_b, -np.inf).ravel()])
            take = min(p.joint_batch, int(limit - chosen)) if np.isfinite(limit) else p.joint_batch
            best = np.argsort(gains)[::-1][:take]
            best = best[gains[best] > min_gain]
            if not best.size:
                break
            on_a = best < ga.size
            sup[0].flat[best[on_a]] = True
            sup[1].flat[best[~on_a] - ga.size] = True
            _refit_supports(ga, gb, sign_a, sign_b, target, sup[0], sup[1], p.g_max, p.joint_sweeps)
        # a move within the write-and-verify band is not written: back to what the device holds, refit without it
        # (twice: the refit can bring another move within the band); if that leaves the plan above the budget,
        # the greedy goes on without those devices
        dropped = False
        for refit in (True, False):
            inside = [sup[0] & (np.abs(ga - ga0) <= p.band_at(ga)), sup[1] & (np.abs(gb - gb0) <= p.band_at(gb))]
            if not (inside[0].any() or inside[1].any()):
                break
            dropped = True
            for sp, bn, ins in zip(sup, banned, inside):
                sp &= ~ins
                bn |= ins
            ga, gb = np.where(sup[0], ga, ga0), np.where(sup[1], gb, gb0)
            if refit:
                _refit_supports(ga, gb, sign_a, sign_b, target, sup[0], sup[1], p.g_max, 1)
        if not dropped or cost(ga, gb) <= budget or int(sup[0].sum() + sup[1].sum()) >= limit:
            break
    keep = sup
    targets = [np.full(st.shape, np.nan) for st in mm.stages]
    targets[0][:, :k] = np.where(keep[0], ga, np.nan)
    targets[1][:, :n] = np.where(keep[1], gb, np.nan)
    plan = RepairPlan(targets)
    # per line of the product that a fault or a write touched: its residual before, with, and after the fault
    res = [(sign_a[:, None] * g[0][:, :k]) @ (sign_b[:, None] * g[1][:, :n]) - target
           for g in (g_pre, g_now, [np.hstack([ga, g_now[0][:, k:]]), np.hstack([gb, g_now[1][:, n:]])])]
    changed = [(codes != 0) & (st.codes == 0) for st, codes in zip(mm.stages, new_codes)]
    for stage, hit, axis in ((0, changed[0][:, :k].any(axis=1) | keep[0].any(axis=1), 1),
                             (1, changed[1][:, :n].any(axis=0) | keep[1].any(axis=0), 0)):
        norms = [np.linalg.norm(r, axis=axis) for r in res]
        for line in np.flatnonzero(hit):
            moved = np.flatnonzero(keep[0][line] if stage == 0 else keep[1][:, line])
            plan.lines.append(LineRepair(stage, int(line), moved, float(norms[0][line]), float(norms[1][line]),
                                         float(norms[2][line])))
    return plan


def _plan_pairs(mm: MappedMatrix, codes: NDArray[np.int8], p: RefitParams) -> RepairPlan:
    """Differential pairs: the partner of a newly stuck device takes the value that restores G+ - G-.

    Where the window does not allow it (a stuck-OFF G+ under a positive weight, a stuck-ON
    G+ under a weight below g_max - G-...), the weight error left on input i of column j is
    taken up by other pairs of the column that see correlated inputs: with C the second
    moment of the served inputs (``mm.input_moment``, the bias input included) and e the
    column's weight errors, output j's mean squared error is e^T C e, and a few pairs l
    (greedy, largest C-weighted gradient first, exact least squares on the chosen ones)
    take dw_l so (e - dw)^T C (e - dw) is smallest. Each such pair moves one device (the
    one that stays in the window), or both when neither alone can.
    """
    st = mm.stages[0]
    g_now = pin_stuck(st.g_ref, codes, p.g_max)
    w_target = mm.scale * mm.target
    g_new = compensate_pairs(g_now, codes, w_target, p.g_max)
    new = (codes != 0) & (st.codes == 0)
    pair_hit = new[0::2] | new[1::2]
    lines = []
    if mm.input_moment is not None and mm.input_count > 0:
        c_in = mm.input_moment / mm.input_count
        both_work = (codes[0::2] == 0) & (codes[1::2] == 0)
        for j in np.flatnonzero(pair_hit.any(axis=0)):
            # the whole column's error (its pairs' write error too): the output sees their sum
            err = w_target[:, j] - (g_new[0::2, j] - g_new[1::2, j])
            if np.all(np.abs(err[pair_hit[:, j]]) <= p.band_at(w_target[pair_hit[:, j], j])):
                continue
            free = both_work[:, j] & ~pair_hit[:, j]
            dw = _spread(c_in, err, free, p)
            for i in np.flatnonzero(dw):
                plus, minus = g_new[2 * i, j] + dw[i], g_new[2 * i + 1, j] - dw[i]
                if 0.0 <= plus <= p.g_max:
                    g_new[2 * i, j] = plus
                elif 0.0 <= minus <= p.g_max:
                    g_new[2 * i + 1, j] = minus
                else:  # neither device alone reaches it: the pair takes (w, 0) or (0, -w)
                    w_new = float(np.clip(plus - g_new[2 * i + 1, j], -p.g_max, p.g_max))
                    g_new[2 * i, j], g_new[2 * i + 1, j] = max(w_new, 0.0), max(-w_new, 0.0)
            lines.append(j)
    touched = (codes == 0) & (np.abs(g_new - st.g_ref) > p.band_at(g_new)) & (
        np.repeat(pair_hit, 2, axis=0) | (np.abs(g_new - st.g_ref) > 0) & np.isin(np.arange(st.shape[1]), lines))
    targets = [np.where(touched, g_new, np.nan)]
    plan = RepairPlan(targets)
    for i, j in np.argwhere(pair_hit):
        before = st.g_ref[2 * i, j] - st.g_ref[2 * i + 1, j]
        plan.lines.append(LineRepair(0, int(i), np.flatnonzero(touched[2 * i:2 * i + 2, j]),
                                     float(abs(before - w_target[i, j])),
                                     float(abs(g_now[2 * i, j] - g_now[2 * i + 1, j] - w_target[i, j])),
                                     float(abs(g_new[2 * i, j] - g_new[2 * i + 1, j] - w_target[i, j]))))
    return plan


def _spread(c_in: FloatArray, err: FloatArray, free: NDArray[np.bool_], p: RefitParams) -> FloatArray:
    """dw on a few ``free`` entries minimising (err - dw)^T C (err - dw): greedy support, exact refit each step;
    a pair joins only if it cuts the weighted error by ``min_cut`` of its starting value."""
    dw = np.zeros_like(err)
    start = float(err @ c_in @ err)
    if start <= 0:
        return dw
    cost, sup = start, []
    diag = np.sqrt(np.maximum(np.diag(c_in), 1e-300))
    cand = free.copy()
    for _ in range(p.pair_support):
        grad = c_in @ (dw - err)
        score = np.where(cand, np.abs(grad) / diag, -1.0)
        best = int(np.argmax(score))
        if score[best] <= 0:
            break
        trial = sup + [best]
        idx = np.array(trial)
        x = np.linalg.lstsq(c_in[np.ix_(idx, idx)], c_in[idx] @ err, rcond=None)[0]
        x = np.clip(x, -p.g_max, p.g_max)
        d = np.zeros_like(err)
        d[idx] = x
        new_cost = float((err - d) @ c_in @ (err - d))
        cand[best] = False
        if cost - new_cost < p.min_cut * start:
            break
        sup, dw, cost = trial, d, new_cost
    keep = np.flatnonzero(np.abs(dw) > p.band_at(dw))  # a move within the band is not written: refit without it
    dw = np.zeros_like(err)
    if keep.size:
        dw[keep] = np.clip(np.linalg.lstsq(c_in[np.ix_(keep, keep)], c_in[keep] @ err, rcond=None)[0],
                           -p.g_max, p.g_max)
        if float((err - dw) @ c_in @ (err - dw)) >= start:
            dw[:] = 0.0
    return dw


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
        move = (codes == 0) & (np.abs(st_new.g_target - st_old.g_ref) > p.band_at(st_new.g_target))
        targets.append(np.where(move, st_new.g_target, np.nan))
    return fresh, RepairPlan(targets)


__all__ = ["RefitParams", "WRITE_MODEL_FIELDS", "fit_write_sigma", "write_model_of", "RepairPlan", "LineRepair",
           "LinePath", "line_path", "allocate", "PLANNERS", "device_gains", "plan_joint",
           "finish_line", "residual_sq", "cos_scale", "plan_repair", "plan_full_remap"]
