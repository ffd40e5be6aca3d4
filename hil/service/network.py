"""The seed-000 digits network through the service loop: each layer a factorized matrix with its own checks.

Layer l's weights and bias form the (fan_in + 1) x fan_out matrix [W; b] (the bias row is
driven by a constant input of 1, as in seed 000's circuit). Each layer is mapped as seed
000 maps it, on differential pairs (:func:`~hil.service.mapping.map_direct`, fault-aware:
the partner of a stuck device compensates), onto its own array, checked by digital group
references and served by its own :class:`~hil.service.session.ServiceSession`; ReLU
between layers is digital. (The factorized mapping was tried first: with write-and-verify
at +-15 uS its layers reached 1 - cos 0.03-0.12 and the network 54 % accuracy, against
96.7 % in floating point, so the network keeps the pair mapping of its own paper.)

Corrector: kept, not re-trained. The loop repairs each layer back to its pre-fault
matrix (the refit targets the same [W; b]), so the circuit the corrector was trained
on is restored; re-training would need labelled data at the bench after every repair
and would let the layers drift away from the network it corrects.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hil.factorization import random_fault_codes
from hil.networks.digits import DigitsNetwork

from .engine import EngineParams, WindowEngine
from .mapping import map_direct
from .session import ServiceParams, ServiceSession

FloatArray = NDArray[np.float64]


@dataclass
class ServedNetwork:
    """One service session per layer; ``forward`` runs the digits network on the chip."""

    net: DigitsNetwork
    sessions: list[ServiceSession]

    def forward(self, x: FloatArray, handle_alarms: bool = True) -> FloatArray:
        a = np.atleast_2d(np.asarray(x, float))
        for i, s in enumerate(self.sessions):
            z, _ = s.serve(np.hstack([a, np.ones((a.shape[0], 1))]), handle_alarms)
            a = np.maximum(z, 0.0) if i < len(self.sessions) - 1 else z
        return a

    def accuracy(self, x: FloatArray, y: NDArray[np.int64], handle_alarms: bool = True) -> float:
        return float(np.mean(np.argmax(self.forward(x, handle_alarms), axis=1) == y))


def layer_matrix(net: DigitsNetwork, layer: int) -> FloatArray:
    return np.vstack([net.Ws[layer], net.bs[layer][None, :]])


def serve_network(net: DigitsNetwork, fault_rate: float, make_array, params: ServiceParams | None = None,
                  engine_params: EngineParams | None = None, seed: int = 0) -> ServedNetwork:
    """Map, program and calibrate every layer. ``make_array(name, rows, cols, codes, seed)`` builds an array."""
    sessions = []
    for l in range(len(net.Ws)):
        m_ = layer_matrix(net, l)
        rows, cols = m_.shape
        codes = random_fault_codes(2 * rows, cols, fault_rate, rng=[seed, l, 0])
        name = f"L{l}"
        mm = map_direct(m_, codes, array=name)
        engine = WindowEngine({name: make_array(name, 2 * rows, cols, codes, [seed, l, 2])}, engine_params)
        s = ServiceSession(mm, engine, params)
        s.program()
        s.calibrate([seed, l, 4])
        sessions.append(s)
    return ServedNetwork(net, sessions)


__all__ = ["ServedNetwork", "serve_network", "layer_matrix"]
