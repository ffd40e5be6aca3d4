"""Seed 000's neuromorphic circuit: the digits network on four differential 1T1R arrays.

Mapping (seed 000 II.A). Layer l's weights and bias form a (fan_in + 1) x fan_out
logical array (the bias is the last row, driven by ``v_bias``). Each logical weight is
a pair of cells in adjacent physical columns (2i = i+, 2i+1 = i-), so the chip array is
(fan_in + 1) x (2 fan_out). A weight w becomes target 1T1R read conductances

    G+ = G_lo + k max(w, 0),   G- = G_lo + k max(-w, 0),   k = (G_hi - G_lo) / max|w|

inside the cell's window (Stanford model, 4.4 uS .. 1.8 mS for the bare device; the
access transistor trims the top to about 1.6 mS), and each cell is programmed to the gap
that gives its target at the reference read voltage.

Read physics. Inputs are read voltages on the source lines, each bit line feeds a
current-to-voltage stage with a finite input impedance ``r_in`` (the column node sits at
u = r_in I, not at an ideal virtual ground). A cell passes f(state, V_j - u), where f
is the full 1T1R solution of :func:`simulated_bench.cell.solve_cell` (Stanford sinh I-V
in series with the NMOS). Eq. 1-3: V_o,i = R_load (I_i+ - I_i-), rectified between layers
(and, as in seed 000 Fig. 3, after the last layer) and clipped at the stage's rail.

Vectorisation over all images. f is fitted per cell by a polynomial in V over the
voltage range the circuit uses (degree 5: max error ~1e-6 of the cell's full-scale
current, checked in the tests). Then a column's current at node voltage u is a Taylor
series in u whose coefficients are (n_images x rows) @ (rows x cols) products, and u is
solved per image and column by Newton's method. With ``r_in = 0`` this matches the
array's :meth:`~simulated_bench.array.SimulatedArray.vmm` to the fit error (~1e-6); with
``r_in > 0`` it matches a direct solve_cell fixed point per bit line to ~1e-4 of the
largest column current (both checked in tests/test_network.py). That residual is the one
approximation: f is taken as a function of the voltage across the cell only, while the
transistor's gate overdrive really shifts with the node voltage u (mV to tens of mV).

Stuck devices. A stuck-off pair has both cells at the largest gap (~4.4 uS), stuck-on
at the smallest (~1.8 mS bare device). With ``r_in = 0`` both give w = 0 and are
indistinguishable; with ``r_in > 0`` a stuck-on pair loads both of its columns, raises
their node voltages and compresses every current in them, which stuck-off does not.
Wire resistance: :mod:`hil.networks.wires` adds the crossbar solver's IR drop to this path.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
from numpy.typing import NDArray

from simulated_bench.array import NO_VARIATION, SimulatedArray, default_cell
from simulated_bench.cell import CellParams, solve_cell
from simulated_bench.devices.base import DeviceModel
from simulated_bench.devices.stanford import StanfordGapModel
from simulated_bench.faults import STUCK_OFF, STUCK_ON, WORKING, validate_codes

from .digits import DigitsNetwork

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class CircuitParams:
    """Electrical design of the circuit (SI units)."""

    v_in_max: float = 0.1  # V on a source line for a full-scale pixel (16)
    v_bias: float = 0.1  # V on the bias row
    v_act: float = 0.1  # V for the largest hidden activation over the calibration images
    v_gate: float = 3.0  # V on every word line during inference
    r_in: float = 10.0  # ohm, input impedance of the I-V stage seen by each physical bit line
    v_rail: float = 0.15  # V, output rail of the I-V/rectifier stage (|V_o| clipped here)
    rectify_output: bool = True  # seed 000 Fig. 3 rectifies the last layer as well
    fit_degree: int = 5  # polynomial degree of the per-cell I-V fit (max error ~1e-6 of full scale)
    taylor_order: int = 3  # order of the expansion in the column node voltage u
    newton_iters: int = 3

    def __post_init__(self) -> None:
        for name in ("v_in_max", "v_bias", "v_act", "v_gate", "v_rail"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.r_in < 0:
            raise ValueError(f"r_in must be >= 0 ohm, got {self.r_in}")
        if self.v_rail < max(self.v_in_max, self.v_act, self.v_bias):
            raise ValueError("v_rail must be at least the largest read voltage")
        if self.fit_degree < 1 or self.taylor_order < 0 or self.newton_iters < 0:
            raise ValueError("fit_degree >= 1, taylor_order >= 0 and newton_iters >= 0 required")


def cell_current(model: DeviceModel, cell: CellParams, state: FloatArray, v: FloatArray, v_gate: float) -> FloatArray:
    """Current (A) a cell delivers into its bit line when its source line is ``v`` above it.

    The bit line is held at 0 V. In the circuit it sits at the few-mV node voltage u
    instead, which shifts the transistor's overdrive by u: the expansion's one
    approximation. (Grounding the bit line for both signs keeps f analytic in v, so the
    polynomial fit converges fast.)
    """
    i, _ = solve_cell(model, cell, state, 0.0, np.asarray(v, float), v_gate)
    return -i


def fit_cells(model: DeviceModel, cell: CellParams, states: FloatArray, v_span: float, v_gate: float,
              degree: int) -> FloatArray:
    """Polynomial coefficients c_k of f(state, V) = sum_k c_k (V / v_span)^k, shape (degree+1, *states.shape).

    Least squares on Chebyshev nodes of [-v_span, v_span]; the fit is done per distinct state.
    """
    n_nodes = 3 * (degree + 1)
    x = np.cos(np.pi * (np.arange(n_nodes) + 0.5) / n_nodes)
    vander = x[:, None] ** np.arange(degree + 1)[None, :]
    pinv = np.linalg.pinv(vander)  # (degree+1, n_nodes)
    flat = np.asarray(states, float).ravel()
    uniq, inv = np.unique(flat, return_inverse=True)
    f = cell_current(model, cell, uniq[:, None], x[None, :] * v_span, v_gate)  # (n_uniq, n_nodes)
    coef = f @ pinv.T  # (n_uniq, degree+1)
    return coef[inv].T.reshape(degree + 1, *np.shape(states))


def column_currents(v_in: FloatArray, coef: FloatArray, v_span: float, r_in: float, taylor_order: int = 3,
                    newton_iters: int = 3) -> FloatArray:
    """Current (A) into each bit line's I-V stage, (n_images, cols), for inputs (n_images, rows).

    ``coef`` holds the per-cell fit of :func:`fit_cells`, shape (K+1, rows, cols). With
    ``r_in > 0`` the node voltage u solves u = r_in * sum_j f_j(V_j - u).
    """
    K = coef.shape[0] - 1
    n_img, rows, cols = np.shape(v_in)[0], coef.shape[1], coef.shape[2]
    x = np.asarray(v_in, float) / v_span
    n_terms = 0 if r_in == 0 else min(taylor_order, K)
    # Taylor coefficients in the node voltage, E[n] = (1/n!) sum_j d^n f_j/dx^n (x_j)
    #   = sum_m x^m @ (c_{m+n} C(m+n, n)),
    # all as one product: [x, x^2, .., x^K] @ a block matrix (m, n) -> c_{m+n} C(m+n, n).
    big = np.zeros((K, rows, n_terms + 1, cols))
    for m in range(1, K + 1):
        for n in range(min(n_terms, K - m) + 1):
            big[m - 1, :, n, :] = coef[m + n] * comb(m + n, n)
    const = np.stack([coef[n].sum(axis=0) for n in range(n_terms + 1)])  # the m = 0 terms
    powers = np.empty((n_img, K, rows))
    powers[:, 0] = x
    for m in range(1, K):
        np.multiply(powers[:, m - 1], x, out=powers[:, m])
    E = (powers.reshape(n_img, K * rows) @ big.reshape(K * rows, (n_terms + 1) * cols)).reshape(
        n_img, n_terms + 1, cols)
    E += const[None]
    if n_terms == 0:
        return E[:, 0]
    E = E.transpose(1, 0, 2)
    # Newton on g(u) = u - r_in I(u) with I(u) = sum_n E_n t^n, t = -u / v_span (Horner)
    u = r_in * E[0] / (1.0 + r_in * E[1] / v_span)  # the linear-load solution as the start
    for _ in range(newton_iters):
        t = u * (-1.0 / v_span)
        i_u = E[n_terms].copy()
        di_dt = n_terms * E[n_terms]
        for n in range(n_terms - 1, -1, -1):
            i_u *= t
            i_u += E[n]
            if n:
                di_dt = di_dt * t + n * E[n]
        u = u - (u - r_in * i_u) / (1.0 + r_in * di_dt / v_span)
    return u / r_in


def expand_pairs(codes_logical: NDArray) -> NDArray[np.int8]:
    """Logical (rows, cols) fault codes -> physical (rows, 2 cols): both cells of a pair share the code."""
    return np.repeat(np.asarray(codes_logical, np.int8), 2, axis=1)


@dataclass
class MappedLayer:
    """One layer on its array: targets, programmed states, fit coefficients, load."""

    index: int
    weights: FloatArray  # (rows, cols) logical weights incl. the bias row (bias scaled to volts)
    g_target: FloatArray  # (rows, 2 cols) target 1T1R read conductances, S
    states: FloatArray  # (rows, 2 cols) programmed device states
    coef: FloatArray  # (K+1, rows, 2 cols)
    k_siemens: float  # S per unit weight
    r_load: float  # ohm, transimpedance of eq. 3
    rectify: bool

    @property
    def logical_shape(self) -> tuple[int, int]:
        return self.weights.shape  # type: ignore[return-value]


class NeuromorphicCircuit:
    """The four-array circuit of seed 000 built from a trained :class:`DigitsNetwork`.

    ``x_cal`` (images in [0, 1]) sets each layer's load so the largest activation over
    those images maps to ``v_act`` (use the network's training images).
    """

    def __init__(self, net: DigitsNetwork, x_cal: FloatArray, params: CircuitParams | None = None,
                 model: DeviceModel | None = None, cell: CellParams | None = None):
        self.params = p = params or CircuitParams()
        self.model = model or StanfordGapModel()
        self.cell = cell or default_cell(self.model, p.v_gate)
        self.v_span = p.v_rail
        self.net = net
        # the cell's read-conductance window at the reference voltage, and its inverse
        self.v_ref = 0.5 * p.v_in_max
        lo, hi = sorted((self.model.state_on, self.model.state_off))
        grid = np.linspace(lo, hi, 2001)
        g_cell = cell_current(self.model, self.cell, grid, self.v_ref, p.v_gate) / self.v_ref
        order = np.argsort(g_cell)
        self._g_grid, self._s_grid = g_cell[order], grid[order]
        self.g_lo, self.g_hi = float(self._g_grid[0]), float(self._g_grid[-1])
        stuck = np.array([self.model.state_off, self.model.state_on])
        self.coef_off, self.coef_on = fit_cells(self.model, self.cell, stuck, self.v_span, p.v_gate, p.fit_degree).T
        acts = net.activations(np.asarray(x_cal, float))
        s_in = p.v_in_max  # volts per unit of the layer's input
        self.layers: list[MappedLayer] = []
        n_layers = len(net.Ws)
        for l, (W, b) in enumerate(zip(net.Ws, net.bs)):
            wt = np.vstack([W, (b * s_in / p.v_bias)[None, :]])
            k = (self.g_hi - self.g_lo) / np.max(np.abs(wt))
            g = np.empty((wt.shape[0], 2 * wt.shape[1]))
            g[:, 0::2] = self.g_lo + k * np.maximum(wt, 0.0)
            g[:, 1::2] = self.g_lo + k * np.maximum(-wt, 0.0)
            states = self.state_for_read_conductance(g)
            coef = fit_cells(self.model, self.cell, states, self.v_span, p.v_gate, p.fit_degree)
            peak = np.max(np.maximum(acts[l + 1], 0.0))
            s_out = p.v_act / peak
            last = l == n_layers - 1
            self.layers.append(MappedLayer(l, wt, g, states, coef, float(k), float(s_out / (k * s_in)),
                                           rectify=(not last) or p.rectify_output))
            s_in = s_out

    # ------------------------------------------------------------------------------------
    def state_for_read_conductance(self, g: FloatArray) -> FloatArray:
        """Device state that gives 1T1R read conductance ``g`` (S) at the reference voltage."""
        g = np.asarray(g, float)
        if np.any(g < self.g_lo * (1 - 1e-9)) or np.any(g > self.g_hi * (1 + 1e-9)):
            raise ValueError(f"target conductance outside the cell window [{self.g_lo:g}, {self.g_hi:g}] S")
        return np.interp(g, self._g_grid, self._s_grid)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Logical (rows, cols) of each layer's array: [(65, 50), (51, 20), (21, 8), (9, 10)]."""
        return [layer.logical_shape for layer in self.layers]

    def faulty_coef(self, layer: int, codes_logical: NDArray | None) -> FloatArray:
        """Fit coefficients of one layer with the logical fault map applied (both cells of a pair)."""
        coef = self.layers[layer].coef
        if codes_logical is None:
            return coef
        codes = expand_pairs(validate_codes(codes_logical, self.layers[layer].logical_shape, (WORKING, STUCK_OFF, STUCK_ON)))
        out = np.where((codes == STUCK_OFF)[None], self.coef_off[:, None, None], coef)
        return np.where((codes == STUCK_ON)[None], self.coef_on[:, None, None], out)

    def input_voltages(self, x: FloatArray) -> FloatArray:
        """Source-line voltages of layer 0 for images in [0, 1] (bias row appended)."""
        x = np.asarray(x, float)
        return np.hstack([x * self.params.v_in_max, np.full((x.shape[0], 1), self.params.v_bias)])

    def layer_currents(self, layer: int, v_rows: FloatArray, coef: FloatArray | None = None) -> FloatArray:
        """Current (A) into each physical bit line's I-V stage, (n, 2 cols), for source-line voltages (n, rows)."""
        p = self.params
        return column_currents(v_rows, self.layers[layer].coef if coef is None else coef, self.v_span, p.r_in,
                               p.taylor_order, p.newton_iters)

    def currents_to_outputs(self, layer: int, i: FloatArray) -> FloatArray:
        """Eq. 1-3: differential bit-line currents (n, 2 cols) -> rectified, clipped output voltages (n, cols)."""
        p = self.params
        L = self.layers[layer]
        v_o = L.r_load * (i[:, 0::2] - i[:, 1::2])
        lo = 0.0 if L.rectify else -p.v_rail
        return np.clip(v_o, lo, p.v_rail)

    def layer_forward(self, layer: int, v_rows: FloatArray, coef: FloatArray | None = None) -> FloatArray:
        """Output voltages (n, cols) of one layer for source-line voltages (n, rows)."""
        return self.currents_to_outputs(layer, self.layer_currents(layer, v_rows, coef))

    def _next_rows(self, v_o: FloatArray) -> FloatArray:
        return np.hstack([v_o, np.full((v_o.shape[0], 1), self.params.v_bias)])

    def forward(self, x: FloatArray, faults: dict[int, NDArray] | None = None) -> list[FloatArray]:
        """Source-line voltages of every layer and the 10 output voltages: [v0, v1, v2, v3, v_out]."""
        faults = faults or {}
        rows = self.input_voltages(x)
        out = [rows]
        for l in range(len(self.layers)):
            v_o = self.layer_forward(l, rows, self.faulty_coef(l, faults.get(l)))
            if l < len(self.layers) - 1:
                rows = self._next_rows(v_o)
                out.append(rows)
            else:
                out.append(v_o)
        return out

    def output_voltages(self, x: FloatArray, faults: dict[int, NDArray] | None = None) -> FloatArray:
        """The 10 output voltages (n, 10) of the last layer."""
        return self.forward(x, faults)[-1]

    def outputs_from(self, layer: int, rows: FloatArray, codes_logical: NDArray | None) -> FloatArray:
        """Output voltages when ``layer`` carries a fault map and gets source-line voltages ``rows``."""
        v = self.layer_forward(layer, rows, self.faulty_coef(layer, codes_logical))
        for l in range(layer + 1, len(self.layers)):
            v = self.layer_forward(l, self._next_rows(v))
        return v

    def predict(self, x: FloatArray, faults: dict[int, NDArray] | None = None) -> NDArray[np.int64]:
        return np.argmax(self.output_voltages(x, faults), axis=1)

    def arrays(self, faults: dict[int, NDArray] | None = None, seed: int = 0) -> list[SimulatedArray]:
        """The four programmed chip arrays (no variation), with stuck pairs pinned by the chip."""
        faults = faults or {}
        out = []
        for L in self.layers:
            rows, pcols = L.states.shape
            codes = None if faults.get(L.index) is None else expand_pairs(faults[L.index])
            out.append(SimulatedArray(rows, pcols, self.model, self.cell, NO_VARIATION, codes, seed,
                                      initial_state=L.states))
        return out


def reference_column_currents(array: SimulatedArray, v_rows: FloatArray, v_gate: float, r_in: float,
                              iters: int = 60) -> FloatArray:
    """Direct solve (no fit, no expansion) of the bit-line currents of one array for each input vector.

    For every image the node voltage of each bit line is bracketed and bisected with the
    full solve_cell of every cell. Slow; for validating :func:`column_currents`.
    """
    v_rows = np.atleast_2d(np.asarray(v_rows, float))
    out = np.empty((v_rows.shape[0], array.cols))
    for n, v in enumerate(v_rows):
        def total(u: FloatArray) -> FloatArray:
            i, _ = solve_cell(array.model, array.cell, array.state, u[None, :], v[:, None], v_gate)
            return -i.sum(axis=0)

        if r_in == 0:
            out[n] = total(np.zeros(array.cols))
            continue
        lo = np.zeros(array.cols)
        hi = np.full(array.cols, max(float(v.max()), 0.0))
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            above = mid - r_in * total(mid) > 0  # g(u) = u - r_in I(u) increases with u
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        out[n] = 0.5 * (lo + hi) / r_in
    return out
