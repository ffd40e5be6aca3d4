"""``hil scan``: find the stuck devices of a chip and save its fault map."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from .inputs import bench_option, overwrite_option, span


def default_run_file(out: str) -> str:
    """The run file ``hil scan --out OUT`` keeps next to its fault map: ``OUT`` with ``.run.h5``."""
    p = Path(out)
    return str(p.with_name(p.stem + ".run.h5"))


@click.command("scan")
@bench_option
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="fault map to write (HDF5)")
@click.option("--run", "run_path", type=click.Path(dir_okay=False), default=None,
              help="run file the scan streams to (default: OUT with .run.h5); the same command again resumes it")
@click.option("--array", "array_name", default=None, help="array of a multi-array chip (default: its first)")
@click.option("--rows", default=None, help="rows to scan, 'a:b' or 'a,b,c' (default all)")
@click.option("--cols", default=None, help="columns to scan (default all)")
@click.option("--cycles", default=1, show_default=True, type=click.IntRange(1, 100), help="SET/RESET cycles per cell")
@click.option("--restore/--no-restore", default=False, show_default=True,
              help="program working cells back to their prior conductance afterwards")
@click.option("--merge-into", type=click.Path(exists=True, dir_okay=False), default=None,
              help="update this older fault map with the scan (region scans)")
@click.option("--chip-id", default="", help="chip id to record (default: the bench file's)")
@overwrite_option
@click.option("--progress/--no-progress", default=True, show_default=True)
def scan_command(bench_path, out, run_path, array_name, rows, cols, cycles, restore, merge_into, chip_id, overwrite,
                 progress) -> None:
    """Classify every cell as working / stuck-OFF / stuck-ON / unreliable and save the fault map.

    The scan streams to a run file (``--run``, default OUT.run.h5): interrupted, the same
    command resumes it, confirming the rows scanned before by a read.
    """
    import hil
    from hil.faultmap import FaultMap
    from protocols.runner import device_model
    from protocols.scan import SCAN_PRESETS, STANFORD_SCAN, scan

    run_path = run_path or default_run_file(out)
    if Path(run_path).resolve() == Path(out).resolve():
        raise click.BadParameter("the run file and the fault map must be different files", param_hint="--run")
    older = FaultMap.load(merge_into) if merge_into else None
    with hil.open_bench(bench_path) as bench:
        if array_name is not None:
            if array_name not in bench.arrays:
                raise click.BadParameter(f"no array {array_name!r} on this chip; arrays: {', '.join(bench.arrays)}",
                                         param_hint="--array")
            bench.use_array(array_name)
        if older is not None and older.shape != (bench.rows, bench.cols):
            raise click.BadParameter(f"{merge_into} is a {older.shape[0]}x{older.shape[1]} map; this array is "
                                     f"{bench.rows}x{bench.cols}", param_hint="--merge-into")
        p = dataclasses.replace(SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN), n_cycles=cycles, restore=restore)
        res = scan(bench, p, rows=span(rows, bench.rows, "--rows"), cols=span(cols, bench.cols, "--cols"),
                   out=run_path, chip_id=chip_id, bench_file=bench_path or "", progress=progress, overwrite=overwrite)
    fm = res.faultmap
    if older is not None:
        fm = older.merge(fm)
    fm.save(out)
    click.echo(fm.summary())
    click.echo(f"{res.ops_per_cell:.2f} operations per cell; fault map saved to {out} (run file {run_path})")
    if res.restore is not None:
        counts = res.restore.counts()
        click.echo(f"restore: {counts['converged']} cells back within {p.restore_tol_rel:.0%}, "
                   f"{counts['exhausted'] + counts['unresponsive']} not")


def register(group: click.Group) -> None:
    group.add_command(scan_command)
