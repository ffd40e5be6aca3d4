"""Localisation of a changed device from a few VMMs: first the output line, then the input line.

After an alarm on a stage, each output j of the stage is compared with its digital
reference over a few probe VMMs taken after the alarm (only then, so the full digital
product is computed for a dozen vectors, not for the stream):

    r_tj = out_tj / (1 + gain) - v_t @ g_ref[:, j]

The line with the largest normalised energy is the output line. A single changed device
(l, j) makes r_tj = v_tl * dG, so the input line is the l whose input column explains the
most of r_tj (one-atom matching pursuit), and dG its least-squares coefficient.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .checks import StageChecks
from .mapping import Stage

FloatArray = NDArray[np.float64]


@dataclass
class Localisation:
    """Where a change is, how big, and how sure (fraction of the residual energy one device explains)."""

    stage: int
    row: int
    col: int
    delta_g: float  # S, estimated change of the device's conductance
    g_estimate: float  # S, reference + change
    explained: float  # 0..1
    line_energy: float  # chi^2 of the chosen output line over the buffered VMMs
    n_vmm: int

    def suspected_code(self, g_max: float, tol_frac: float = 0.15) -> int:
        """1 stuck-OFF / 2 stuck-ON if the estimate sits at a window edge, 0 (drifted cell) otherwise."""
        if self.g_estimate <= tol_frac * g_max:
            return 1
        if self.g_estimate >= (1 - tol_frac) * g_max:
            return 2
        return 0


def localise(stage_index: int, stage: Stage, checks: StageChecks, check: int, v: FloatArray, out: FloatArray,
             gain: float = 0.0) -> Localisation:
    """Locate the device behind an alarm of ``check`` from buffered inputs ``v`` (B, n_in) and outputs (B, n_out)."""
    v = np.atleast_2d(v)
    out = np.atleast_2d(out)
    if v.shape[0] != out.shape[0] or v.shape[0] < 1:
        raise ValueError("need the same number (>= 1) of buffered inputs and outputs")
    # every output is compared (only the probes, only now): an alarm on one check may come from a fault
    # another check also covers, and the per-output energy decides
    cols = np.arange(stage.shape[1])
    ref = v @ stage.g_ref[:, cols]
    r = out[:, cols] / (1.0 + gain) - ref
    var = checks.rho[check] ** 2 * ((v * v) @ (stage.g_ref[:, cols] ** 2)) + 1e-300
    energy = np.sum(r * r / var, axis=0)
    jj = int(np.argmax(energy))
    j = int(cols[jj])
    rj = r[:, jj]
    vv = np.sum(v * v, axis=0)
    proj = rj @ v
    explained_l = np.where(vv > 0, proj ** 2 / np.where(vv > 0, vv, 1.0), 0.0)
    l = int(np.argmax(explained_l))
    dg = float(proj[l] / vv[l]) if vv[l] > 0 else 0.0
    total = float(rj @ rj)
    return Localisation(stage_index, l, j, dg, float(stage.g_ref[l, j] + dg),
                        float(explained_l[l] / total) if total > 0 else 0.0, float(energy[jj]), v.shape[0])




def localise_all(stage_index: int, stage: Stage, checks: StageChecks, v: FloatArray, out: FloatArray,
                 gain: float = 0.0, max_devices: int = 8, chi2_min: float | None = None) -> list[Localisation]:
    """Several changed devices of one stage from the same probes: one-atom matching pursuit per step,
    each found device's contribution removed from its output line before the next.

    Stops when no output line's chi^2 over the probes exceeds ``chi2_min`` (default
    4 x probes + 30: a fault-free line's chi^2 has mean = probes).
    """
    v = np.atleast_2d(v)
    out = np.atleast_2d(out)
    n_probe = v.shape[0]
    chi2_min = 4.0 * n_probe + 30.0 if chi2_min is None else chi2_min
    rho = float(np.median(checks.rho))
    r = out / (1.0 + gain) - v @ stage.g_ref
    var = rho ** 2 * ((v * v) @ (stage.g_ref ** 2)) + 1e-300
    vv = np.sum(v * v, axis=0)
    found: list[Localisation] = []
    for _ in range(max_devices):
        energy = np.sum(r * r / var, axis=0)
        j = int(np.argmax(energy))
        if energy[j] < chi2_min:
            break
        proj = r[:, j] @ v
        explained_l = np.where(vv > 0, proj ** 2 / np.where(vv > 0, vv, 1.0), 0.0)
        l = int(np.argmax(explained_l))
        dg = float(proj[l] / vv[l]) if vv[l] > 0 else 0.0
        total = float(r[:, j] @ r[:, j])
        found.append(Localisation(stage_index, l, j, dg, float(stage.g_ref[l, j] + dg),
                                  float(explained_l[l] / total) if total > 0 else 0.0, float(energy[j]), n_probe))
        r[:, j] -= v[:, l] * dg
    return found


__all__ = ["Localisation", "localise", "localise_all"]
