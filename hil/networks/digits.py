"""Seed 000's software network: UCI digits, 64-50-20-8-10 ReLU, trained in software.

Images are scikit-learn's ``load_digits`` (1797 8x8 images, 17 grey levels 0..16),
scaled to [0, 1]. Seed 000 trains on 1617 images and tests on 180 (96.67 %).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .mlp import MLP, TrainParams

LAYER_SIZES = (64, 50, 20, 8, 10)
N_IMAGES = 1797
PAPER_TEST_IMAGES = 180


def load_digits_data() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """(images scaled to [0, 1] with shape (1797, 64), labels 0..9)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x / 16.0, y.astype(np.int64)


def _stratified_order(y: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.intp]:
    """A permutation that interleaves the classes, so every prefix is nearly stratified."""
    keys = np.empty(len(y))
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keys[rng.permutation(idx)] = (np.arange(len(idx)) + rng.random()) / len(idx)
    return np.argsort(keys, kind="stable")


def split_images(y: NDArray[np.int64], fractions: tuple[float, ...], seed: int) -> tuple[NDArray[np.intp], ...]:
    """Stratified disjoint index sets with the given fractions (the last takes the remainder)."""
    order = _stratified_order(np.asarray(y), np.random.default_rng(seed))
    n = len(order)
    bounds = np.round(np.cumsum((0.0, *fractions[:-1])) * n).astype(int)
    ends = [*bounds[1:], n]
    return tuple(np.sort(order[a:b]) for a, b in zip(bounds, ends))


def paper_split(y: NDArray[np.int64], seed: int = 0) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Seed 000's image split: 1617 training and 180 test images (stratified)."""
    train, test = split_images(y, (1 - PAPER_TEST_IMAGES / len(y), PAPER_TEST_IMAGES / len(y)), seed)
    return train, test


#: the digits network's training recipe (Adam, small weight decay, 150 epochs)
DIGITS_TRAIN = TrainParams(epochs=150, batch=64, lr=2e-3, weight_decay=1e-4, select_on_validation=False,
                           lr_decay=0.985)


@dataclass
class DigitsNetwork:
    """The trained 64-50-20-8-10 network; ``Ws[k]`` is (fan_in, fan_out)."""

    Ws: list[NDArray[np.float64]]
    bs: list[NDArray[np.float64]]
    seed: int

    @property
    def n_params(self) -> int:
        return int(sum(W.size + b.size for W, b in zip(self.Ws, self.bs)))

    def activations(self, x: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        """Inputs of every layer and the final logits: [x, a1, a2, a3, logits]."""
        acts = [np.asarray(x, float)]
        for k, (W, b) in enumerate(zip(self.Ws, self.bs)):
            z = acts[-1] @ W + b
            acts.append(np.maximum(z, 0.0) if k < len(self.Ws) - 1 else z)
        return acts

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.int64]:
        return np.argmax(self.activations(x)[-1], axis=1)

    def accuracy(self, x: NDArray[np.float64], y: NDArray[np.int64]) -> float:
        return float(np.mean(self.predict(x) == y))

    def save(self, path: str) -> None:
        np.savez(path, seed=self.seed, **{f"W{k}": W for k, W in enumerate(self.Ws)},
                 **{f"b{k}": b for k, b in enumerate(self.bs)})

    @classmethod
    def load(cls, path: str) -> "DigitsNetwork":
        with np.load(path, allow_pickle=False) as z:
            n = len(LAYER_SIZES) - 1
            return cls([z[f"W{k}"] for k in range(n)], [z[f"b{k}"] for k in range(n)], int(z["seed"]))


def train_digits_network(x: NDArray[np.float64], y: NDArray[np.int64], seed: int = 0,
                         params: TrainParams | None = None) -> DigitsNetwork:
    """Train the 64-50-20-8-10 ReLU network (4528 parameters) on the given images."""
    net = MLP.init(LAYER_SIZES[0], LAYER_SIZES[1:-1], LAYER_SIZES[-1], rng=seed)
    net.fit(x, y, params or DIGITS_TRAIN, rng=seed + 1)
    return DigitsNetwork([W.copy() for W in net.Ws], [b.copy() for b in net.bs], seed)
