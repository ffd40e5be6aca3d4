"""Seed 004's Fig. 9 study: accuracy vs synapse bits, tuning error and read noise.

One function runs every sweep for one seed (training, programming and noise draws
all derive from it); :func:`aggregate` averages seeds. Accuracies are fractions of
the test set.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .array_inference import ArrayMapping, ArraySynapses, Programmer, tolerance_programmer
from .coding import LatencyCoding, load_split, sparsity
from .network import (SnnParams, TrainConfig, ann_predict, quantize, quantize_ann, snn_predict, train_ann,
                      train_snn)


@dataclass(frozen=True)
class StudyConfig:
    bits: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    tuning_bits: tuple[int | None, ...] = (1, 2, 3, 4, 6, None)  # None: unquantised weights
    tuning_errors: tuple[float, ...] = (0.0, 0.01, 0.03, 0.05, 0.10, 0.15, 0.20)
    noise_levels: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07)
    noise_tuning_error: float = 0.03  # seed 004 Fig. 9C: the device's 3 % tuning error
    measured_point: tuple[int, float, float] = (3, 0.03, 0.05)  # bits, tuning error, read noise
    distribution: str = "uniform"
    draws: int = 3  # independent programming + read-noise draws averaged per array point
    epochs: int = 30
    lr: float = 4e-3  # SNN learning rate (TrainConfig's default)
    batch_size: int = 128  # SNN mini-batch (TrainConfig's default)
    train_subset: int | None = None  # first n training images (tests)
    test_subset: int | None = None
    coding: LatencyCoding = field(default_factory=LatencyCoding)
    snn: SnnParams = field(default_factory=SnnParams)
    mapping: ArrayMapping = field(default_factory=ArrayMapping)


def _acc(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(pred == y))


def run_seed(seed: int, cfg: StudyConfig | None = None) -> dict:
    """Every sweep of the study for one seed; returns plain Python numbers."""
    cfg = cfg or StudyConfig()
    data = load_split(seed=seed)
    ntr, nte = cfg.train_subset, cfg.test_subset
    xtr, ytr = data.x_train[:ntr], data.y_train[:ntr]
    xte, yte = data.x_test[:nte], data.y_test[:nte]
    rtr, rte = cfg.coding.encode(xtr), cfg.coding.encode(xte)
    p = cfg.snn
    w = train_snn(rtr, ytr, p, TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=seed))
    wa, ba = train_ann(xtr, ytr, TrainConfig(epochs=cfg.epochs, batch_size=32, lr=1e-2, seed=seed))
    rng = np.random.default_rng(seed)

    def on_array(weights: np.ndarray, tol: float, noise: float | None) -> float:
        accs = []
        for _ in range(cfg.draws):
            program: Programmer = tolerance_programmer(tol, rng, cfg.distribution, cfg.mapping.model)
            arr = ArraySynapses.from_weights(weights, program, cfg.mapping, seed=int(rng.integers(2**31)))
            accs.append(_acc(arr.predict(rte, p, noise), yte))
        return float(np.mean(accs))

    out = {"seed": seed, "sizes": {"train": len(ytr), "test": len(yte)},
           "ann_acc": _acc(ann_predict(xte, wa, ba), yte), "snn_acc": _acc(snn_predict(rte, w, p), yte),
           "sparsity": sparsity(rte)}
    # Fig. 9A: the array is programmed exactly and read with the device's intrinsic noise
    out["bits"] = [{"bits": b, "acc_ann": _acc(ann_predict(xte, quantize_ann(wa, b), ba), yte),
                    "acc_snn": _acc(snn_predict(rte, quantize(w, b), p), yte),
                    "acc_array": on_array(quantize(w, b), 0.0, None)} for b in cfg.bits]
    # Fig. 9B: tuning error per bit depth, intrinsic read noise
    out["tuning"] = [{"bits": b, "tuning_error": e,
                      "acc": on_array(w if b is None else quantize(w, b), e, None)}
                     for b in cfg.tuning_bits for e in cfg.tuning_errors]
    # Fig. 9C: read noise with the device's tuning error, unquantised weights
    out["noise"] = [{"noise": s, "acc": on_array(w, cfg.noise_tuning_error, s)} for s in cfg.noise_levels]
    b, e, s = cfg.measured_point
    out["measured_point_acc"] = on_array(quantize(w, b), e, s)
    out["weights"] = w.tolist()
    return out


def aggregate(runs: list[dict]) -> dict:
    """Mean (and std over seeds, key ``*_std``) of every accuracy in ``runs``."""
    def ms(values):
        a = np.asarray(values, float)
        return float(a.mean()), float(a.std())

    out: dict = {"seeds": [r["seed"] for r in runs], "sizes": runs[0]["sizes"]}
    for key in ("ann_acc", "snn_acc", "sparsity", "measured_point_acc"):
        out[key], out[key + "_std"] = ms([r[key] for r in runs])
    for sweep, keys in (("bits", ("acc_ann", "acc_snn", "acc_array")), ("tuning", ("acc",)), ("noise", ("acc",))):
        rows = []
        for k, row in enumerate(runs[0][sweep]):
            new = {c: v for c, v in row.items() if not c.startswith("acc")}
            for c in keys:
                new[c], new[c + "_std"] = ms([r[sweep][k][c] for r in runs])
            rows.append(new)
        out[sweep] = rows
    return out
