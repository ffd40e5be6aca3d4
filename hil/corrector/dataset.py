"""The corrector's dataset: the circuit's 10 output voltages under every defect configuration.

Seed 000 II.C: 84 configurations (five sized patterns x 4 sizes x 4 layers, plus the
checkerboard on 4 layers) x 1797 images = 150,948 samples, with the Table I split
(per pattern and size: 1000 cross-validation samples, the rest 80/20 into 4950 training
and 1238 test samples). Generation reuses the fault-free inputs of each layer, so only
the faulted layer and those after it are recomputed per configuration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simulated_bench.faults import PATTERNS

from ..networks.circuit import NeuromorphicCircuit
from .defects import DefectConfig, DefectGeometry

CONFIG_FIELDS = ("pattern", "layer", "size_index", "size", "coverage", "center_row", "center_col", "phase")


@dataclass
class VoltageDataset:
    """``voltages[c, i]`` = the 10 output voltages (V) of image i under configuration c."""

    voltages: NDArray[np.float32]  # (n_configs, n_images, 10)
    labels: NDArray[np.int64]  # (n_images,)
    configs: list[DefectConfig]
    sizes: NDArray[np.float64]  # pattern parameter of each configuration
    coverages: NDArray[np.float64]  # counted fraction of the layer's pairs that are stuck
    clean_voltages: NDArray[np.float32]  # (n_images, 10) fault-free outputs
    kind: str

    @property
    def n_samples(self) -> int:
        return int(self.voltages.shape[0] * self.voltages.shape[1])

    def select(self, config_idx: NDArray[np.intp], image_idx: NDArray[np.intp]) -> tuple[NDArray, NDArray, NDArray]:
        """(voltages (n, 10), labels, configuration index) of every (config, image) pair."""
        c = np.repeat(np.asarray(config_idx), len(image_idx))
        i = np.tile(np.asarray(image_idx), len(config_idx))
        return self.voltages[c, i].astype(float), self.labels[i], c

    def config_indices(self, pattern: str | None = None) -> NDArray[np.intp]:
        return np.array([k for k, c in enumerate(self.configs) if pattern is None or c.pattern == pattern], np.intp)

    def faulty_accuracy(self) -> NDArray[np.float64]:
        """Accuracy of the uncorrected circuit per configuration over all images."""
        return np.mean(np.argmax(self.voltages, axis=2) == self.labels[None, :], axis=1)

    # persistence -----------------------------------------------------------------------
    def config_table(self) -> dict[str, NDArray]:
        return {
            "pattern": np.array([PATTERNS.index(c.pattern) for c in self.configs], np.int64),
            "layer": np.array([c.layer for c in self.configs], np.int64),
            "size_index": np.array([c.size_index for c in self.configs], np.int64),
            "size": self.sizes, "coverage": self.coverages,
            "center_row": np.array([c.center[0] for c in self.configs]),
            "center_col": np.array([c.center[1] for c in self.configs]),
            "phase": np.array([c.phase for c in self.configs], np.int64),
        }

    def save(self, path: str) -> None:
        """HDF5 (``.h5``/``.hdf5``) or NPZ; the flat sample view is voltages.reshape(-1, 10)."""
        table = self.config_table()
        if str(path).endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "w") as f:
                f.create_dataset("voltages", data=self.voltages, compression="gzip", compression_opts=1)
                f.create_dataset("labels", data=self.labels)
                f.create_dataset("clean_voltages", data=self.clean_voltages)
                g = f.create_group("configs")
                for k, a in table.items():
                    g.create_dataset(k, data=a)
                f.attrs["kind"] = self.kind
                f.attrs["patterns"] = ",".join(PATTERNS)
        else:
            np.savez(path, voltages=self.voltages, labels=self.labels, clean_voltages=self.clean_voltages,
                     kind=np.array(self.kind), **{f"config_{k}": a for k, a in table.items()})

    @classmethod
    def load(cls, path: str) -> "VoltageDataset":
        if str(path).endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as f:
                arrays = {k: f["configs"][k][()] for k in CONFIG_FIELDS}
                v, y, cv, kind = f["voltages"][()], f["labels"][()], f["clean_voltages"][()], str(f.attrs["kind"])
        else:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[f"config_{k}"] for k in CONFIG_FIELDS}
                v, y, cv, kind = z["voltages"], z["labels"], z["clean_voltages"], str(z["kind"])
        configs = [DefectConfig(PATTERNS[int(p)], int(layer), int(s), (float(cr), float(cc)), int(ph))
                   for p, layer, s, cr, cc, ph in zip(arrays["pattern"], arrays["layer"], arrays["size_index"],
                                                      arrays["center_row"], arrays["center_col"], arrays["phase"])]
        return cls(v, y.astype(np.int64), configs, arrays["size"], arrays["coverage"], cv, kind)


def generate(circuit: NeuromorphicCircuit, x: NDArray[np.float64], y: NDArray[np.int64],
             configs: list[DefectConfig], geom: DefectGeometry | None = None) -> VoltageDataset:
    """Output voltages of every configuration over every image (vectorised per configuration)."""
    geom = geom or DefectGeometry()
    layer_inputs = circuit.forward(x)  # fault-free source-line voltages of each layer, and the outputs
    shapes = circuit.shapes
    out = np.empty((len(configs), len(x), layer_inputs[-1].shape[1]), np.float32)
    sizes = np.empty(len(configs))
    covs = np.empty(len(configs))
    for k, cfg in enumerate(configs):
        shape = shapes[cfg.layer]
        out[k] = circuit.outputs_from(cfg.layer, layer_inputs[cfg.layer], cfg.codes(shape, geom))
        sizes[k] = cfg.size(shape, geom)
        covs[k] = cfg.coverage(shape, geom)
    return VoltageDataset(out, np.asarray(y, np.int64), list(configs), sizes, covs,
                          layer_inputs[-1].astype(np.float32), geom.kind)


@dataclass(frozen=True)
class PaperSplit:
    """Sample indices (into the flat (config, image) view) of seed 000's Table I split."""

    train: NDArray[np.intp]
    test: NDArray[np.intp]
    cv: NDArray[np.intp]


def table1_split(ds: VoltageDataset, seed: int = 0, n_cv: int = 1000, train_fraction: float = 0.8) -> PaperSplit:
    """Per (pattern, size) group of 4 layers x n images: n_cv cross-validation samples, the rest 80/20.

    With 1797 images that is 4950 / 1238 / 1000 per group (Table I). Samples are drawn at
    random, so the same image appears in training under one configuration and in test under
    another: the paper's protocol, kept here for comparison only.
    """
    rng = np.random.default_rng(seed)
    n_img = ds.voltages.shape[1]
    groups: dict[tuple[str, int], list[int]] = {}
    for k, c in enumerate(ds.configs):
        groups.setdefault((c.pattern, c.size_index), []).append(k)
    tr, te, cv = [], [], []
    for cfgs in groups.values():
        flat = (np.asarray(cfgs)[:, None] * n_img + np.arange(n_img)[None, :]).ravel()
        flat = rng.permutation(flat)
        rest = flat[n_cv:]
        n_tr = int(round(train_fraction * len(rest)))
        cv.append(flat[:n_cv])
        tr.append(rest[:n_tr])
        te.append(rest[n_tr:])
    return PaperSplit(np.sort(np.concatenate(tr)), np.sort(np.concatenate(te)), np.sort(np.concatenate(cv)))


def flat_samples(ds: VoltageDataset, flat_idx: NDArray[np.intp]) -> tuple[NDArray, NDArray, NDArray]:
    """(voltages, labels, configuration index) of flat sample indices."""
    n_img = ds.voltages.shape[1]
    c, i = np.divmod(np.asarray(flat_idx), n_img)
    return ds.voltages[c, i].astype(float), ds.labels[i], c
