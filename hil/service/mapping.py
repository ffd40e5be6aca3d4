"""A mapped matrix as the service loop sees it: stages of conductances with signs and checksum columns.

A :class:`Stage` is one crossbar block: non-negative conductances ``g`` (S) of shape
(inputs, outputs), one sign per input line (seed 003's row signs: input polarity on
array A, the bridge's sign register on array B), and ``n_data`` data outputs followed by
checksum outputs. A stage computes ``out = (u * sign) @ g`` for a signed input vector u.
The factorized matrix M ~ MA @ MB is two stages; the data outputs of the first are the
inputs of the second (the digital bridge).

Checksum outputs (:func:`stage_checksum_columns`): each array gets two extra columns on
the same faulty array, the sums of its own row magnitudes over each half of its data
outputs (row signs are shared along a row of MA and of MB, so the sums keep the row's
sign), scaled into the window and programmed around the stuck devices like the data.
Low gains matter: the checksum output's read noise is multiplied by its gain in every
syndrome, so two half sums (gains 6-9 on Re(DFT64)) beat one full sum and one
position-weighted sum (gains 21 and 64 before: Re(DFT) has M @ 1 = n e_0). The checks
are stage checks against the host's reference, so B's checksum columns need not be
part of the factorization; the factorization still solves M augmented with M @ 1 and
M @ w (see :func:`map_factorized`), which balances the two factors in the window.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hil.factorization import DeviceWindow, SolverParams, direct_map, factorize, one_minus_cos
from hil.faultmap import STUCK_OFF, STUCK_ON

FloatArray = NDArray[np.float64]


@dataclass
class Stage:
    """One programmed block: magnitudes ``g`` (S), input signs, codes known to the host, checksum columns."""

    name: str
    array: str  # where it lives (engine array name)
    sign: FloatArray  # (n_in,) +-1
    g_target: FloatArray  # (n_in, n_out) S, what was asked of write-and-verify
    g_ref: FloatArray  # (n_in, n_out) S, the host's reference (read-back, or target)
    codes: NDArray[np.int8]  # (n_in, n_out) fault codes known to the host
    n_data: int  # data outputs; outputs n_data.. are checksum columns
    checksum_weights: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))  # (n_data, n_check): col j of the
    #: checksum block is (data outputs) @ checksum_weights[:, j] / checksum_gain[j]
    checksum_gain: FloatArray = field(default_factory=lambda: np.zeros(0))
    row_index: NDArray[np.intp] | None = None  #: physical row -> logical input (None: one row per input);
    #: a differential-pair stage drives rows 2i and 2i + 1 from input i with signs +1 and -1
    g_patch: FloatArray | None = None  #: (n_in, n_out) S, NaN except at stuck data devices the host stands in
    #: for digitally: the conductance it adds back the difference to (see :attr:`patch`)

    def __post_init__(self) -> None:
        if self.row_index is None:
            self.row_index = np.arange(self.g_ref.shape[0])
        if self.g_patch is None:
            self.g_patch = np.full(self.g_ref.shape, np.nan)

    # the digital patch --------------------------------------------------------------------------------
    @property
    def patched(self) -> NDArray[np.bool_]:
        """Devices the host patches now: a patch value, a stuck code (a device found working again drops
        its patch) and a data output (checksum outputs compare the analog output with the reference)."""
        on = np.isfinite(self.g_patch) & (self.codes != 0)
        on[:, self.n_data:] = False
        return on

    @property
    def patch(self) -> FloatArray:
        """(n_in, n_out) S the host adds to what the stage computes: ``g_patch - g_ref`` where :attr:`patched`,
        0 elsewhere. A stuck device's output error is exactly sign_i u_i (g_patch - g_ref) while the
        reference holds what the stuck device conducts, so the patched stage computes with ``g_patch`` there;
        a device re-stuck at the other rail is pinned anew and its patch follows from the same value."""
        return np.where(self.patched, np.nan_to_num(self.g_patch) - self.g_ref, 0.0)

    def set_patch(self, cells: NDArray[np.bool_], g_intended: FloatArray) -> None:
        """Patch the stuck data devices ``cells`` (bool, the stage's shape) to ``g_intended`` (S, same shape)."""
        cells = np.asarray(cells, bool)
        g_intended = np.asarray(g_intended, float)
        if cells.shape != self.shape or g_intended.shape != self.shape:
            raise ValueError(f"stage {self.name}: patch cells and values must be {self.shape}, got "
                             f"{cells.shape} and {g_intended.shape}")
        bad = cells & ~np.isfinite(g_intended)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise ValueError(f"stage {self.name}: patch value of device ({r}, {c}) is {g_intended[r, c]} "
                             "(a finite conductance is needed)")
        if (cells & (self.codes == 0)).any() or cells[:, self.n_data:].any():
            r, c = np.argwhere(cells & ((self.codes == 0) | (np.arange(self.shape[1]) >= self.n_data)))[0]
            raise ValueError(f"stage {self.name}: only stuck devices of data outputs are patched, not ({r}, {c})")
        self.g_patch = np.where(cells, g_intended, self.g_patch)

    def clear_patch(self, cells: NDArray[np.bool_] | None = None) -> None:
        """Retire the patch of ``cells`` (default: all)."""
        self.g_patch = np.where(np.ones(self.shape, bool) if cells is None else cells, np.nan, self.g_patch)

    def add_patch(self, v: FloatArray, out: FloatArray) -> FloatArray:
        """``out`` (B, n_out) of physical inputs ``v`` (B, rows) plus the digital patch: one multiply-add per
        patched device per VMM (the signs of ``v`` are the rows' own, as :meth:`drive` applied them)."""
        d = self.patch[:, :np.shape(out)[-1]]  # zero on checksum outputs: ``out`` may hold the data part only
        return out + v @ d if d.any() else out

    @property
    def shape(self) -> tuple[int, int]:
        return self.g_ref.shape  # type: ignore[return-value]

    @property
    def n_in(self) -> int:
        """Logical inputs."""
        return int(self.row_index.max()) + 1

    def drive(self, u: FloatArray) -> FloatArray:
        """Physical row inputs (B, rows) for logical inputs u (B, n_in): each row's input times its sign."""
        return u[:, self.row_index] * self.sign

    def logical(self, g: FloatArray | None = None, patched: bool = False) -> FloatArray:
        """The (n_in, n_out) matrix the stage computes from its logical inputs (S); ``patched``: with the
        digital patch added, as :meth:`~hil.service.session.ServiceSession.serve` adds it."""
        out = np.zeros((self.n_in, self.shape[1]))
        g = self.g_ref if g is None else np.asarray(g, float)
        if g.shape != self.shape:
            raise ValueError(f"stage {self.name}: conductances must be {self.shape}, got {g.shape}")
        np.add.at(out, self.row_index, self.signed(g + self.patch if patched else g))
        return out

    @property
    def n_check(self) -> int:
        return self.shape[1] - self.n_data

    def signed(self, g: FloatArray | None = None) -> FloatArray:
        """The signed matrix (n_in, n_out) the stage computes: sign * g (S)."""
        return self.sign[:, None] * (self.g_ref if g is None else g)

    def devices(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class MappedMatrix:
    """M (m x n) as a chain of stages; ``scale`` is alpha in (product of stages) ~ alpha * M."""

    target: FloatArray
    stages: list[Stage]
    scale: float
    input_moment: FloatArray | None = None  #: sum of u u^T over the served logical inputs u (n_in, n_in), if kept
    input_count: int = 0  #: inputs summed in ``input_moment``

    def observe(self, u: FloatArray) -> None:
        """Add a batch of served logical inputs (B, n_in) to the second moment the repair weighs errors with."""
        u = np.atleast_2d(u)
        if self.input_moment is None:
            self.input_moment = np.zeros((u.shape[1], u.shape[1]))
        self.input_moment += u.T @ u
        self.input_count += u.shape[0]

    def product(self, gs: list[FloatArray] | None = None, patched: bool = True) -> FloatArray:
        """The data part of the chained signed matrices (S^len(stages)), from ``gs`` (the true chip's
        conductances, a plan...) or the references, with each stage's digital patch added (``patched``) as
        the service adds it to every VMM: the operator the host serves. ``patched=False`` for ``gs`` that
        already hold the patched values (:meth:`effective`)."""
        out = None
        for i, st in enumerate(self.stages):
            w = st.logical(None if gs is None else gs[i], patched)[:, :st.n_data]
            out = w if out is None else out @ w
        return out

    def one_minus_cos(self, gs: list[FloatArray] | None = None, patched: bool = True) -> float:
        return one_minus_cos(self.product(gs, patched), self.target)

    def effective(self) -> list[FloatArray]:
        """Each stage's references with its patch added (S): what the host serves, as plain conductances."""
        return [st.g_ref + st.patch for st in self.stages]

    def patch_counts(self) -> dict[str, float]:
        """The digital patch's size: patched devices (``weights``), multiply-adds it costs per input vector
        (``macs_per_vmm``, one per patched device per stage VMM) and their fraction of the data MACs."""
        n = int(sum(st.patched.sum() for st in self.stages))
        macs = sum(st.shape[0] * st.n_data for st in self.stages)
        return {"weights": n, "macs_per_vmm": n, "frac_of_macs": n / macs}

    @property
    def devices(self) -> int:
        return sum(s.devices() for s in self.stages)

    @property
    def check_devices(self) -> int:
        return sum(s.shape[0] * s.n_check for s in self.stages)


def half_weights(n: int) -> FloatArray:
    """(n, 2) indicator weights of the first and the second half of the outputs (non-negative, for array A)."""
    w = np.zeros((n, 2))
    w[:(n + 1) // 2, 0] = 1.0
    w[(n + 1) // 2:, 1] = 1.0
    return w


def _balance_target(matrix: FloatArray) -> FloatArray:
    """[M, M @ 1 / K1, M @ w / K2] (w_j = (j + 1) / n), each sum scaled to M's largest |entry|."""
    n = matrix.shape[1]
    sums = matrix @ np.stack([np.ones(n), (np.arange(n) + 1.0) / n], axis=1)
    return np.hstack([matrix, sums * (np.abs(matrix).max() / np.maximum(np.abs(sums).max(axis=0), 1e-300))])


def stage_checksum_columns(g_signed: FloatArray, g_max: float) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Checksum columns of a stage (array A or B), from its own rows.

    Returns the magnitudes (n_in, 2), weights (n_out, 2) and gains (2,): column q holds
    |g_signed| @ weights[:, q] / gain_q, the sum over one half of the outputs, which keeps
    each row's sign because all entries of a row of MA share it (so the weights must be
    non-negative); two half sums have half the gain, and half the amplified read noise, of
    one full sum. The gain brings the largest entry to ``g_max``.
    """
    n_out = g_signed.shape[1]
    weights = half_weights(n_out)
    sums = np.abs(g_signed) @ weights
    gains = np.maximum(sums.max(axis=0), 1e-300) / g_max
    return sums / gains, weights, gains


def map_factorized(matrix: FloatArray, k: int, codes_a: NDArray[np.int8], codes_b: NDArray[np.int8],
                   rng: np.random.Generator | int = 0, window: DeviceWindow = DeviceWindow(),
                   solver: SolverParams = SolverParams(max_iter=3000, converging_iter=0), checks: bool = True,
                   arrays: tuple[str, str] = ("A", "B")) -> MappedMatrix:
    """Fault-aware factorization of M with checksum outputs on both stages.

    ``codes_a`` is (m, k + 2) and ``codes_b`` (k, n + 2) with checks (the last two columns
    of each hold the checksums), (m, k) and (k, n) without. The checksum columns are
    programmed where working (a stuck one stays as it is; the host's reference knows it).
    """
    rng = np.random.default_rng(rng)
    m_ = np.asarray(matrix, float)
    m, n = m_.shape
    extra = 2 if checks else 0
    ca, cb = np.asarray(codes_a, np.int8), np.asarray(codes_b, np.int8)
    if ca.shape != (m, k + extra) or cb.shape != (k, n + extra):
        raise ValueError(f"codes_a must be {(m, k + extra)} and codes_b {(k, n + extra)} "
                         f"(checksum columns {'included' if checks else 'off'}), got {ca.shape} and {cb.shape}")
    # the factorization solves the target augmented with the sums M @ 1 and M @ w (seed 003's pipeline, as
    # before): they set how the two factors share the window (Re(DFT64) at 10 %: 1 - cos 0.06 programmed,
    # 0.078 without them, where the factors fill half the window); the programmed checksum columns of B
    # are then its own half sums, whose gain is ~8 where the factorized M @ 1 / K needed 64
    f = factorize(_balance_target(m_), ca[:, :k], cb, rng, window, solver) if checks else \
        factorize(m_, ca, cb, rng, window, solver)
    sa, sb = f.sign_a.astype(float), f.sign_b.astype(float)
    ga, gb = np.abs(f.ma), np.abs(f.mb[:, :n])
    wa, ka, wb, kb = np.zeros((k, 0)), np.zeros(0), np.zeros((n, 0)), np.zeros(0)
    if checks:
        ca_cols, wa, ka = stage_checksum_columns(f.ma, window.g_max)
        cb_cols, wb, kb = stage_checksum_columns(f.mb[:, :n], window.g_max)
        ga, gb = np.hstack([ga, ca_cols]), np.hstack([gb, cb_cols])
    ga = pin_stuck(ga, ca, window.g_max)
    gb = pin_stuck(gb, cb, window.g_max)
    stages = [Stage("A", arrays[0], sa, ga.copy(), ga.copy(), ca.copy(), k, wa, ka),
              Stage("B", arrays[1], sb, gb.copy(), gb.copy(), cb.copy(), n, wb, kb)]
    return MappedMatrix(m_, stages, f.scale)


def map_direct(matrix: FloatArray, codes: NDArray[np.int8], window: DeviceWindow = DeviceWindow(),
               array: str = "A") -> MappedMatrix:
    """Differential-pair mapping (seed 003 Fig. 1a; :func:`hil.factorization.direct_map`) as one stage.

    Rows 2i / 2i + 1 carry M's row i positive / negative part and are driven with +u_i / -u_i.
    Fault-aware: where one device of a pair is stuck, its partner takes the value that keeps
    G+ - G- on target, as far as the window allows.
    """
    m_ = np.asarray(matrix, float)
    m, n = m_.shape
    c = np.asarray(codes, np.int8)
    if c.shape != (2 * m, n):
        raise ValueError(f"codes must be {(2 * m, n)} for a differential-pair mapping of a {m_.shape} matrix")
    dm = direct_map(m_, c, window)
    g = compensate_pairs(dm.g, c, dm.scale * m_, window.g_max)
    sign = np.tile([1.0, -1.0], m)
    st = Stage("D", array, sign, g.copy(), g.copy(), c.copy(), n, row_index=np.repeat(np.arange(m), 2))
    return MappedMatrix(m_, [st], dm.scale)


def compensate_pairs(g: FloatArray, codes: NDArray[np.int8], w_target: FloatArray, g_max: float) -> FloatArray:
    """Where exactly one device of a pair (rows 2i, 2i + 1) is stuck, set its partner so G+ - G- = w_target."""
    g = g.copy()
    plus_stuck = (codes[0::2] != 0) & (codes[1::2] == 0)
    minus_stuck = (codes[1::2] != 0) & (codes[0::2] == 0)
    g[1::2] = np.where(plus_stuck, np.clip(g[0::2] - w_target, 0.0, g_max), g[1::2])
    g[0::2] = np.where(minus_stuck, np.clip(g[1::2] + w_target, 0.0, g_max), g[0::2])
    return g


def pin_stuck(g: FloatArray, codes: NDArray[np.int8], g_max: float) -> FloatArray:
    """``g`` with stuck devices at their rails: stuck-OFF at 0 S, stuck-ON at ``g_max`` (seed 003 Methods)."""
    return np.where(codes == STUCK_OFF, 0.0, np.where(codes == STUCK_ON, g_max, g))


__all__ = ["Stage", "MappedMatrix", "stage_checksum_columns", "map_factorized", "map_direct",
           "compensate_pairs", "half_weights"]
