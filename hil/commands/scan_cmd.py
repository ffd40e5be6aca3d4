"""``hil scan``: find the stuck devices of a chip and save its fault map."""
from __future__ import annotations

import dataclasses

import click


def _span(text: str | None, n: int) -> list[int] | None:
    """``"a:b"`` (half-open) or ``"a,b,c"`` -> indices; None for everything."""
    if not text:
        return None
    if ":" in text:
        a, _, b = text.partition(":")
        return list(range(int(a or 0), int(b) if b else n))
    return [int(v) for v in text.split(",")]


@click.command("scan")
@click.option("--bench", "bench_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="bench file (default: the embedded simulated bench)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="fault map to write (HDF5)")
@click.option("--run", "run_path", type=click.Path(dir_okay=False), default=None,
              help="stream the scan's reads to this run file; re-running with it resumes")
@click.option("--array", "array_name", default=None, help="array of a multi-array chip (default: its first)")
@click.option("--rows", default=None, help="rows to scan, 'a:b' or 'a,b,c' (default all)")
@click.option("--cols", default=None, help="columns to scan (default all)")
@click.option("--cycles", default=1, show_default=True, type=click.IntRange(1, 100), help="SET/RESET cycles per cell")
@click.option("--restore/--no-restore", default=False, show_default=True,
              help="program working cells back to their prior conductance afterwards")
@click.option("--merge-into", type=click.Path(exists=True, dir_okay=False), default=None,
              help="update this older fault map with the scan (region scans)")
@click.option("--chip-id", default="", help="chip id to record (default: the bench file's)")
@click.option("--progress/--no-progress", default=True, show_default=True)
def scan_command(bench_path, out, run_path, array_name, rows, cols, cycles, restore, merge_into, chip_id,
                 progress) -> None:
    """Classify every cell as working / stuck-OFF / stuck-ON / unreliable and save the fault map."""
    import hil
    from hil.faultmap import FaultMap
    from protocols.ispp import device_model
    from protocols.scan import SCAN_PRESETS, STANFORD_SCAN, scan

    with hil.open_bench(bench_path) as bench:
        if array_name is not None:
            if array_name not in bench.arrays:
                raise click.BadParameter(f"no array {array_name!r} on this chip; arrays: {', '.join(bench.arrays)}",
                                         param_hint="--array")
            bench.use_array(array_name)
        p = dataclasses.replace(SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN), n_cycles=cycles, restore=restore)
        res = scan(bench, p, rows=_span(rows, bench.rows), cols=_span(cols, bench.cols), out=run_path,
                   chip_id=chip_id, bench_file=bench_path or "", progress=progress)
    fm = res.faultmap
    if merge_into:
        fm = FaultMap.load(merge_into).merge(fm)
    fm.save(out)
    click.echo(fm.summary())
    click.echo(f"{res.ops_per_cell:.2f} operations per cell; fault map saved to {out}")
    if res.restore is not None:
        counts = res.restore.counts()
        click.echo(f"restore: {counts['converged']} cells back within {p.restore_tol_rel:.0%}, "
                   f"{counts['exhausted'] + counts['unresponsive']} not")


def register(group: click.Group) -> None:
    group.add_command(scan_command)
