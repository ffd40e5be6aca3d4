"""The digits task and latency coding of seed 004 (section 3.4, eq. 10).

Seed 004 used the 5620-image UCI "optical recognition of handwritten digits" set
(8x8, 16 levels, 4496 train / 1124 test). The copy shipped with scikit-learn,
``load_digits``, is that set's 1797-image test part (8x8, 17 levels 0..16), so here
the split is 80/20 of 1797 images: 1437 train, 360 test (stratified, seeded).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

PIXEL_LEVELS = 16.0  # load_digits pixels run 0..16


@dataclass(frozen=True)
class LatencyCoding:
    """Eq. 10: a pixel x > x_thr fires once at t_max * ln(x / (x - x_thr)); no spike otherwise.

    Times are in steps of ``dt`` (seed 004: 1 ms); a spike falling at or beyond
    ``num_steps`` is dropped. With t_max = 20 and x_thr = 0.3 every level above the
    threshold (x >= 5/16) fires within 65 steps, so nothing is dropped at 100 steps.
    """

    t_max: float = 20.0  # steps (ms at dt = 1 ms)
    threshold: float = 0.3  # on pixels normalised to [0, 1]
    num_steps: int = 100  # seed 004 reads the membrane over 100 ms

    def spike_times(self, x: NDArray) -> NDArray[np.int64]:
        """Spike step per pixel (``x`` normalised to [0, 1]); -1 where the pixel does not fire."""
        x = np.asarray(x, float)
        fires = x > self.threshold
        with np.errstate(divide="ignore", invalid="ignore"):
            t = self.t_max * np.log(x / (x - self.threshold))
        steps = np.where(fires, np.rint(t), -1).astype(np.int64)
        steps[steps >= self.num_steps] = -1
        return steps

    def encode(self, x: NDArray) -> NDArray[np.float32]:
        """Spike raster of shape ``x.shape[:-1] + (num_steps, n_inputs)`` (0/1)."""
        steps = self.spike_times(x)
        raster = np.zeros(steps.shape[:-1] + (self.num_steps, steps.shape[-1]), np.float32)
        idx = np.nonzero(steps >= 0)
        raster[idx[:-1] + (steps[idx], idx[-1])] = 1.0
        return raster


@dataclass(frozen=True)
class DigitsSplit:
    """Normalised pixels (n, 64) in [0, 1] and labels, train and test."""

    x_train: NDArray[np.float64]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float64]
    y_test: NDArray[np.int64]

    @property
    def sizes(self) -> dict[str, int]:
        return {"total": len(self.y_train) + len(self.y_test), "train": len(self.y_train), "test": len(self.y_test)}


def load_split(test_fraction: float = 0.2, seed: int = 0) -> DigitsSplit:
    """scikit-learn's digits, pixels / 16, stratified ``test_fraction`` split with ``seed``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.data / PIXEL_LEVELS
    xtr, xte, ytr, yte = train_test_split(x, data.target, test_size=test_fraction,
                                          random_state=seed, stratify=data.target)
    return DigitsSplit(xtr, ytr.astype(np.int64), xte, yte.astype(np.int64))


def sparsity(raster: NDArray) -> float:
    """Mean fraction of the inputs that fire per image (seed 004 Fig. 9D's 'spike sparsity')."""
    fired = np.asarray(raster).sum(axis=-2) > 0
    return float(fired.mean())
