"""SPICE check of one neuron-synapse-neuron unit (seed 004 Fig. 6/7) against the PyTorch model.

The unit, as a netlist for ngspice (run through spicelib):

* pre-neuron: 3 V gate pulses (rise/fall 100 us, width 900 us) at the spike times;
* 1T1R synapse, MOD: the seed-004 Cu:Te memristor as a behavioural source with the
  device model's I-V ``I = G V_n sinh(V / V_n)`` from the 50 mV read line to the drain of
  a level-1 NMOS (W/L 65, the project's square-law parameters) whose source sits at
  the virtual ground of the TIA;
* current-to-voltage stage: op-amp 1 (gain 1e6) with feedback resistor ``r_tia``
  gives -I R; op-amp 2 (unity inverter) gives +I R;
* synapse: a behavioural equivalent of the DPI's double-exponential response, two
  RC integrators on ``c_syn`` (seed 004: 260 pF) charged by ``g_in`` times that voltage,
  with time constants tau_rise and tau_fall; I_syn = g_syn (V_fall - V_rise), the
  continuous form of eq. 2-4;
* post-neuron: membrane capacitor ``c_mem`` (seed 004: 260 nF) with a leak resistor
  giving tau_mem, charged by I_syn (LIF below threshold, as in the 100 ms readout).

:func:`spice_network` builds the same pieces into the whole 64 x 10 network (Fig. 8D,
with a reference column for the weight-0 current) and runs it image by image.

The PyTorch side runs eq. 1-5 at 1 ms with the spike's drive equal to the cell current
(computed by :func:`simulated_bench.cell.solve_cell`) over ``i_scale``. The scale
between the two is fixed by the circuit constants, not fitted: one unit of torch drive
for one step is a charge ``i_scale * dt``; see :meth:`NsnCircuit.torch_to_si`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from numpy.typing import NDArray

from simulated_bench.cell import CellParams, solve_cell
from simulated_bench.devices.cute_multilevel import CuTeMultilevelModel
from simulated_bench.spice.netlist import CHANNEL_LENGTH, NMOS_MODEL, nmos_model, num
from simulated_bench.spice.runner import SpiceRunner, ngspice_available  # noqa: F401  (re-exported for callers)

from .network import SnnParams, run_lif

SPIKE_TIMES_FIG7 = (10e-3, 110e-3, 150e-3, 200e-3)  # s, seed 004 Fig. 7A


@dataclass(frozen=True)
class NsnCircuit:
    """Circuit constants of the unit (SI units)."""

    g_memristor: float = 120e-6  # S, programmed memristor conductance
    v_read: float = 0.05
    v_gate: float = 3.0
    t_edge: float = 100e-6  # s, pulse rise and fall (seed 004)
    t_width: float = 900e-6  # s, pulse top (seed 004)
    r_tia: float = 100e3  # ohm, TIA feedback
    opamp_gain: float = 1e6
    g_in: float = 1e-6  # S, synapse input transconductance
    c_syn: float = 260e-12  # F (seed 004)
    g_syn: float = 1e-5  # S, output transconductance of the synapse
    c_mem: float = 260e-9  # F (seed 004)
    i_scale: float = 10e-6  # A, cell current that is one unit of torch drive
    snn: SnnParams = field(default_factory=SnnParams)
    cell: CellParams = field(default_factory=CellParams)
    model: CuTeMultilevelModel = field(default_factory=CuTeMultilevelModel)

    def cell_current(self) -> float:
        """Read current of the 1T1R cell with the gate fully on (A), from the project's cell solver."""
        state = self.model.state_for_conductance(self.g_memristor)
        i, _ = solve_cell(self.model, self.cell, state, self.v_read, 0.0, self.v_gate)
        return float(i)

    def torch_to_si(self, area_matched: bool = True) -> tuple[float, float]:
        """(A per torch synaptic-current unit, V per torch membrane unit).

        Torch eq. 2-3 add ``NF * d`` to each trace for a drive ``d`` in one step; the
        circuit adds ``g_in r_tia i_scale d dt / c_syn`` volts to each integrator, and
        I_syn = g_syn * (difference). The membrane sums I_syn once per step in torch and
        integrates ``I_syn / c_mem`` in the circuit. Sampling the 0.5 ms rise once per
        1 ms step makes the torch sum of one spike's current smaller than the
        continuous integral (:func:`discrete_area_ratio`); ``area_matched`` sizes the
        membrane gain so one spike charges both membranes alike, the "proper choice of
        circuit parameters" seed 004 makes by tuning V_syn,tau and V_mem,tau.
        """
        p = self.snn
        amp_per_unit = self.g_syn * self.g_in * self.r_tia * self.i_scale * p.dt / (self.c_syn * p.norm_factor)
        volt = amp_per_unit * p.dt / self.c_mem
        return amp_per_unit, volt / discrete_area_ratio(p) if area_matched else volt

    # netlist pieces ---------------------------------------------------------------------
    def gate_source(self, tag: str, node: str, spike_times: tuple[float, ...]) -> str:
        """Pre-neuron: 3 V gate pulses (100 us edges, 900 us top) starting at each spike time (s)."""
        pwl = ["0 0"]
        for t in spike_times:
            pwl += [f"{t:.6g} 0", f"{t + self.t_edge:.6g} {self.v_gate}",
                    f"{t + self.t_edge + self.t_width:.6g} {self.v_gate}",
                    f"{t + 2 * self.t_edge + self.t_width:.6g} 0"]
        return f"VG{tag} {node} 0 PWL({' '.join(pwl)})" if spike_times else f"VG{tag} {node} 0 0"

    def cell_lines(self, tag: str, g: float, top: str, gate: str, sink: str) -> list[str]:
        """1T1R MOD cell: the Cu:Te device's I-V at conductance ``g`` from ``top`` to the drain, NMOS to ``sink``."""
        n, vn = self.cell.nmos, self.model.p.V_n
        d = f"d{tag}"
        return [f"BM{tag} {top} {d} I = {num(g * vn)} * sinh(V({top},{d}) / {vn})",
                f"M{tag} {d} {gate} {sink} 0 {NMOS_MODEL} w={num(n.w_over_l * CHANNEL_LENGTH)} l={num(CHANNEL_LENGTH)}",
                f"RL{tag} {d} {sink} {num(1.0 / n.g_off)}"]  # the off-state leakage the numpy cell has

    def tia_lines(self, tag: str, sink: str, out: str) -> list[str]:
        """Op-amp 1 (gain ``opamp_gain``) holds ``sink`` at virtual ground; ``out`` = -I r_tia."""
        return [f"ET{tag} {out} 0 0 {sink} {self.opamp_gain}", f"RT{tag} {sink} {out} {self.r_tia}"]

    def synapse_lines(self, tag: str, vin: str, vmem: str) -> list[str]:
        """Rise and fall integrators on c_syn driven by g_in * V(vin); I_syn = g_syn (V_fall - V_rise) into c_mem.

        The 0 V source ``VSYN{tag}`` carries I_syn.
        """
        p = self.snn
        vr, vf, ns = f"vr{tag}", f"vf{tag}", f"ns{tag}"
        return [f"GR{tag} 0 {vr} {vin} 0 {self.g_in}", f"CR{tag} {vr} 0 {self.c_syn}",
                f"RR{tag} {vr} 0 {num(p.tau_rise / self.c_syn)}",
                f"GF{tag} 0 {vf} {vin} 0 {self.g_in}", f"CF{tag} {vf} 0 {self.c_syn}",
                f"RF{tag} {vf} 0 {num(p.tau_fall / self.c_syn)}",
                f"GS{tag} 0 {ns} {vf} {vr} {self.g_syn}", f"VSYN{tag} {ns} {vmem} 0",
                f"CM{tag} {vmem} 0 {self.c_mem}", f"RM{tag} {vmem} 0 {num(p.tau_mem / self.c_mem)}"]

    def netlist(self, spike_times: tuple[float, ...] = SPIKE_TIMES_FIG7, t_stop: float = 250e-3,
                t_step: float = 10e-6) -> str:
        """The unit's ngspice netlist: pre-neuron, 1T1R, TIA, inverter (op-amp 2), synapse, membrane ``vmem``."""
        return "\n".join([
            "* seed 004 neuron-synapse-neuron unit: 1T1R (MOD) + TIA + double-exponential synapse + LIF membrane",
            f"VREAD te 0 DC {self.v_read}", nmos_model(self.cell.nmos), self.gate_source("IN", "gate", spike_times),
            *self.cell_lines("1", self.g_memristor, "te", "gate", "vneg"),
            *self.tia_lines("1", "vneg", "tia"),
            "E2 vsig 0 0 tia 1",
            *self.synapse_lines("", "vsig", "vmem"),
            f".tran {t_step:.6g} {t_stop:.6g} 0 {t_step:.6g}", ".end", ""])

    def network_netlist(self, g: NDArray, spike_times: NDArray, g_ref: float, t_stop: float = 100e-3,
                        t_step: float = 20e-6) -> str:
        """The whole 64 x 10 network (seed 004 Fig. 8D) for one image.

        ``g`` (I, O) memristor conductances, ``spike_times`` (I,) in s (negative: no
        spike). Each input's spike gates its row; each column's cells sink into their
        own TIA; a reference column of ``g_ref`` cells (weight 0) has a TIA too, and
        op-amp 2 of column j outputs ``V_ref - V_j = r_tia (I_j - I_ref)``, the array
        path's reference subtraction. Membranes are ``vm0`` .. ``vm{O-1}``.
        """
        g = np.asarray(g, float)
        rows, cols = g.shape
        lines = ["* seed 004 64x10 SNN on 1T1R cells (Fig. 8D)", f"VREAD te 0 DC {self.v_read}", nmos_model(self.cell.nmos)]
        for i in range(rows):
            t = float(spike_times[i])
            lines.append(self.gate_source(str(i), f"g{i}", (t,) if t >= 0 else ()))
            for j in range(cols):
                lines += self.cell_lines(f"{i}_{j}", g[i, j], "te", f"g{i}", f"vn{j}")
            lines += self.cell_lines(f"{i}_ref", g_ref, "te", f"g{i}", "vnref")
        lines += self.tia_lines("ref", "vnref", "tiaref")
        for j in range(cols):
            lines += self.tia_lines(str(j), f"vn{j}", f"tia{j}")
            lines += [f"ES{j} vs{j} 0 tiaref tia{j} 1", *self.synapse_lines(str(j), f"vs{j}", f"vm{j}")]
        lines += [f".tran {t_step:.6g} {t_stop:.6g} 0 {t_step:.6g}", ".end", ""]
        return "\n".join(lines)


def discrete_area_ratio(p: SnnParams) -> float:
    """Sum over steps of one spike's torch I_syn over the continuous double exponential's area (< 1)."""
    a_r, a_f, _ = p.decays
    return (1.0 / (1.0 - a_f) - 1.0 / (1.0 - a_r)) * p.dt / (p.tau_fall - p.tau_rise)


def torch_unit(circuit: NsnCircuit, spike_times: tuple[float, ...] = SPIKE_TIMES_FIG7,
               t_stop: float = 250e-3) -> dict[str, NDArray]:
    """PyTorch eq. 1-5 for the same unit: time (s), I_syn and V_mem in torch units."""
    p = circuit.snn
    steps = int(round(t_stop / p.dt)) + 1
    drive = torch.zeros(1, steps, 1, dtype=torch.float64)
    for t in spike_times:
        drive[0, int(round(t / p.dt)), 0] = circuit.cell_current() / circuit.i_scale
    v, i_syn, _ = run_lif(drive, SnnParams(p.tau_rise, p.tau_fall, p.tau_mem, p.dt, None))
    return {"time": np.arange(steps) * p.dt, "i_syn": i_syn[0, :, 0].numpy(), "v_mem": v[0, :, 0].numpy()}


def compare(circuit: NsnCircuit | None = None, spike_times: tuple[float, ...] = SPIKE_TIMES_FIG7,
            t_stop: float = 250e-3) -> dict:
    """Run both models; errors relative to the torch peaks, the circuit sampled at the torch steps.

    ``v_peak_rel_err``: |max V_spice - max V_torch| / max V_torch (seed 004's ~2 %),
    with the area-matched membrane gain (``v_peak_rel_err_unmatched``: without it);
    ``v_max_rel_err``: largest pointwise membrane difference over max V_torch;
    ``i_peak_rel_err``: the same peak measure for I_syn.
    """
    c = circuit or NsnCircuit()
    with SpiceRunner("ngspice") as runner:
        spice = runner.run(c.netlist(spike_times, t_stop), ["time", "v(vmem)", "i(vsyn)", "i(vread)"], name="nsn")
    spice["time"] = np.abs(spice["time"])  # ngspice may store the axis with a sign flag
    # cell current in the middle of the first pulse's flat top (VREAD sources it, so its branch current is negative)
    t_mid = spike_times[0] + c.t_edge + 0.5 * c.t_width
    i_cell_spice = -float(np.interp(t_mid, spice["time"], spice["i(vread)"]))
    ref = torch_unit(c, spike_times, t_stop)
    amp, volt = c.torch_to_si()
    _, volt_raw = c.torch_to_si(area_matched=False)
    v_t = ref["v_mem"] * volt
    i_t = ref["i_syn"] * amp
    v_s = np.interp(ref["time"], spice["time"], spice["v(vmem)"])
    i_s = np.interp(ref["time"], spice["time"], spice["i(vsyn)"])
    return {
        "cell_current": c.cell_current(), "cell_current_spice": i_cell_spice,
        "v_peak_rel_err": float(abs(v_s.max() - v_t.max()) / v_t.max()),
        "v_max_rel_err": float(np.abs(v_s - v_t).max() / v_t.max()),
        "v_peak_rel_err_unmatched": float(abs(v_s.max() - ref["v_mem"].max() * volt_raw) / (ref["v_mem"].max() * volt_raw)),
        "i_peak_rel_err": float(abs(spice["i(vsyn)"].max() - i_t.max()) / i_t.max()),
        "time": ref["time"], "v_torch": v_t, "v_spice": v_s, "i_torch": i_t, "i_spice": i_s,
        "spice_time": spice["time"], "spice_v": spice["v(vmem)"], "spice_i": spice["i(vsyn)"],
    }


def spice_network(weights: NDArray, raster: NDArray, mapping=None, circuit: NsnCircuit | None = None) -> dict:
    """The 64 x 10 network in ngspice for each image of ``raster`` (N, T, I), against the array path.

    ``weights`` (I, O) in [0, 1] are mapped to conductances exactly (no tuning error);
    the PyTorch side is :class:`~hil.snn.array_inference.ArraySynapses` on the same
    conductances without read noise, so the two differ only by circuit versus
    discrete-time dynamics. Returns both max-membrane scores (volts), the decisions
    and their agreement.
    """
    from .array_inference import ArrayMapping, ArraySynapses

    m = mapping or ArrayMapping()
    c = replace(circuit or NsnCircuit(), i_scale=m.i_unit, v_read=m.v_read, v_gate=m.v_gate,
                cell=m.cell, model=m.model)
    g = m.conductance_for_weight(weights)
    _, volt = c.torch_to_si()
    torch_scores = ArraySynapses.from_conductances(g, m).scores(raster, c.snn, read_noise=0.0) * volt
    steps = np.asarray(raster)
    # latency coding fires each input at most once: its first spike step, or -1 for none
    times = np.where(steps.any(axis=1), steps.argmax(axis=1) * c.snn.dt, -1.0)  # (N, I) seconds
    cols = g.shape[1]
    spice_scores = np.empty_like(torch_scores)
    with SpiceRunner("ngspice") as runner:
        for k in range(len(steps)):
            out = runner.run(c.network_netlist(g, times[k], m.g_low, t_stop=steps.shape[1] * c.snn.dt),
                             [f"v(vm{j})" for j in range(cols)], name=f"snn{k}")
            spice_scores[k] = [out[f"v(vm{j})"].max() for j in range(cols)]
    return {"torch_scores": torch_scores, "spice_scores": spice_scores,
            "torch_pred": torch_scores.argmax(axis=1), "spice_pred": spice_scores.argmax(axis=1),
            "agreement": float(np.mean(torch_scores.argmax(axis=1) == spice_scores.argmax(axis=1))),
            "score_rel_err": float(np.median(np.abs(spice_scores - torch_scores) / torch_scores.max(axis=1, keepdims=True)))}
