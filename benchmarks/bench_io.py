"""Bench I/O: a whole 64x64 array read through the real drivers, in-process and over TCP.

Prints and writes ``benchmarks/results/bench_io.json``:
``read_all_64x64_inprocess_s``, ``read_all_64x64_socket_s`` (best of a few reads of the
whole array through the drivers, v_read 0.2 V, gate 3 V), ``max_abs_diff_S`` (largest
difference between the two maps with read noise off; must be 0), plus the cost of one
pulse and one row read on each path.

Run: ``PYTHONPATH=$PWD python benchmarks/bench_io.py``
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import hil

V_READ, V_GATE = 0.2, 3.0
QUIET = {"variation": {"read_noise_scale": 0.0}}
REPEATS = 3


def best_of(fn, repeats=REPEATS):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def measure(transport: str) -> dict:
    with hil.open_bench(chip=QUIET, transport=transport) as bench:
        # a programmed pattern, so the maps span both states
        for r in range(bench.rows):
            bench.pulse_row(r, list(range(r % 3, bench.cols, 3)), 2.0, 1e-6, 1.5)
        read_s, g = best_of(lambda: bench.read_array(V_READ, V_GATE))
        n = 200
        t0 = time.perf_counter()
        for k in range(n):
            bench.pulse_row(k % 64, [k % 64], 1.0, 1e-6, 1.5)
        pulse_s = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for k in range(n):
            bench.read_row(k % 64, None, V_READ, V_GATE)
        row_s = (time.perf_counter() - t0) / n
    return {"read_all_s": read_s, "map": g, "pulse_s": pulse_s, "read_row_s": row_s}


def main() -> dict:
    inproc = measure("inprocess")
    sock = measure("socket")
    result = {
        "read_all_64x64_inprocess_s": round(inproc["read_all_s"], 4),
        "read_all_64x64_socket_s": round(sock["read_all_s"], 4),
        "max_abs_diff_S": float(np.max(np.abs(inproc["map"] - sock["map"]))),
        "pulse_row_inprocess_ms": round(1e3 * inproc["pulse_s"], 3),
        "pulse_row_socket_ms": round(1e3 * sock["pulse_s"], 3),
        "read_row_64_inprocess_ms": round(1e3 * inproc["read_row_s"], 3),
        "read_row_64_socket_ms": round(1e3 * sock["read_row_s"], 3),
        "repeats": REPEATS,
    }
    for key, value in result.items():
        print(f"{key:28s} {value}")
    out = Path(__file__).parent / "results" / "bench_io.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
