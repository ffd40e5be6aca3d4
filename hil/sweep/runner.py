"""Run a sweep: pending points go to Dask workers, finished rows stream into the table.

A worker that dies takes no result with it: the scheduler gives its points to another
worker, and since every point is seeded by its own arguments the re-run returns the same
row. A sweep stopped by Ctrl-C (or ``kill``) keeps every row already written; running it
again skips those points.
"""
from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from distributed import WorkerPlugin
from tqdm.auto import tqdm

from .cluster import LOCAL, SERIAL, check_scheduler, dask_client
from .spec import SweepSpec, point_key, resolve
from .table import INDEX, KEY, ROW, ResultTable, compact


@dataclass
class SweepReport:
    points: int  # in the spec
    skipped: int  # already in the table
    ran: int  # finished in this run
    failed: dict[str, str] = field(default_factory=dict)  # point key -> error text
    wall_s: float = 0.0
    out: str = ""

    @property
    def complete(self) -> bool:
        return not self.failed and self.skipped + self.ran == self.points


def call_point(function: str, args: Mapping[str, Any], key: str, index: int) -> list[dict]:
    """Run one point (on a worker) and return its rows, each tagged with the point's key and index."""
    result = resolve(function)(**args)
    rows = result if isinstance(result, list) else [result]
    if not rows:
        raise ValueError(f"{function} returned no rows: a point is done only once it has one")
    out = []
    for r, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"{function} returned {type(row).__name__}; a sweep function returns a mapping "
                            "(one row) or a list of mappings")
        out.append({KEY: key, INDEX: index, ROW: r, **args, **row})
    return out


class _Setup(WorkerPlugin):
    """Dask worker plugin: the spec's ``setup`` function, once on every worker (also on late joiners)."""

    def __init__(self, ref: str):
        self.ref = ref
        self.name = f"hil-sweep-setup-{ref}"

    def setup(self, worker=None) -> None:
        resolve(self.ref)()


def run_sweep(spec: SweepSpec, scheduler: str = LOCAL, workers: int | None = None, progress: bool = True,
              client: Any = None, on_row: Callable[[list[dict]], None] | None = None,
              log: Callable[[str], None] = print) -> SweepReport:
    """Run every point of ``spec`` not yet in its table.

    ``scheduler``: ``"local"`` (a LocalCluster, ``workers`` processes), ``"tcp://HOST:PORT"``
    or ``"serial"`` (in this process, no Dask); or pass a ``distributed.Client`` as ``client``.
    ``on_row`` is called with each point's rows as they arrive (after they are queued for disk).
    """
    scheduler = check_scheduler(scheduler)
    t0 = time.perf_counter()
    resolve(spec.function)  # fail here, not on every worker
    table = ResultTable(spec.out, spec.manifest())
    points = spec.expand()
    keys = [point_key(a) for a in points]
    done = table.done_keys() & set(keys)
    pending = [(i, k, a) for i, (k, a) in enumerate(zip(keys, points)) if k not in done]
    report = SweepReport(points=len(points), skipped=len(done), ran=0, out=spec.out)
    log(f"sweep {spec.name}: {len(points)} points, {len(done)} already in {spec.out}, {len(pending)} to run")
    bar = tqdm(total=len(points), initial=len(done), desc=spec.name, unit="point", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)

    def finished(rows: list[dict]) -> None:
        try:
            table.add(rows)
        except TypeError as exc:  # a value the table cannot hold: that point failed, not the sweep
            report.failed[rows[0][KEY]] = f"{exc}"
            return
        report.ran += 1
        bar.update(1)
        if on_row is not None:
            on_row(rows)

    try:
        if not pending:
            pass
        elif client is None and scheduler == SERIAL:
            if spec.setup:
                resolve(spec.setup)()
            for i, k, a in pending:
                try:
                    finished(call_point(spec.function, a, k, i))
                except Exception:  # one bad point does not stop the sweep
                    report.failed[k] = traceback.format_exc(limit=3)
        elif client is not None:
            _run_dask(client, spec, pending, finished, report)
        else:
            with dask_client(scheduler, workers, log) as c:
                _run_dask(c, spec, pending, finished, report)
    finally:
        table.flush()
        bar.close()
        report.wall_s = time.perf_counter() - t0
    if report.complete and report.ran:
        compact(spec.out)  # one file per finished sweep: quicker to open, one schema for pandas
    if report.failed:
        first = next(iter(report.failed.values()))
        log(f"{len(report.failed)} point(s) failed (re-running the sweep retries them); first error:\n{first}")
    return report


def _run_dask(client: Any, spec: SweepSpec, pending: list, finished: Callable, report: SweepReport) -> None:
    from distributed import as_completed

    if spec.setup:
        client.register_plugin(_Setup(spec.setup))
    # function + point is the task key: submitting a point twice (two clients) computes it once
    fn_key = point_key({"function": spec.function})[:8]
    futures = {client.submit(call_point, spec.function, a, k, i, key=f"sweep-{fn_key}-{k}", pure=False): k
               for i, k, a in pending}
    try:
        for fut in as_completed(futures):
            if fut.status == "finished":
                finished(fut.result())
            else:
                try:
                    fut.result()
                except Exception as exc:
                    report.failed[futures[fut]] = "".join(traceback.format_exception_only(type(exc), exc))
            fut.release()
    except BaseException:
        client.cancel(list(futures))
        raise
