"""Syndromes of a stage's VMMs, and the sequential test that turns them into alarms.

A check is a column ``t`` over a stage's outputs. For an input ``v`` (signed, in the
stage's input units) and measured outputs ``out``, its syndrome is

    s = out @ t - v @ (g_ref @ t)

which is zero up to read noise while the array holds the host's reference ``g_ref``.
The reference term costs one dot product of length n_in per check per VMM (the vector
``g_ref @ t`` is computed once), never the full digital VMM. Two families:

* ``checksum``: the analog checksum outputs (two half sums of the array's rows mapped
  onto the same array, :mod:`hil.service.mapping`): t = (-weights on the data outputs,
  +gain on the checksum output). Their syndromes hardly move with a common conductance
  change (only through the write error the checksum column holds, which the common-gain
  correction removes) and see a change confined to one line. Their read noise is the
  checksum output's times its gain: on Re(DFT64) one VMM's syndrome rarely shows a stuck
  device, a few dozen accumulated (``glr``) usually do.
* ``groups``: sums over contiguous groups of outputs against their digital reference.
  A common change shows in every group in proportion to its expected value (drift);
  a stuck device shows in one group only (fault).

Noise: var(s) = rho^2 * (v^2) @ ((g_ref^2) @ t^2), read noise relative per cell; rho per
check is calibrated from fault-free VMMs right after programming (:meth:`Checks.calibrate`).

The sequential test (:class:`Detector`) keeps a drift estimate per stage (a common gain
from the weighted median of the group checks' ratios, exponentially forgotten) and one
CUSUM of z^2 per check on the drift-corrected, normalised syndromes: a large jump alarms
within a VMM or two.

A small change, below the read noise of one VMM, is caught by accumulating it coherently
(``glr``): a stuck device (l, j) adds dG * v_l to every syndrome that weights output j, so
per check q and input line l the host keeps exponentially forgotten sums

    S_ql = sum_t lam^(T-t) s_tq v_tl / sd_tq^2,    I_ql = sum_t lam^(T-t) v_tl^2 / sd_tq^2

and T_ql = S_ql^2 / I_ql is the generalised likelihood ratio for "line l changed under
check q" (chi^2_1 while nothing changed). Its signal grows linearly with the VMMs while
its noise stays chi^2_1, so the analog checksum columns, whose single-VMM syndromes are
noisy (their gain multiplies their read noise), carry the detection over a few VMMs. It
costs 2 n_in multiply-adds per check and VMM, beside the n_in of the check's reference.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from .mapping import Stage

FloatArray = NDArray[np.float64]
CHECK_KINDS = ("checksum", "groups", "both")


@dataclass(frozen=True)
class CheckParams:
    """Which checks, and the sequential test's settings."""

    kind: str = "both"  #: "checksum" (analog checksum outputs), "groups" (digital group references) or "both"
    group_size: int = 8  #: outputs per group check
    cusum_k: float = 5.0  #: reference value subtracted from each z^2 (chi^2_1 mean is 1)
    cusum_h: float = 30.0  #: alarm threshold of a CUSUM
    drift_forget: float = 0.95  #: forgetting factor of the common-gain estimate per VMM
    drift_min: float = 0.002  #: |gain change| (fraction) below which no compensation is recorded
    drift_sigmas: float = 5.0  #: and the change must exceed this many standard errors
    glr: bool = True  #: accumulate every checksum check's syndromes per input line (see the module docstring)
    glr_forget: float = 0.93  #: forgetting factor of the per-line sums per VMM (memory ~ 1 / (1 - forget) VMMs)
    glr_h: float = 36.0  #: alarm threshold of max over (check, line) of S^2 / I (chi^2_1 without a change)

    def __post_init__(self) -> None:
        if self.kind not in CHECK_KINDS:
            raise ValueError(f"kind must be one of {CHECK_KINDS}, got {self.kind!r}")
        if self.group_size < 1 or self.cusum_h <= 0 or self.cusum_k <= 1 or not 0 < self.drift_forget < 1:
            raise ValueError("group_size >= 1, cusum_h > 0, cusum_k > 1 and 0 < drift_forget < 1 required")
        if not 0 < self.glr_forget < 1 or self.glr_h <= 0:
            raise ValueError("0 < glr_forget < 1 and glr_h > 0 required")


def check_matrix(stage: Stage, p: CheckParams) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Check columns t (n_out, q) of a stage and which of them follow a common gain (groups)."""
    n_out = stage.shape[1]
    cols, drift = [], []
    if p.kind in ("checksum", "both") and stage.n_check:
        for q in range(stage.n_check):
            t = np.zeros(n_out)
            t[:stage.n_data] = -stage.checksum_weights[:, q]
            t[stage.n_data + q] = stage.checksum_gain[q]
            cols.append(t)
            drift.append(False)
    if p.kind in ("groups", "both") or not stage.n_check:
        for start in range(0, n_out, p.group_size):
            t = np.zeros(n_out)
            t[start:start + p.group_size] = 1.0
            cols.append(t)
            drift.append(True)
    return np.stack(cols, axis=1), np.array(drift)


@dataclass
class StageChecks:
    """Check columns of one stage, its reference vectors and calibrated noise scale."""

    t: FloatArray  # (n_out, q)
    follows_gain: NDArray[np.bool_]  # (q,)
    ref: FloatArray  # (n_in, q) = g_ref @ t
    var_w: FloatArray  # (n_in, q) = (g_ref^2) @ t^2
    rho: FloatArray  # (q,) relative read noise, calibrated

    @classmethod
    def build(cls, stage: Stage, p: CheckParams, rho: FloatArray | float = 0.01) -> "StageChecks":
        t, follows = check_matrix(stage, p)
        return cls(t, follows, stage.g_ref @ t, (stage.g_ref ** 2) @ (t ** 2),
                   np.broadcast_to(np.asarray(rho, float), (t.shape[1],)).copy())

    def refresh(self, stage: Stage) -> None:
        """New reference (after a repair or a re-read); the calibrated noise scale is kept."""
        self.ref = stage.g_ref @ self.t
        self.var_w = (stage.g_ref ** 2) @ (self.t ** 2)

    def syndromes(self, v: FloatArray, out: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(syndromes s, expected check values e, predicted sd) for a batch, each (B, q)."""
        e = v @ self.ref
        s = out @ self.t - e
        sd = self.rho * np.sqrt(np.maximum((v * v) @ self.var_w, 1e-300))
        return s, e, sd

    def calibrate(self, v: FloatArray, out: FloatArray) -> None:
        """Fit rho per check from fault-free VMMs so that z = s / sd has unit variance."""
        s = out @ self.t - v @ self.ref
        base = np.sqrt(np.maximum((v * v) @ self.var_w, 1e-300))
        self.rho = np.sqrt(np.mean((s / base) ** 2, axis=0))


@dataclass
class Alarm:
    """A CUSUM crossed its threshold: which stage and check, after how many VMMs, with what statistic."""

    stage: int
    check: int
    vmm: int
    statistic: float
    kind: str = "fault"


@dataclass
class DriftEvent:
    """A common-gain change large enough to compensate digitally (no writes)."""

    stage: int
    vmm: int
    gain: float  # the new applied gain correction (fraction: outputs are divided by 1 + gain)
    stderr: float


@dataclass
class StageState:
    """Sequential-test state of one stage."""

    cusum: FloatArray
    glr_s: FloatArray | None = None  # (q, n_in) per check and input line: sum of s v / sd^2 (forgotten)
    glr_i: FloatArray | None = None  # (q, n_in): sum of v^2 / sd^2
    gain_num: float = 0.0
    gain_den: float = 0.0
    gain_applied: float = 0.0

    @property
    def gain(self) -> float:
        return self.gain_num / self.gain_den if self.gain_den > 0 else 0.0


def weighted_median(values: FloatArray, weights: FloatArray) -> float:
    """The value at half the total weight (values sorted)."""
    order = np.argsort(values)
    cw = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cw, 0.5 * cw[-1])])


class Detector:
    """Sequential fault / drift test over the stages of a mapping."""

    def __init__(self, checks: list[StageChecks], params: CheckParams):
        self.checks = checks
        self.p = params
        self.state = [StageState(np.zeros(c.t.shape[1]), np.zeros((c.t.shape[1], c.ref.shape[0])),
                                 np.zeros((c.t.shape[1], c.ref.shape[0]))) for c in checks]
        self.n_vmm = 0

    def reset(self, stage: int | None = None) -> None:
        """Clear the CUSUMs and line sums (after a repair); the drift estimate is kept."""
        for i, st in enumerate(self.state):
            if stage is None or i == stage:
                st.cusum[:] = 0.0
                st.glr_s[:] = 0.0
                st.glr_i[:] = 0.0

    def update(self, stage: int, v: FloatArray, out: FloatArray) -> tuple[list[Alarm], list[DriftEvent], FloatArray]:
        """Feed one batch of a stage's VMMs (in order); returns alarms, drift events, z (B, q)."""
        c, st, p = self.checks[stage], self.state[stage], self.p
        s, e, sd = c.syndromes(v, out)
        alarms, drifts = [], []
        z_all = np.empty_like(s)
        g_cols = c.follows_gain
        for b in range(s.shape[0]):
            n = self.n_vmm + b
            g_b = st.gain_applied
            if g_cols.any():
                # common gain: out = (1 + g) * expected, so s = g * e on every group check; the weighted
                # median of the per-group ratios ignores a group that holds a new fault
                e_b, s_b, sd_b = e[b, g_cols], s[b, g_cols], sd[b, g_cols]
                ok = np.abs(e_b) > 0
                if ok.any():
                    w = (e_b[ok] / sd_b[ok]) ** 2
                    g_b = weighted_median(s_b[ok] / e_b[ok], w)
                    st.gain_num = p.drift_forget * st.gain_num + float(w.sum()) * g_b
                    st.gain_den = p.drift_forget * st.gain_den + float(w.sum())
                stderr = 1.0 / np.sqrt(st.gain_den) if st.gain_den > 0 else np.inf
                if abs(st.gain - st.gain_applied) > max(p.drift_min, p.drift_sigmas * stderr):
                    st.gain_applied = st.gain
                    drifts.append(DriftEvent(stage, n, st.gain, stderr))
            # a shift shared by the groups is drift, not a fault: this VMM's common gain comes off first, from
            # every check (a checksum check's expected value is not zero: its column holds its own write error)
            resid = s[b] - g_b * e[b]
            z = resid / sd[b]
            z_all[b] = z
            st.cusum = np.maximum(0.0, st.cusum + z * z - p.cusum_k)
            over = np.flatnonzero(st.cusum > p.cusum_h)
            if over.size and not alarms:  # one alarm per stage and batch: the rest is the same evidence
                q = int(over[np.argmax(st.cusum[over])])
                alarms.append(Alarm(stage, q, n, float(st.cusum[q])))
            glr_q = np.flatnonzero(~g_cols) if p.glr else np.zeros(0, np.intp)
            if glr_q.size:
                w = 1.0 / sd[b, glr_q] ** 2
                st.glr_s[glr_q] = p.glr_forget * st.glr_s[glr_q] + np.outer(resid[glr_q] * w, v[b])
                st.glr_i[glr_q] = p.glr_forget * st.glr_i[glr_q] + np.outer(w, v[b] * v[b])
                t_ql = st.glr_s[glr_q] ** 2 / np.maximum(st.glr_i[glr_q], 1e-300)
                top = np.unravel_index(int(np.argmax(t_ql)), t_ql.shape)
                if t_ql[top] > p.glr_h:
                    if not alarms:
                        alarms.append(Alarm(stage, int(glr_q[top[0]]), n, float(t_ql[top]), "fault-glr"))
                    over = np.array([1])
            if over.size:
                st.cusum[:] = 0.0
                st.glr_s[:] = 0.0
                st.glr_i[:] = 0.0
        if stage == len(self.checks) - 1:
            self.n_vmm += s.shape[0]
        return alarms, drifts, z_all

    def gains(self) -> list[float]:
        return [st.gain_applied for st in self.state]

    def params_dict(self) -> dict:
        return asdict(self.p)


__all__ = ["CheckParams", "StageChecks", "Detector", "Alarm", "DriftEvent", "check_matrix", "CHECK_KINDS"]
