"""Where a sweep runs: a local Dask cluster sized to the machine, or an existing one at tcp://HOST:PORT."""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

#: in-process, one point after another (no Dask): the reference for "identical to serial"
SERIAL = "serial"
LOCAL = "local"


def check_scheduler(scheduler: str) -> str:
    """``local``, ``serial`` or a ``tcp://HOST:PORT`` address; anything else is refused."""
    if scheduler in (LOCAL, SERIAL):
        return scheduler
    if scheduler.startswith(("tcp://", "tls://", "ws://", "wss://", "inproc://")):
        host, _, port = scheduler.split("://", 1)[1].rpartition(":")
        if host and port.isdigit():
            return scheduler
    raise ValueError(f"scheduler must be 'local', 'serial' or an address like tcp://HOST:PORT, got {scheduler!r}")


@contextlib.contextmanager
def dask_client(scheduler: str = LOCAL, workers: int | None = None,
                log: Callable[[str], None] = print) -> Iterator["object"]:
    """A ``distributed.Client``: on a new ``LocalCluster`` (one single-threaded worker process
    per core, or ``workers``) or connected to ``scheduler``. The dashboard address is logged."""
    from distributed import Client, LocalCluster

    scheduler = check_scheduler(scheduler)
    if scheduler == SERIAL:
        raise ValueError("the serial scheduler runs without Dask")
    if scheduler == LOCAL:
        n = workers or os.cpu_count() or 1
        # one thread per worker: the studies are numpy/numba code that holds the GIL in places,
        # and separate processes keep BLAS single-threaded (Dask's nanny sets OMP/MKL/OPENBLAS=1)
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                          host="127.0.0.1") as cluster, Client(cluster) as client:
            log(f"local Dask cluster: {n} worker(s), dashboard {cluster.dashboard_link}")
            yield client
        return
    with Client(scheduler, timeout="20s") as client:
        info = client.scheduler_info()
        link = client.dashboard_link if "dashboard" in info.get("services", {}) else "(none)"
        log(f"Dask scheduler {scheduler}: {len(info['workers'])} worker(s), dashboard {link}")
        yield client
