"""``hil read``, ``hil form`` and ``hil program``: read-all, forming and ISPP write-and-verify."""
from __future__ import annotations

import dataclasses

import click
import numpy as np

from .scan_cmd import _span

_bench_opt = click.option("--bench", "bench_path", type=click.Path(exists=True, dir_okay=False), default=None,
                          help="bench file (default: the embedded simulated bench)")
_rows_opt = click.option("--rows", default=None, help="rows, 'a:b' or 'a,b,c' (default all)")
_cols_opt = click.option("--cols", default=None, help="columns (default all)")
_progress_opt = click.option("--progress/--no-progress", default=True, show_default=True)


@click.command("read")
@_bench_opt
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="run file (HDF5); re-running resumes")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="heatmap (default: OUT.png)")
@click.option("--v-read", default=0.2, show_default=True, type=float, help="read voltage, V")
@click.option("--v-gate", default=3.0, show_default=True, type=float, help="word-line voltage, V")
@click.option("--n-avg", default=1, show_default=True, type=click.IntRange(1, 1000), help="reads averaged")
@_rows_opt
@_cols_opt
@_progress_opt
def read_command(bench_path, out, png, v_read, v_gate, n_avg, rows, cols, progress) -> None:
    """Conductance map of the array (or a region), saved with its metadata and as a heatmap."""
    import hil
    from protocols.read import ReadParams, read_all

    png = png or (out.rsplit(".", 1)[0] + ".png")
    with hil.open_bench(bench_path) as bench:
        res = read_all(bench, ReadParams(v_read, v_gate, n_avg), rows=_span(rows, bench.rows),
                       cols=_span(cols, bench.cols), out=out, heatmap=png, bench_file=bench_path, progress=progress)
    g = res.g * 1e6
    click.echo(f"read {g.shape[0]}x{g.shape[1]} cells at {v_read:g} V: {np.nanmin(g):.2f}..{np.nanmax(g):.2f} uS "
               f"(median {np.nanmedian(g):.2f} uS); {res.n_reads} row reads")
    click.echo(f"saved {out} and {png}")


@click.command("form")
@_bench_opt
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="run file (HDF5); re-running resumes")
@click.option("--r-target", default=None, type=float, help="formed at or below this resistance, ohm")
@click.option("--v-max", default=None, type=float, help="top of the ramp, V")
@click.option("--gate", default=None, type=float, help="word-line voltage (compliance), V")
@_rows_opt
@_cols_opt
@_progress_opt
def form_command(bench_path, out, r_target, v_max, gate, rows, cols, progress) -> None:
    """Electroform the cells with a voltage ramp; report the cells that never formed."""
    import hil
    from protocols.forming import FORM_PRESETS, FormParams, form
    from protocols.ispp import device_model

    with hil.open_bench(bench_path) as bench:
        p = FORM_PRESETS.get(device_model(bench), FormParams())
        changes = {k: v for k, v in (("r_target", r_target), ("v_max", v_max), ("gate", gate)) if v is not None}
        p = dataclasses.replace(p, **changes)
        res = form(bench, p, rows=_span(rows, bench.rows), cols=_span(cols, bench.cols), out=out,
                   bench_file=bench_path, progress=progress)
    n = res.formed.size
    click.echo(f"formed {int(res.formed.sum())} of {n} cells ({res.pulses} pulses); never formed: {len(res.never_formed)}")
    for r, c in res.never_formed[:50]:
        click.echo(f"  ({r}, {c})")
    click.echo(f"saved {out}")


@click.command("program")
@_bench_opt
@click.option("--targets", "targets_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help=".npy of target conductances in S (NaN = leave alone), shape of the region")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="run file (HDF5); re-running resumes")
@click.option("--tol", default=0.03, show_default=True, type=float, help="relative tolerance")
@click.option("--tol-abs", default=0.0, show_default=True, type=float, help="absolute tolerance floor, S")
@click.option("--n-read", default=None, type=click.IntRange(1, 100), help="reads averaged per verify")
@click.option("--max-pulses", default=None, type=click.IntRange(1, 100000), help="pulse budget per cell and pass")
@click.option("--passes", default=None, type=click.IntRange(1, 20), help="array-level passes")
@click.option("--faults", "faults_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="fault map: leave its stuck / unreliable cells alone")
@click.option("--clip-to-window", is_flag=True, default=False,
              help="move targets outside the device's programmable window to its edge instead of refusing them")
@_rows_opt
@_cols_opt
@_progress_opt
def program_command(bench_path, targets_path, out, tol, tol_abs, n_read, max_pulses, passes, faults_path,
                    clip_to_window, rows, cols, progress) -> None:
    """ISPP write-and-verify of a target conductance map."""
    import hil
    from hil.faultmap import load_codes
    from protocols.ispp import preset_for, program

    targets = np.atleast_2d(np.load(targets_path, allow_pickle=False).astype(float))
    with hil.open_bench(bench_path) as bench:
        rows_i, cols_i = _span(rows, bench.rows), _span(cols, bench.cols)
        if faults_path:
            codes = load_codes(faults_path)
            sub = codes[np.ix_(rows_i or range(bench.rows), cols_i or range(bench.cols))]
            targets = np.where(sub == 0, targets, np.nan)
        p = preset_for(bench)
        changes = {"tol_rel": tol, "tol_abs": tol_abs, "n_read": n_read, "max_pulses": max_pulses, "passes": passes}
        p = dataclasses.replace(p, **{k: v for k, v in changes.items() if v is not None})
        try:
            res = program(bench, targets, p, rows=rows_i, cols=cols_i, out=out, bench_file=bench_path,
                          progress=progress, out_of_window="clip" if clip_to_window else "raise")
        except ValueError as exc:
            msg = str(exc).replace("pass out_of_window='clip'", "pass --clip-to-window")
            raise click.UsageError(f"{targets_path}: {msg}") from None
    s = res.summary()
    click.echo(", ".join(f"{k} {v}" for k, v in res.counts().items()))
    click.echo(f"mean pulses {s['mean_pulses']:.2f}, p99 {s['p99_pulses']:.1f}, converged {100 * s['success_rate']:.2f} %")
    click.echo(f"saved {out}")


def register(group: click.Group) -> None:
    for cmd in (read_command, form_command, program_command):
        group.add_command(cmd)
