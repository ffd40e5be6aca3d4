"""``hil faults``: look at, export, compare and merge fault-map files."""
from __future__ import annotations

from pathlib import Path

import click


@click.group("faults")
def faults() -> None:
    """Fault-map files (HDF5, written by ``hil scan``)."""


@faults.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="heatmap to save (default: PATH.png)")
def show(path: str, png: str | None) -> None:
    """Print the class counts and save a heatmap."""
    from hil.faultmap import FaultMap
    from hil.plots import faultmap_heatmap

    fm = FaultMap.load(path)
    click.echo(fm.summary())
    click.echo(f"chip {fm.chip_id or '?'}, scanned {fm.date}")
    for name, n in fm.counts().items():
        click.echo(f"  {name:12s} {n}")
    png = png or str(Path(path).with_suffix(".png"))
    faultmap_heatmap(fm, png)
    click.echo(f"heatmap saved to {png}")


@faults.command("export")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--npy", "npy", required=True, type=click.Path(dir_okay=False),
              help="codes file: 0 working, 1 stuck-OFF, 2 stuck-ON, 3 unreliable")
def export(path: str, npy: str) -> None:
    """Write the per-cell codes as a .npy (cells never scanned count as working)."""
    import numpy as np

    from hil.faultmap import FaultMap

    codes = FaultMap.load(path).export_codes()
    np.save(npy, codes, allow_pickle=False)
    click.echo(f"{codes.shape[0]}x{codes.shape[1]} codes written to {npy}")


@faults.command("diff")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
def diff(old: str, new: str) -> None:
    """List the cells whose class changed between two maps."""
    from hil.faultmap import CODE_NAMES, FaultMap

    a, b = FaultMap.load(old), FaultMap.load(new)
    d = a.diff(b)
    click.echo(f"{d['n_changed']} of {d['n_compared']} cells changed class")
    for k, v in sorted(d["transitions"].items()):
        click.echo(f"  {k}: {v}")
    for (r, c), o, n in list(zip(d["positions"], d["old"], d["new"]))[:50]:
        click.echo(f"  ({r}, {c}) {CODE_NAMES[int(o)]} -> {CODE_NAMES[int(n)]}")


@faults.command("merge")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def merge(old: str, new: str, out: str) -> None:
    """Update OLD with the cells NEW scanned and save the result."""
    from hil.faultmap import FaultMap

    fm = FaultMap.load(old).merge(FaultMap.load(new))
    fm.save(out)
    click.echo(fm.summary())


def register(group: click.Group) -> None:
    group.add_command(faults)
