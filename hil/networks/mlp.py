"""A small numpy multilayer perceptron with Adam, for the digits network and the correctors.

Pure numpy (no torch in the core): the networks here are tiny (at most a few thousand
parameters), so hand-written backpropagation on mini-batches is fast and deterministic
for a given seed. The model is

    z      = (x - shift) / scale                    (fixed input standardisation)
    h_1    = ReLU(W_1 z + b_1), ..., h_L = ReLU(W_L h_{L-1} + b_L)
    logits = W_out h_L + b_out + skip(z)

with ``skip`` absent ("none"), an element-wise scale ("diag", 10 weights: the raw voltages
passed straight to their classes) or a full linear map ("full"). The standardisation
is a fixed affine map, so it folds exactly into the first layer and costs no parameters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

SKIPS = ("none", "diag", "full")


@dataclass(frozen=True)
class TrainParams:
    """Mini-batch Adam on the mean cross-entropy (plus L2 weight decay on the weights)."""

    epochs: int = 60
    batch: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.0
    #: keep the weights with the best validation accuracy (evaluated once per epoch)
    select_on_validation: bool = True
    lr_decay: float = 1.0  # multiplicative per-epoch learning-rate decay

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"invalid training parameters {self}")


@dataclass
class MLP:
    """Weights of one network: ``Ws[k]`` has shape (fan_in, fan_out)."""

    n_in: int
    hidden: tuple[int, ...]
    n_out: int
    skip: str = "none"
    shift: NDArray[np.float64] = field(default=None)  # type: ignore[assignment]
    scale: NDArray[np.float64] = field(default=None)  # type: ignore[assignment]
    Ws: list[NDArray[np.float64]] = field(default_factory=list)
    bs: list[NDArray[np.float64]] = field(default_factory=list)
    skip_w: NDArray[np.float64] | None = None

    @classmethod
    def init(cls, n_in: int, hidden: Sequence[int], n_out: int, skip: str = "none",
             rng: np.random.Generator | int | None = 0, shift: ArrayLike | None = None,
             scale: ArrayLike | None = None) -> "MLP":
        """He-initialised network; ``shift``/``scale`` default to the identity standardisation."""
        if skip not in SKIPS:
            raise ValueError(f"skip must be one of {SKIPS}, got {skip!r}")
        rng = np.random.default_rng(rng)
        sizes = [n_in, *hidden, n_out]
        Ws = [rng.standard_normal((a, b)) * np.sqrt(2.0 / a) for a, b in zip(sizes[:-1], sizes[1:])]
        bs = [np.zeros(b) for b in sizes[1:]]
        if hidden:
            Ws[-1] *= 0.5
        skip_w = None
        if skip == "diag":
            if n_in != n_out:
                raise ValueError("a diagonal skip needs n_in == n_out")
            skip_w = np.ones(n_in)
        elif skip == "full":
            skip_w = np.eye(n_in, n_out) if n_in == n_out else rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        return cls(n_in, tuple(int(h) for h in hidden), n_out, skip,
                   np.zeros(n_in) if shift is None else np.asarray(shift, float),
                   np.ones(n_in) if scale is None else np.asarray(scale, float), Ws, bs, skip_w)

    # ------------------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Trainable parameters (the standardisation folds into the first layer: none extra)."""
        n = sum(W.size + b.size for W, b in zip(self.Ws, self.bs))
        if self.skip_w is not None and self.hidden:
            n += self.skip_w.size
        return int(n)

    @property
    def name(self) -> str:
        if not self.hidden:
            return "Linear"
        core = f"MLP({','.join(str(h) for h in self.hidden)}{',' if len(self.hidden) == 1 else ''})"
        return core if self.skip == "none" else f"{core}+{self.skip}-skip"

    def _params(self) -> list[NDArray[np.float64]]:
        p = [*self.Ws, *self.bs]
        if self.skip_w is not None and self.hidden:
            p.append(self.skip_w)
        return p

    def _forward(self, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], list[NDArray[np.float64]]]:
        z = (x - self.shift) / self.scale
        acts = [z]
        h = z
        for W, b in zip(self.Ws[:-1], self.bs[:-1]):
            h = np.maximum(h @ W + b, 0.0)
            acts.append(h)
        out = h @ self.Ws[-1] + self.bs[-1]
        if self.skip_w is not None and self.hidden:
            out = out + (z * self.skip_w if self.skip == "diag" else z @ self.skip_w)
        return out, acts

    def logits(self, x: ArrayLike) -> NDArray[np.float64]:
        return self._forward(np.asarray(x, float))[0]

    def predict(self, x: ArrayLike) -> NDArray[np.int64]:
        return np.argmax(self.logits(x), axis=1)

    def accuracy(self, x: ArrayLike, y: ArrayLike) -> float:
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def _grads(self, x: NDArray[np.float64], y: NDArray[np.int64], wd: float) -> list[NDArray[np.float64]]:
        out, acts = self._forward(x)
        out = out - out.max(axis=1, keepdims=True)
        p = np.exp(out)
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1.0
        d = p / len(y)
        gW: list[NDArray[np.float64]] = [None] * len(self.Ws)  # type: ignore[list-item]
        gb: list[NDArray[np.float64]] = [None] * len(self.bs)  # type: ignore[list-item]
        g_skip = None
        if self.skip_w is not None and self.hidden:
            z = acts[0]
            g_skip = (z * d).sum(axis=0) if self.skip == "diag" else z.T @ d
            g_skip = g_skip + wd * self.skip_w
        for k in range(len(self.Ws) - 1, -1, -1):
            gW[k] = acts[k].T @ d + wd * self.Ws[k]
            gb[k] = d.sum(axis=0)
            if k:
                d = (d @ self.Ws[k].T) * (acts[k] > 0)
        grads = [*gW, *gb]
        if g_skip is not None:
            grads.append(g_skip)
        return grads

    def copy(self) -> "MLP":
        return MLP(self.n_in, self.hidden, self.n_out, self.skip, self.shift.copy(), self.scale.copy(),
                   [W.copy() for W in self.Ws], [b.copy() for b in self.bs],
                   None if self.skip_w is None else self.skip_w.copy())

    # ------------------------------------------------------------------------------------
    def fit(self, x: ArrayLike, y: ArrayLike, params: TrainParams | None = None,
            rng: np.random.Generator | int | None = 0, x_val: ArrayLike | None = None,
            y_val: ArrayLike | None = None) -> "MLP":
        """Train in place with Adam; with validation data keep the best epoch's weights."""
        tp = params or TrainParams()
        rng = np.random.default_rng(rng)
        x = np.asarray(x, float)
        y = np.asarray(y, np.int64)
        use_val = tp.select_on_validation and x_val is not None and y_val is not None
        if use_val:
            x_val = np.asarray(x_val, float)
            y_val = np.asarray(y_val, np.int64)
        params = self._params()
        m = [np.zeros_like(q) for q in params]
        v = [np.zeros_like(q) for q in params]
        b1, b2, eps = 0.9, 0.999, 1e-8
        t = 0
        lr = tp.lr
        best = (-1.0, None)
        n = len(y)
        for _ in range(tp.epochs):
            order = rng.permutation(n)
            for start in range(0, n, tp.batch):
                idx = order[start:start + tp.batch]
                grads = self._grads(x[idx], y[idx], tp.weight_decay)
                t += 1
                corr = np.sqrt(1 - b2**t) / (1 - b1**t)
                for q, g, mq, vq in zip(params, grads, m, v):
                    mq *= b1
                    mq += (1 - b1) * g
                    vq *= b2
                    vq += (1 - b2) * g * g
                    q -= lr * corr * mq / (np.sqrt(vq) + eps)
            lr *= tp.lr_decay
            if use_val:
                acc = self.accuracy(x_val, y_val)
                if acc > best[0]:
                    best = (acc, self.copy())
        if use_val and best[1] is not None:
            self._load(best[1])
        return self

    def _load(self, other: "MLP") -> None:
        for dst, src in zip(self._params(), other._params()):
            dst[...] = src

    # persistence (no pickle) ------------------------------------------------------------
    def to_arrays(self) -> dict[str, NDArray]:
        """Flat dict of arrays (for NPZ / HDF5); :meth:`from_arrays` inverts it."""
        d: dict[str, NDArray] = {
            "meta_shape": np.array([self.n_in, self.n_out, len(self.hidden), *self.hidden], np.int64),
            "meta_skip": np.array(SKIPS.index(self.skip), np.int64),
            "norm_shift": self.shift, "norm_scale": self.scale,
        }
        for k, (W, b) in enumerate(zip(self.Ws, self.bs)):
            d[f"W{k}"] = W
            d[f"b{k}"] = b
        if self.skip_w is not None:
            d["skip_w"] = self.skip_w
        return d

    @classmethod
    def from_arrays(cls, d: dict[str, ArrayLike]) -> "MLP":
        shape = np.asarray(d["meta_shape"], np.int64)
        n_in, n_out, n_hidden = (int(s) for s in shape[:3])
        hidden = tuple(int(h) for h in shape[3:3 + n_hidden])
        n_layers = n_hidden + 1
        Ws = [np.asarray(d[f"W{k}"], float) for k in range(n_layers)]
        bs = [np.asarray(d[f"b{k}"], float) for k in range(n_layers)]
        skip = SKIPS[int(np.asarray(d["meta_skip"]))]
        skip_w = np.asarray(d["skip_w"], float) if "skip_w" in d else None
        return cls(n_in, hidden, n_out, skip, np.asarray(d["norm_shift"], float),
                   np.asarray(d["norm_scale"], float), Ws, bs, skip_w)

    def save(self, path: str) -> None:
        """Save as ``.npz`` or ``.h5``/``.hdf5`` (weights and normalisation)."""
        arrays = self.to_arrays()
        if str(path).endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "w") as f:
                for k, a in arrays.items():
                    f.create_dataset(k, data=a)
        else:
            np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str) -> "MLP":
        if str(path).endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as f:
                return cls.from_arrays({k: f[k][()] for k in f.keys()})
        with np.load(path, allow_pickle=False) as z:
            return cls.from_arrays({k: z[k] for k in z.files})
