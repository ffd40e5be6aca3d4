"""Corrector models: seed 000's Table II family, our small designs, and the references.

Paper-style models are Table II's MLPs trained as the paper describes them: the raw
10 voltages in, ReLU hidden layers, softmax out, categorical cross-entropy, Adam for a
fixed number of epochs, no model selection. Our designs add three things, all free at
inference: input standardisation (folded into the first layer), a skip path that
passes the voltages straight to the logits (a per-class scale, "diag", or a full
linear map), and weight selection on a validation split.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..networks.mlp import MLP, TrainParams

N_CLASSES = 10

#: trained to convergence (60 epochs; 20 epochs at lr 1e-3 leave MLP(10,10) ~6 pp short on raw volts)
PAPER_TRAIN = TrainParams(epochs=60, batch=128, lr=1e-2, weight_decay=0.0, select_on_validation=False)
OUR_TRAIN = TrainParams(epochs=40, batch=128, lr=1e-2, weight_decay=1e-5, select_on_validation=True,
                        lr_decay=0.95)


@dataclass(frozen=True)
class CorrectorSpec:
    """How to build and train one corrector."""

    name: str
    hidden: tuple[int, ...]
    skip: str = "none"
    standardise: bool = False
    train: TrainParams = field(default=PAPER_TRAIN)

    @property
    def n_params(self) -> int:
        return MLP.init(N_CLASSES, self.hidden, N_CLASSES, self.skip).n_params

    def fit(self, x: NDArray, y: NDArray, seed: int = 0, x_val: NDArray | None = None,
            y_val: NDArray | None = None) -> MLP:
        shift = scale = None
        if self.standardise:
            shift = x.mean(axis=0)
            scale = x.std(axis=0) + 1e-3 * (x.std() + 1e-12)
        net = MLP.init(N_CLASSES, self.hidden, N_CLASSES, self.skip, rng=seed, shift=shift, scale=scale)
        return net.fit(x, y, self.train, rng=seed + 7919, x_val=x_val, y_val=y_val)


def paper_mlp(*hidden: int) -> CorrectorSpec:
    """A Table II model, named exactly as the benchmark reports it ("MLP(10,10)", "MLP(1,)")."""
    name = f"MLP({','.join(str(h) for h in hidden)}{',' if len(hidden) == 1 else ''})"
    return CorrectorSpec(name, tuple(hidden))


#: seed 000 Table II (hidden widths -> 23,310 .. 31 parameters)
TABLE_II = [paper_mlp(*h) for h in ((100, 200), (32, 64), (32, 32), (16, 32), (16, 16), (12, 12), (10, 10),
                                    (10,), (6, 6), (6,), (1,))]

#: our small designs (<= 330 parameters), standardised inputs, skip path, validation selection
OURS = [
    CorrectorSpec("Res(10,)+full", (10,), "full", True, OUR_TRAIN),  # 320
    CorrectorSpec("Res(8,8)+diag", (8, 8), "diag", True, OUR_TRAIN),  # 260
    CorrectorSpec("Res(12,)+diag", (12,), "diag", True, OUR_TRAIN),  # 272
    CorrectorSpec("Res(4,)+diag", (4,), "diag", True, OUR_TRAIN),  # 104
    CorrectorSpec("Res(3,3)+diag", (3, 3), "diag", True, OUR_TRAIN),  # 95
    CorrectorSpec("Linear", (), "none", True, OUR_TRAIN),  # 110: logistic regression
]

#: references: logistic regression (the Linear above) and a large MLP as the ceiling
CEILING = CorrectorSpec("Ceiling MLP(100,200)", (100, 200), "none", True,
                        TrainParams(epochs=15, batch=256, lr=3e-3, weight_decay=1e-5, select_on_validation=True,
                                    lr_decay=0.92))
LOGISTIC = OURS[-1]


def ours_within(budget: int) -> list[CorrectorSpec]:
    return [s for s in OURS if s.n_params <= budget]
