"""What every protocol shares: opening its run file with the bench's metadata, and closing it."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

from hil.bench import Bench
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


@contextlib.contextmanager
def finishing(store: RunStore | None, bench: Bench, bar: Any = None) -> Iterator[None]:
    """Close a protocol run however it ends.

    The progress bar closes and the bench's outputs go off first, then the run file is
    marked ``complete``, ``interrupted`` (Ctrl-C) or ``failed``; exceptions propagate.
    """
    try:
        try:
            yield
        finally:
            if bar is not None:
                bar.close()
            bench.outputs_off()
    except BaseException as exc:
        if store is not None:
            store.finish("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    if store is not None:
        store.finish("complete")
