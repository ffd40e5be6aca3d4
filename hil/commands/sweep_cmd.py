"""``hil sweep SPEC.yaml``: run a parameter sweep on Dask, streaming rows into a Parquet table."""
from __future__ import annotations

import os
import sys

import click

SCHEDULER_HELP = ("'local' (a Dask LocalCluster sized to this machine; its dashboard address is printed), "
                  "'tcp://HOST:PORT' (an existing Dask scheduler) or 'serial' (this process, no Dask)")


def interrupted_exit(exc: KeyboardInterrupt, message: str) -> None:
    """Say what was kept and exit as a shell reports the signal (``hil``'s group turns
    SIGTERM / SIGHUP into KeyboardInterrupt, so ``kill PID`` stops like Ctrl-C)."""
    from hil.cli import _SIGNAL_EXIT

    click.echo(f"\n{message}", err=True)
    sys.exit(_SIGNAL_EXIT.get(getattr(exc, "signame", "SIGINT"), 130))


def scheduler_option(f):
    return click.option("--scheduler", default="local", show_default=True, help=SCHEDULER_HELP)(f)


@click.command("sweep")
@click.argument("spec_path", metavar="SPEC.yaml", type=click.Path(exists=True, dir_okay=False))
@scheduler_option
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="worker processes of the local cluster (default: one per core)")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="result table directory (default: the spec's 'out')")
@click.option("--progress/--no-progress", default=True, show_default=True)
def sweep_command(spec_path, scheduler, workers, out, progress) -> None:
    """Run every point of SPEC.yaml not yet in its result table.

    Re-running the same command after an interruption runs only the missing points.
    Open the table with ``pandas.read_parquet(OUT)`` or ``hil.sweep.read_table(OUT)``.
    """
    import dataclasses

    from hil.sweep import SpecError, SweepSpec, TableMismatch, run_sweep
    from hil.sweep.cluster import check_scheduler

    try:
        check_scheduler(scheduler)
        spec = SweepSpec.load(spec_path)
        if out:
            spec = dataclasses.replace(spec, out=os.path.abspath(out))
        # the spec's functions live next to it as often as in an installed package
        for d in (os.getcwd(), os.path.dirname(os.path.abspath(spec_path))):
            if d not in sys.path:
                sys.path.insert(0, d)
        spec.expand()
        report = run_sweep(spec, scheduler=scheduler, workers=workers, progress=progress, log=click.echo)
    except (SpecError, TableMismatch, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt as exc:
        interrupted_exit(exc, "interrupted: finished points are in the table; run the same command again to resume")
    click.echo(f"{report.ran} point(s) run, {report.skipped} already done, {len(report.failed)} failed "
               f"in {report.wall_s:.1f} s -> {report.out}")
    if report.failed:
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(sweep_command)
