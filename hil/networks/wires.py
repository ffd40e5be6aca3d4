"""Wire resistance in seed 000's circuit: every layer's differential array solved as a crossbar.

Each layer's physical array (rows x 2 cols, inputs on the source lines, bit lines into
ideal I-V stages at 0 V) is solved with :class:`simulated_bench.crossbar.CrossbarSolver`
for all images of a batch at once (one sparse LU serves the batch). The bit-line
currents are

    I_wired(v) = I_circuit(v) + [I_xbar(v; wires) - I_xbar(v; ideal wires)]

where I_circuit is :meth:`NeuromorphicCircuit.layer_currents` (the fitted 1T1R I-V) and
both I_xbar are full nonlinear crossbar solves (no linearisation). The bracket is the
IR-drop shift; it is zero by construction for ideal wires, so this path then reproduces
the circuit's own inference bit for bit, and against a direct crossbar solve it keeps
only the circuit's fit error (~1e-6 of a cell's full-scale current).

Geometry (``simulated_bench.crossbar``): source lines are driven from the column-0 end,
bit lines read at the last row's end, ``r`` ohm per segment. A stuck-on pair (~1.6 mS
per 1T1R cell) draws far more current than a working or stuck-off one, so it lowers
the source-line voltage seen by every cell further along its row and raises the node
voltage of its two bit lines: stuck-on and stuck-off no longer give the same outputs.

The I-V stage is ideal here (``CircuitParams.r_in`` must be 0 when the wires have
resistance): the solver holds each bit line's end at its driver voltage, and the
per-column load is the circuit's other, separate non-ideality.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from simulated_bench.crossbar import CrossbarSolver, WireParams
from simulated_bench.faults import STUCK_OFF, STUCK_ON, WORKING, validate_codes

from .circuit import FloatArray, NeuromorphicCircuit, expand_pairs


class WiredCircuit:
    """A :class:`NeuromorphicCircuit` whose four arrays have resistive bit and source lines.

    ``wires``: segment resistances (ohm); word-line resistance does not enter the DC read.
    """

    def __init__(self, circuit: NeuromorphicCircuit, wires: WireParams):
        if not wires.ideal and circuit.params.r_in != 0:
            raise ValueError("the wired path needs an ideal I-V stage (CircuitParams.r_in = 0); "
                             f"got r_in = {circuit.params.r_in} ohm")
        self.circuit, self.wires = circuit, wires
        self._clean: dict[int, tuple[CrossbarSolver, CrossbarSolver]] = {}

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return self.circuit.shapes

    def layer_states(self, layer: int, codes_logical: NDArray | None) -> FloatArray:
        """Physical device states (rows, 2 cols) of one layer with a logical fault map applied."""
        L = self.circuit.layers[layer]
        if codes_logical is None:
            return L.states
        codes = expand_pairs(validate_codes(codes_logical, L.logical_shape, (WORKING, STUCK_OFF, STUCK_ON)))
        m = self.circuit.model
        return np.where(codes == STUCK_OFF, m.state_off, np.where(codes == STUCK_ON, m.state_on, L.states))

    def solvers(self, layer: int, codes_logical: NDArray | None) -> tuple[CrossbarSolver, CrossbarSolver]:
        """(wired, ideal-wire) solvers of one layer; the fault-free pair is kept (its LU is reused)."""
        if codes_logical is None and layer in self._clean:
            return self._clean[layer]
        c = self.circuit
        states = self.layer_states(layer, codes_logical)
        pair = (CrossbarSolver(c.model, c.cell, states, self.wires, c.params.v_gate),
                CrossbarSolver(c.model, c.cell, states, WireParams(), c.params.v_gate))
        if codes_logical is None:
            self._clean[layer] = pair
        return pair

    def crossbar_currents(self, layer: int, v_rows: FloatArray, codes_logical: NDArray | None = None,
                          ideal: bool = False) -> FloatArray:
        """Direct crossbar solve: current (A) into each bit line, (n, 2 cols), for source lines (n, rows)."""
        solver = self.solvers(layer, codes_logical)[1 if ideal else 0]
        v_rows = np.asarray(v_rows, float)
        return -solver.solve(np.zeros(solver.cols), v_rows).i_bl

    def layer_currents(self, layer: int, v_rows: FloatArray, codes_logical: NDArray | None = None) -> FloatArray:
        """Bit-line currents (A), (n, 2 cols): the circuit's fitted currents plus the wires' IR-drop shift."""
        c = self.circuit
        i = c.layer_currents(layer, v_rows, c.faulty_coef(layer, codes_logical))
        if self.wires.ideal:
            return i
        shift = (self.crossbar_currents(layer, v_rows, codes_logical)
                 - self.crossbar_currents(layer, v_rows, codes_logical, ideal=True))
        return i + shift

    def layer_forward(self, layer: int, v_rows: FloatArray, codes_logical: NDArray | None = None) -> FloatArray:
        """Output voltages (n, cols) of one layer."""
        return self.circuit.currents_to_outputs(layer, self.layer_currents(layer, v_rows, codes_logical))

    def _next_rows(self, v_o: FloatArray) -> FloatArray:
        return np.hstack([v_o, np.full((v_o.shape[0], 1), self.circuit.params.v_bias)])

    def forward(self, x: FloatArray, faults: dict[int, NDArray] | None = None) -> list[FloatArray]:
        """Source-line voltages of every layer and the output voltages: [v0, v1, v2, v3, v_out]."""
        faults = faults or {}
        rows = self.circuit.input_voltages(x)
        out = [rows]
        n_layers = len(self.circuit.layers)
        for layer in range(n_layers):
            v_o = self.layer_forward(layer, rows, faults.get(layer))
            rows = self._next_rows(v_o) if layer < n_layers - 1 else v_o
            out.append(rows)
        return out

    def output_voltages(self, x: FloatArray, faults: dict[int, NDArray] | None = None) -> FloatArray:
        return self.forward(x, faults)[-1]

    def outputs_from(self, layer: int, rows: FloatArray, codes_logical: NDArray | None) -> FloatArray:
        """Output voltages when ``layer`` carries a fault map and gets source-line voltages ``rows``."""
        v = self.layer_forward(layer, rows, codes_logical)
        for later in range(layer + 1, len(self.circuit.layers)):
            v = self.layer_forward(later, self._next_rows(v))
        return v

    def predict(self, x: FloatArray, faults: dict[int, NDArray] | None = None) -> NDArray[np.int64]:
        return np.argmax(self.output_voltages(x, faults), axis=1)
