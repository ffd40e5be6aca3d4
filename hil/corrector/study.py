"""The evaluations of seed 000: defect study (Fig. 4), paper protocol (Tables III/IV), clean protocol.

Improvement is eq. 12, Delta A = A_corrected - A_faulty, in percentage points, on the
same test samples. Results are plain dicts of floats (ready for JSON).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from simulated_bench.faults import PATTERNS

from ..networks.circuit import CircuitParams, NeuromorphicCircuit
from ..networks.digits import load_digits_data, paper_split, split_images, train_digits_network
from ..networks.mlp import MLP
from ..networks.wires import WiredCircuit
from .dataset import VoltageDataset, flat_samples, generate, table1_split
from .defects import CleanInstances, DefectConfig, DefectGeometry, clean_configs, n_sizes, paper_configs
from .models import CorrectorSpec


def _acc(pred: NDArray, y: NDArray) -> float:
    return float(np.mean(pred == y)) if len(y) else float("nan")


def defect_study(circuit: NeuromorphicCircuit, x: NDArray, y: NDArray,
                 geom: DefectGeometry | None = None) -> list[dict]:
    """Accuracy of the uncorrected circuit per (kind, pattern, layer, size), stuck-off and stuck-on."""
    geom = geom or DefectGeometry()
    rows = []
    for kind in ("off", "on"):
        g = DefectGeometry(geom.radius_reference, geom.band_max_fraction, geom.checker_block, geom.ring_outer, kind)
        ds = generate(circuit, x, y, paper_configs(), g)
        acc = ds.faulty_accuracy()
        for k, c in enumerate(ds.configs):
            rows.append({"kind": kind, "pattern": c.pattern, "layer": c.layer, "size_index": c.size_index,
                         "size": float(ds.sizes[k]), "coverage": float(ds.coverages[k]),
                         "stuck_pairs": int(round(ds.coverages[k] * np.prod(circuit.shapes[c.layer]))),
                         "accuracy": float(acc[k])})
    return rows


def wire_defect_study(wired: WiredCircuit, x: NDArray, y: NDArray, size_indices: tuple[int, ...] = (1, 3),
                      patterns: tuple[str, ...] = PATTERNS, geom: DefectGeometry | None = None) -> list[dict]:
    """Accuracy per (kind, pattern, layer, size) of the circuit with resistive wires, stuck-off and stuck-on.

    A reduced Fig. 4: the patterns at ``size_indices`` only (the checkerboard has one size),
    every layer, the fault-free layers solved with their wires too.
    """
    geom = geom or DefectGeometry()
    rows_in = wired.forward(x)
    out = []
    for pattern in patterns:
        sizes = sorted({min(s, n_sizes(pattern) - 1) for s in size_indices})
        for layer, shape in enumerate(wired.shapes):
            for s in sizes:
                cfg = DefectConfig(pattern, layer, s)
                for kind in ("off", "on"):
                    g = replace(geom, kind=kind)
                    v = wired.outputs_from(layer, rows_in[layer], cfg.codes(shape, g))
                    out.append({"kind": kind, "pattern": pattern, "layer": layer, "size_index": s,
                                "size": cfg.size(shape, g), "coverage": cfg.coverage(shape, g),
                                "accuracy": _acc(np.argmax(v, 1), y)})
    return out


@dataclass
class TrainedSet:
    """One corrector per training pattern."""

    spec: CorrectorSpec
    models: dict[str, MLP] = field(default_factory=dict)


def _pattern_mask(ds: VoltageDataset, cfg_idx: NDArray, pattern: str) -> NDArray[np.bool_]:
    pats = np.array([c.pattern for c in ds.configs])
    return pats[cfg_idx] == pattern


def paper_protocol(ds: VoltageDataset, specs: list[CorrectorSpec], seed: int = 0, split_seed: int = 0,
                   patterns: tuple[str, ...] = PATTERNS) -> dict:
    """Table I split; train per pattern on its training samples; test on every pattern's test samples.

    Returns {"faulty": {d2: acc}, "corrected": {model: {d1: {d2: acc}}}, "per_config": {model:
    {d: [[size_index, layer, acc_faulty, acc_corrected], ...]}}, "params": {model: n}}.
    """
    sp = table1_split(ds, split_seed)
    xtr, ytr, ctr = flat_samples(ds, sp.train)
    xte, yte, cte = flat_samples(ds, sp.test)
    xcv, ycv, ccv = flat_samples(ds, sp.cv)
    test_of = {d: _pattern_mask(ds, cte, d) for d in patterns}
    out: dict = {"faulty": {d: _acc(np.argmax(xte[m], 1), yte[m]) for d, m in test_of.items()},
                 "corrected": {}, "per_config": {}, "params": {}}
    for spec in specs:
        out["params"][spec.name] = spec.n_params
        res: dict = {}
        per_cfg: dict = {}
        for d1 in patterns:
            mtr, mcv = _pattern_mask(ds, ctr, d1), _pattern_mask(ds, ccv, d1)
            model = spec.fit(xtr[mtr], ytr[mtr], seed, xcv[mcv], ycv[mcv])
            pred = model.predict(xte)
            res[d1] = {d2: _acc(pred[m], yte[m]) for d2, m in test_of.items()}
            rows = []
            for k in np.unique(cte[test_of[d1]]):
                m = cte == k
                c = ds.configs[k]
                rows.append([c.size_index, c.layer, _acc(np.argmax(xte[m], 1), yte[m]), _acc(pred[m], yte[m])])
            per_cfg[d1] = rows
        out["corrected"][spec.name] = res
        out["per_config"][spec.name] = per_cfg
    return out


def severity_curves(ds: VoltageDataset, specs: list[CorrectorSpec], pairs: list[tuple[str, str]],
                    seed: int = 0, split_seed: int = 0) -> dict:
    """Fig. 6: improvement (pp) vs size index, averaged over layers, trained on d1 and tested on d2."""
    sp = table1_split(ds, split_seed)
    xtr, ytr, ctr = flat_samples(ds, sp.train)
    xte, yte, cte = flat_samples(ds, sp.test)
    xcv, ycv, ccv = flat_samples(ds, sp.cv)
    size_idx = np.array([c.size_index for c in ds.configs])[cte]
    out: dict = {}
    trained: dict[tuple[str, str], MLP] = {}
    for spec in specs:
        for d1, d2 in pairs:
            if (spec.name, d1) not in trained:
                mtr, mcv = _pattern_mask(ds, ctr, d1), _pattern_mask(ds, ccv, d1)
                trained[(spec.name, d1)] = spec.fit(xtr[mtr], ytr[mtr], seed, xcv[mcv], ycv[mcv])
            model = trained[(spec.name, d1)]
            m2 = _pattern_mask(ds, cte, d2)
            curve = []
            for s in np.unique(size_idx[m2]):
                m = m2 & (size_idx == s)
                curve.append(100.0 * (_acc(model.predict(xte[m]), yte[m]) - _acc(np.argmax(xte[m], 1), yte[m])))
            out.setdefault(f"{d1}->{d2}", {})[spec.name] = curve
    return out


@dataclass(frozen=True)
class CleanSetup:
    """Image split and defect instances of the clean protocol."""

    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # base-network/corrector train, validation, test
    instances: CleanInstances = field(default_factory=CleanInstances)
    geometry: DefectGeometry = field(default_factory=DefectGeometry)
    circuit: CircuitParams = field(default_factory=CircuitParams)


@dataclass
class CleanData:
    """Everything one base-network seed of the clean protocol produces before corrector training."""

    base_seed: int
    software_test_acc: float
    circuit_test_acc: float
    train: VoltageDataset  # training images x training instances
    val: VoltageDataset  # validation images x validation instances
    test: VoltageDataset  # test images x unseen instances
    dataset_s: float


def clean_data(base_seed: int, setup: CleanSetup | None = None, patterns: tuple[str, ...] = PATTERNS) -> CleanData:
    """Split images once, train the base network on the training images, generate the three datasets."""
    import time

    setup = setup or CleanSetup()
    x, y = load_digits_data()
    tr, va, te = split_images(y, setup.fractions, base_seed)
    net = train_digits_network(x[tr], y[tr], base_seed)
    circuit = NeuromorphicCircuit(net, x[tr], setup.circuit)
    inst = replace(setup.instances, seed=setup.instances.seed + 1000 * base_seed)
    cfg_tr, cfg_va, cfg_te = clean_configs(inst, patterns)
    t0 = time.perf_counter()
    sets = [generate(circuit, x[i], y[i], c, setup.geometry) for i, c in ((tr, cfg_tr), (va, cfg_va), (te, cfg_te))]
    dt = time.perf_counter() - t0
    return CleanData(base_seed, net.accuracy(x[te], y[te]), _acc(circuit.predict(x[te]), y[te]), *sets, dt)


def _pattern_samples(ds: VoltageDataset, pattern: str) -> tuple[NDArray, NDArray]:
    xs, ys, _ = ds.select(ds.config_indices(pattern), np.arange(ds.voltages.shape[1]))
    return xs, ys


def clean_protocol(data: CleanData, specs: list[CorrectorSpec], corrector_seed: int = 0,
                   patterns: tuple[str, ...] = PATTERNS) -> dict:
    """Train on training images x training instances of d1 (select on validation images x
    validation instances); test on test images x unseen instances of every d2.

    Returns {"faulty": {d2: acc}, "corrected": {model: {d1: {d2: acc}}}, "val": {model: {d1: acc}}}.
    """
    out: dict = {"faulty": {}, "corrected": {}, "val": {}}
    te_data = {d2: _pattern_samples(data.test, d2) for d2 in patterns}
    out["faulty"] = {d2: _acc(np.argmax(xt, 1), yt) for d2, (xt, yt) in te_data.items()}
    for spec in specs:
        res, val = {}, {}
        for d1 in patterns:
            xtr, ytr = _pattern_samples(data.train, d1)
            xva, yva = _pattern_samples(data.val, d1)
            model = spec.fit(xtr, ytr, corrector_seed, xva, yva)
            val[d1] = model.accuracy(xva, yva)
            res[d1] = {d2: model.accuracy(*te_data[d2]) for d2 in patterns}
        out["corrected"][spec.name] = res
        out["val"][spec.name] = val
    return out


def select_best(clean: dict, names: list[str], patterns: tuple[str, ...] = PATTERNS) -> dict[str, str]:
    """Per training pattern, the model among ``names`` with the best validation accuracy."""
    return {d: max(names, key=lambda n: clean["val"][n][d]) for d in patterns}


def paper_protocol_for_seed(base_seed: int, specs: list[CorrectorSpec], circuit_params: CircuitParams | None = None,
                            geom: DefectGeometry | None = None, corrector_seed: int = 0) -> tuple[dict, dict]:
    """Seed 000's whole pipeline for one base seed: 1617/180 network, 84-configuration dataset, Table I."""
    x, y = load_digits_data()
    tr, te = paper_split(y, base_seed)
    net = train_digits_network(x[tr], y[tr], base_seed)
    circuit = NeuromorphicCircuit(net, x[tr], circuit_params)
    ds = generate(circuit, x, y, paper_configs(), geom)
    info = {"software_test_acc": net.accuracy(x[te], y[te]), "circuit_test_acc": _acc(circuit.predict(x[te]), y[te])}
    return paper_protocol(ds, specs, corrector_seed, base_seed), info
