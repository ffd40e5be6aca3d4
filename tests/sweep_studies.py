"""Tiny seeded studies for the sweep and campaign tests (importable by Dask worker processes)."""
from __future__ import annotations

import time

import numpy as np

from hil.factorization import factorize, random_fault_codes


def tiny_factorization(rate: float, k: int, seed: int, delay: float = 0.0) -> dict:
    """Seed 003's fault-aware factorization of Re(DFT8) with stuck-OFF devices at ``rate``."""
    if delay:
        time.sleep(delay)  # gives a test time to kill the worker running this point
    n = 8
    j = np.arange(n)
    m = np.cos(2 * np.pi * np.outer(j, j) / n)
    rng = np.random.default_rng([seed, int(round(rate * 1000)), k])
    ca = random_fault_codes(n, k, rate, 0.0, rng)
    cb = random_fault_codes(k, n, rate, 0.0, rng)
    res = factorize(m, ca, cb, rng)
    return {"one_minus_cos": float(res.one_minus_cos), "stuck": int((ca != 0).sum() + (cb != 0).sum()),
            "cpu_s": float(res.cpu_s)}


def rows_per_seed(seed: int, n: int = 3) -> list[dict]:
    """Several rows from one point."""
    rng = np.random.default_rng(seed)
    return [{"draw": i, "value": float(v)} for i, v in enumerate(rng.random(n))]


def fails_on_odd(seed: int) -> dict:
    if seed % 2:
        raise RuntimeError(f"seed {seed} is odd")
    return {"ok": True}


def slow_read_step(bench, out: str, chip_id: str, delay: float = 0.2) -> dict:
    """A campaign step that streams one row read per ``delay`` seconds into a resumable run file."""
    from protocols.read import read_cells
    from protocols.runner import Drive, Page, execute

    class SlowRead(Page):
        name, label = "slow_read", "read"
        fields = {"g": (float, np.nan)}
        rows_resumed = 0

        def params(self, rows, cols):
            return {"delay": delay}

        def plan(self):
            return [Drive("v_read / v_gate", [0.2], [3.0])]

        def start(self, run):
            self.rows_resumed = int(run.done.all(axis=1).sum())

        def row(self, run, ri):
            time.sleep(delay)
            values, _ = read_cells(run.bench, int(run.rows[ri]), run.cols, 0.2, 3.0)
            run.save_row(ri, g=values)

    page = SlowRead()
    execute(bench, page, out=out, chip_id=chip_id)
    return {"rows_resumed": page.rows_resumed, "rows": bench.rows}


def returns_object(seed: int) -> dict:
    return {"value": object() if seed else 1.0}
