"""Sweeps and multi-bench campaigns on Dask (dask.distributed).

* :func:`run_sweep` runs a :class:`SweepSpec` (a function over a grid or list of seeded
  parameter sets) on a local cluster or ``tcp://HOST:PORT``; rows stream into a Parquet
  table that :func:`read_table` (or ``pandas.read_parquet``) opens, and a stopped sweep
  resumes where it stopped.
* :func:`run_campaign` runs protocol steps on many chips across benches: each bench is a
  Dask worker that advertises it as a resource, so a chip's steps run only on a bench and
  one chip at a time per bench.
"""
from .spec import SpecError, SweepSpec, point_key, resolve
from .table import TableMismatch, read_table, same_results
from .runner import SweepReport, run_sweep
from .campaign import BenchNanny, CampaignReport, CampaignSpec, local_benches, run_campaign

__all__ = ["SweepSpec", "SpecError", "run_sweep", "SweepReport", "read_table", "same_results", "point_key",
           "resolve", "TableMismatch", "CampaignSpec", "CampaignReport", "run_campaign", "local_benches",
           "BenchNanny"]
