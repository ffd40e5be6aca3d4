"""The paper's solver as a baseline (seed 003 Methods, eqs. 1-5): plain Adam on 1 - cos.

Signs are predetermined (random, as the paper fixes them before optimising); after every
Adam step the row-sign projection (eq. 4) and the fault mask (eq. 5) are applied, plus the
0..Gmax window. Gradients are exact (numpy), in float64, in units of Gmax.
"""
from __future__ import annotations

import time

import numpy as np

from ._threads import single_blas_thread
from .faults import STUCK_OFF, STUCK_ON, validate_codes
from .metrics import one_minus_cos
from .params import AdamParams, DeviceWindow
from .solver import Factorization


def _loss_grad(p, t_unit):
    """1 - cos(p, t) and its gradient in p (t has unit norm)."""
    q = np.sqrt(float((p * p).sum()))
    c = float((p * t_unit).sum()) / q
    return 1.0 - c, -(t_unit - c * p / q) / q


@single_blas_thread
def adam_factorize(matrix: np.ndarray, codes_a: np.ndarray, codes_b: np.ndarray,
                   rng: np.random.Generator, window: DeviceWindow = DeviceWindow(),
                   params: AdamParams = AdamParams(), trace_every: int = 0) -> Factorization:
    """Adam, lr 1e-4, 5000 epochs (defaults), on the same fault model as ``factorize``.

    With ``trace_every`` > 0, ``extra['trace']`` holds (epoch, cpu_s, 1 - cos) samples.
    """
    t0 = time.process_time()
    m_ = np.asarray(matrix, dtype=np.float64)
    m, n = m_.shape
    k = np.asarray(codes_a).shape[1]
    ca = validate_codes(codes_a, (m, k), "codes_a")
    cb = validate_codes(codes_b, (k, n), "codes_b")
    t_unit = m_ / np.linalg.norm(m_)
    sa = rng.choice([-1.0, 1.0], size=m)
    sb = rng.choice([-1.0, 1.0], size=k)

    def project(x, codes, s):
        x = s[:, None] * np.clip(s[:, None] * x, 0.0, 1.0)      # eq. 4 and the window
        return np.where(codes == STUCK_OFF, 0.0, np.where(codes == STUCK_ON, s[:, None], x))  # eq. 5

    a = project(sa[:, None] * rng.uniform(0.0, params.init, (m, k)), ca, sa)
    b = project(sb[:, None] * rng.uniform(0.0, params.init, (k, n)), cb, sb)
    ma_, va_ = np.zeros_like(a), np.zeros_like(a)
    mb_, vb_ = np.zeros_like(b), np.zeros_like(b)
    b1, b2, lr, eps = params.beta1, params.beta2, params.lr, params.eps
    trace = []
    for t in range(1, params.epochs + 1):
        _, g = _loss_grad(a @ b, t_unit)
        ga, gb = g @ b.T, a.T @ g
        ma_ = b1 * ma_ + (1 - b1) * ga
        va_ = b2 * va_ + (1 - b2) * ga * ga
        mb_ = b1 * mb_ + (1 - b1) * gb
        vb_ = b2 * vb_ + (1 - b2) * gb * gb
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        a = project(a - lr * (ma_ / c1) / (np.sqrt(va_ / c2) + eps), ca, sa)
        b = project(b - lr * (mb_ / c1) / (np.sqrt(vb_ / c2) + eps), cb, sb)
        if trace_every and (t % trace_every == 0 or t == params.epochs):
            trace.append((t, time.process_time() - t0, one_minus_cos(a @ b, m_)))
    ma, mb = window.g_max * a, window.g_max * b
    prod = ma @ mb
    scale = float((prod * m_).sum() / (m_ * m_).sum())
    return Factorization(ma=ma, mb=mb, sign_a=sa.astype(np.int8), sign_b=sb.astype(np.int8),
                         scale=scale, one_minus_cos=one_minus_cos(prod, m_),
                         iterations=params.epochs, cpu_s=time.process_time() - t0,
                         extra={"trace": trace})
