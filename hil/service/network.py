"""The seed-000 digits network through the service loop: each layer a factorized matrix with its own checks.

Layer l's weights and bias form the (fan_in + 1) x fan_out matrix [W; b] (the bias row is
driven by a constant input of 1, as in seed 000's circuit). Each layer is mapped as seed
000 maps it, on differential pairs (:func:`~hil.service.mapping.map_direct`, fault-aware:
the partner of a stuck device compensates), onto its own array, checked by digital group
references and served by its own :class:`~hil.service.session.ServiceSession`; ReLU
between layers is digital. (The factorized mapping was tried first: with write-and-verify
at +-15 uS its layers reached 1 - cos 0.03-0.12 and the network 54 % accuracy, against
96.7 % in floating point, so the network keeps the pair mapping of its own paper.)

Corrector (seed 000, Sec. IV): a small network on the circuit's 10 outputs, trained right
after programming on the outputs of labelled calibration images run through the chip
(reads only), :func:`fit_corrector`. It learns the programmed circuit's static distortion,
mostly the write-and-verify error of every pair (the uncorrected circuit keeps ~94 % of
the float network's 99.7 % on the digits, the corrected one ~99 %). In service it is
**kept** while it holds: after each maintenance the host runs the held validation images
through the chip (:func:`check_corrector`) and re-trains only if their corrected accuracy
fell more than ``retrain_drop`` below its value at training. Why kept: the repairs restore
each layer's [W; b] (pair compensation targets the same matrix), so the circuit the
corrector learned is what the loop maintains; new faults and drift move a few weights,
which a corrector trained on the whole circuit's distortion tolerates. Re-training costs
labelled images at the bench and can chase noise; it is the fallback the check triggers.
Every check and decision is appended to ``ServedNetwork.log``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from hil.factorization import random_fault_codes
from hil.corrector.models import OURS, CorrectorSpec
from hil.networks.digits import DigitsNetwork
from hil.networks.mlp import MLP

from .engine import EngineParams, WindowEngine
from .mapping import map_direct
from .session import ServiceParams, ServiceSession

FloatArray = NDArray[np.float64]


#: the default corrector: 320 parameters (< 7 % of the circuit's 4528), standardised inputs, a full skip path
CORRECTOR = next(s for s in OURS if s.name == "Res(10,)+full")


@dataclass
class Calibration:
    """Labelled images the host keeps at the bench for the corrector: a fit set and a validation set."""

    x_fit: FloatArray
    y_fit: NDArray[np.int64]
    x_val: FloatArray
    y_val: NDArray[np.int64]
    spec: CorrectorSpec = CORRECTOR
    retrain_drop: float = 0.01  #: re-train once the validation accuracy fell by more than this (fraction)
    seed: int = 0


@dataclass
class ServedNetwork:
    """One service session per layer; ``forward`` runs the digits network on the chip, ``predict`` adds the
    corrector (if fitted)."""

    net: DigitsNetwork
    sessions: list[ServiceSession]
    corrector: MLP | None = None
    calibration: Calibration | None = None
    val_accuracy: float = float("nan")  #: corrected accuracy on the validation images when it was trained
    log: list[dict] = field(default_factory=list)

    def forward(self, x: FloatArray, handle_alarms: bool = True) -> FloatArray:
        """The circuit's 10 outputs (logits in the network's units) for images x (B, 64)."""
        a = np.atleast_2d(np.asarray(x, float))
        for i, s in enumerate(self.sessions):
            u = np.hstack([a, np.ones((a.shape[0], 1))])
            s.mm.observe(u)  # what the layer sees: its repair weighs weight errors by these inputs
            z, _ = s.serve(u, handle_alarms)
            a = np.maximum(z, 0.0) if i < len(self.sessions) - 1 else z
        return a

    def predict(self, x: FloatArray, handle_alarms: bool = True, corrected: bool = True) -> NDArray[np.int64]:
        out = self.forward(x, handle_alarms)
        if corrected and self.corrector is not None:
            return self.corrector.predict(out)
        return np.argmax(out, axis=1)

    def accuracy(self, x: FloatArray, y: NDArray[np.int64], handle_alarms: bool = True,
                 corrected: bool = True) -> float:
        return float(np.mean(self.predict(x, handle_alarms, corrected) == y))

    def record(self, kind: str, **data) -> dict:
        rec = {"event": kind, "chip_time_s": float(self.sessions[0].engine.time_s), **data}
        self.log.append(rec)
        return rec


def fit_corrector(sn: ServedNetwork, cal: Calibration, why: str = "programmed") -> dict:
    """Train the corrector on the chip's outputs for the calibration images (reads only); record it."""
    v_fit = sn.forward(cal.x_fit, handle_alarms=False)
    v_val = sn.forward(cal.x_val, handle_alarms=False)
    seed = cal.seed + len(sn.log)
    sn.corrector = cal.spec.fit(v_fit, cal.y_fit, seed, v_val, cal.y_val)
    sn.calibration = cal
    sn.val_accuracy = float(np.mean(sn.corrector.predict(v_val) == cal.y_val))
    return sn.record("corrector_trained", why=why, spec=cal.spec.name, params=int(sn.corrector.n_params),
                     images=int(len(cal.y_fit)), val_accuracy=sn.val_accuracy,
                     val_accuracy_uncorrected=float(np.mean(np.argmax(v_val, axis=1) == cal.y_val)))


def check_corrector(sn: ServedNetwork) -> dict:
    """Validation images through the chip (reads only): keep the corrector, or re-train it if its accuracy
    fell more than ``retrain_drop`` below its value at training."""
    cal = sn.calibration
    if cal is None or sn.corrector is None:
        raise RuntimeError("fit_corrector() before check_corrector()")
    v_val = sn.forward(cal.x_val, handle_alarms=False)
    acc = float(np.mean(sn.corrector.predict(v_val) == cal.y_val))
    if acc < sn.val_accuracy - cal.retrain_drop:
        before = sn.val_accuracy
        rec = fit_corrector(sn, cal, why=f"validation accuracy {acc:.4f} < {before:.4f} - {cal.retrain_drop}")
        return sn.record("corrector_check", decision="re-trained", val_accuracy=acc, trained_at=before,
                         val_accuracy_after=rec["val_accuracy"])
    return sn.record("corrector_check", decision="kept", val_accuracy=acc, trained_at=sn.val_accuracy)


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


__all__ = ["ServedNetwork", "Calibration", "CORRECTOR", "serve_network", "fit_corrector", "check_corrector",
           "layer_matrix"]
