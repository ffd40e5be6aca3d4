"""On-bench inference of seed 000's network, with and without the output corrector.

The network's layers live on arrays of the bench (one array per layer, named in the
plan). Each array is written with ISPP to the differential target conductances of
:class:`hil.networks.circuit.NeuromorphicCircuit`; then every image runs layer by layer:
the layer's source-line voltages go to :meth:`Bench.vmm`, the bit-line currents come
back through the drivers, and the current-to-voltage stage of eq. 3 (V_o = R_load
(I+ - I-), rectified, railed) is applied here, as the circuit's comparator would. The
last layer's 10 voltages are the prediction (argmax) and the corrector's input.

The bench's vector multiplier holds its bit lines at virtual ground (r_in = 0), so the
loaded I-V stage of the study is not part of this path.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hil.networks.circuit import NeuromorphicCircuit
from hil.networks.mlp import MLP
from hil.bench import Bench

from .ispp import ISPPParams, ISPPResult, program


@dataclass(frozen=True)
class NetworkPlan:
    """What the bench needs to run the network: per layer an array name, targets (S) and load (ohm)."""

    arrays: tuple[str, ...]
    targets: tuple[NDArray[np.float64], ...]  # (rows, 2 cols) each, pairs side by side (i+, i-)
    r_load: tuple[float, ...]
    rectify: tuple[bool, ...]
    v_in_max: float
    v_bias: float
    v_gate: float
    v_rail: float

    def chip_arrays(self) -> list[dict]:
        """The ``chip.arrays`` entries of a simulated bench that holds this network."""
        return [{"name": n, "rows": int(t.shape[0]), "cols": int(t.shape[1])} for n, t in zip(self.arrays, self.targets)]


def plan_from_circuit(circuit: NeuromorphicCircuit, arrays: tuple[str, ...] | None = None) -> NetworkPlan:
    """The bench plan of a mapped circuit (array names default to L0, L1, ...)."""
    names = arrays or tuple(f"L{k}" for k in range(len(circuit.layers)))
    if len(names) != len(circuit.layers):
        raise ValueError(f"need {len(circuit.layers)} array names, got {len(names)}")
    p = circuit.params
    return NetworkPlan(tuple(names), tuple(L.g_target.copy() for L in circuit.layers),
                       tuple(L.r_load for L in circuit.layers), tuple(L.rectify for L in circuit.layers),
                       p.v_in_max, p.v_bias, p.v_gate, p.v_rail)


def program_network(bench: Bench, plan: NetworkPlan, params: ISPPParams | None = None) -> list[ISPPResult]:
    """Write-and-verify every layer's targets into its array."""
    results = []
    for name, tgt in zip(plan.arrays, plan.targets):
        bench.use_array(name)
        if (bench.rows, bench.cols) != tgt.shape:
            raise ValueError(f"array {name} is {bench.rows}x{bench.cols}, the layer needs {tgt.shape[0]}x{tgt.shape[1]}")
        # the network maps weights over the whole device window; ISPP reaches the part it can
        results.append(program(bench, tgt, params, out_of_window="clip"))
    return results


def infer(bench: Bench, plan: NetworkPlan, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The 10 output voltages (n, 10) for images ``x`` in [0, 1], every product on the bench."""
    x = np.atleast_2d(np.asarray(x, float))
    v = x * plan.v_in_max
    for name, r_load, rectify in zip(plan.arrays, plan.r_load, plan.rectify):
        rows = np.hstack([v, np.full((len(v), 1), plan.v_bias)])
        bench.use_array(name)
        i = np.array([bench.vmm(r, plan.v_gate) for r in rows])
        v = np.clip(r_load * (i[:, 0::2] - i[:, 1::2]), 0.0 if rectify else -plan.v_rail, plan.v_rail)
    return v


def evaluate(bench: Bench, plan: NetworkPlan, x: NDArray[np.float64], y: NDArray[np.int64],
             corrector: MLP | None = None) -> dict:
    """Accuracy of the bench's own prediction and, with a corrector, of the corrected one."""
    v = infer(bench, plan, x)
    y = np.asarray(y)
    out = {"n_images": int(len(y)), "accuracy": float(np.mean(np.argmax(v, 1) == y)), "voltages": v}
    if corrector is not None:
        out["accuracy_corrected"] = float(np.mean(corrector.predict(v) == y))
    bench.outputs_off()
    return out
