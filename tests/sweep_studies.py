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
    import numpy as np

    from protocols.common import finishing, open_run
    from protocols.read import read_cells

    store = open_run(bench, out, "slow_read", {"delay": delay}, (bench.rows, bench.cols), chip_id=chip_id)
    g = store.cell_field("g", float, np.nan)
    done = store.done.all(axis=1)
    resumed_rows = int(done.sum())
    with finishing(store, bench):
        for row in np.flatnonzero(~done):
            time.sleep(delay)
            values, _ = read_cells(bench, int(row), np.arange(bench.cols), 0.2, 3.0)
            store.write_cells(np.full(bench.cols, row), np.arange(bench.cols), done=True, g=values)
            store.flush()
    del g
    return {"rows_resumed": resumed_rows, "rows": bench.rows}


def returns_object(seed: int) -> dict:
    return {"value": object() if seed else 1.0}
