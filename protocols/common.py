"""What every protocol shares: opening its run file with the bench's metadata."""
from __future__ import annotations

from typing import Any, Mapping

from hil.roles import Bench
from hil.runstore import RunStore


def bench_meta(bench: Bench) -> dict:
    """The bench's metadata worth keeping in a run file (JSON-able, without live objects)."""
    return {k: v for k, v in bench.metadata.items() if k not in ("sim", "bench_file")}


def open_run(bench: Bench, out: str, protocol: str, params: Mapping[str, Any], shape: tuple[int, int],
             chip_id: str = "", bench_file: str | None = None, seed: int | None = None,
             resume: bool = True) -> RunStore:
    """Run file for ``protocol`` on ``bench``: chip id and bench file default to the bench's own."""
    return RunStore.open(out, protocol, params, shape,
                         bench_file=bench_file if bench_file is not None else bench.metadata.get("bench_file", ""),
                         bench_meta=bench_meta(bench), chip_id=chip_id or str(bench.metadata.get("chip_id", "")),
                         seed=seed, resume=resume)
