"""Shared helpers for benchmark scripts: timing and writing results as JSON."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def best_time(fn: Callable[[], object], repeat: int = 5, number: int = 1) -> float:
    """Smallest mean wall time (s) of ``number`` calls over ``repeat`` rounds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def write_results(name: str, data: dict | list) -> Path:
    """Write ``benchmarks/results/NAME.json`` (with the machine it ran on) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = data if isinstance(data, list) else {**data, "machine": platform.platform()}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
