"""``hil read``, ``hil form`` and ``hil program``: read-all, forming and ISPP write-and-verify."""
from __future__ import annotations

import dataclasses

import click
import numpy as np

from .inputs import Finite, bench_option, load_npy, overwrite_option, span

_rows_opt = click.option("--rows", default=None, help="rows, 'a:b' or 'a,b,c' (default all)")
_cols_opt = click.option("--cols", default=None, help="columns (default all)")
_progress_opt = click.option("--progress/--no-progress", default=True, show_default=True)
_out_opt = click.option("--out", required=True, type=click.Path(dir_okay=False),
                        help="run file (HDF5); the same command again resumes it")
#: no bench line, gate or read voltage of a crossbar chip comes near this (V)
V_ABSURD = 100.0


@click.command("read")
@bench_option
@_out_opt
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="heatmap (default: OUT.png)")
@click.option("--v-read", default=0.2, show_default=True, type=Finite(-V_ABSURD, V_ABSURD, "V"),
              help="read voltage, V (non-zero)")
@click.option("--v-gate", default=3.0, show_default=True, type=Finite(0, V_ABSURD, "V"), help="word-line voltage, V")
@click.option("--n-avg", default=1, show_default=True, type=click.IntRange(1, 1000), help="reads averaged")
@_rows_opt
@_cols_opt
@overwrite_option
@_progress_opt
def read_command(bench_path, out, png, v_read, v_gate, n_avg, rows, cols, overwrite, progress) -> None:
    """Conductance map of the array (or a region), saved with its metadata and as a heatmap."""
    import hil
    from protocols.read import ReadParams, read_all

    if v_read == 0:
        raise click.BadParameter("the read voltage must be non-zero", param_hint="--v-read")
    png = png or (out.rsplit(".", 1)[0] + ".png")
    with hil.open_bench(bench_path) as bench:
        res = read_all(bench, ReadParams(v_read, v_gate, n_avg), rows=span(rows, bench.rows, "--rows"),
                       cols=span(cols, bench.cols, "--cols"), out=out, heatmap=png, bench_file=bench_path,
                       progress=progress, overwrite=overwrite)
    g = res.g * 1e6
    click.echo(f"read {g.shape[0]}x{g.shape[1]} cells at {v_read:g} V: {np.nanmin(g):.2f}..{np.nanmax(g):.2f} uS "
               f"(median {np.nanmedian(g):.2f} uS); {res.n_reads} row reads")
    click.echo(f"saved {out} and {png}")


@click.command("form")
@bench_option
@_out_opt
@click.option("--r-target", default=None, type=Finite(1.0, 1e12, "ohm"), help="formed at or below this resistance, ohm")
@click.option("--v-max", default=None, type=Finite(0, V_ABSURD, "V", lo_open=True), help="top of the ramp, V")
@click.option("--gate", default=None, type=Finite(0, V_ABSURD, "V", lo_open=True),
              help="word-line voltage (compliance), V")
@_rows_opt
@_cols_opt
@overwrite_option
@_progress_opt
def form_command(bench_path, out, r_target, v_max, gate, rows, cols, overwrite, progress) -> None:
    """Electroform the cells with a voltage ramp; report the cells that never formed.

    The whole ramp is checked against the bench limits before the first pulse.
    """
    import hil
    from protocols.forming import FORM_PRESETS, FormParams, form
    from protocols.runner import device_model

    with hil.open_bench(bench_path) as bench:
        p = FORM_PRESETS.get(device_model(bench), FormParams())
        changes = {k: v for k, v in (("r_target", r_target), ("v_max", v_max), ("gate", gate)) if v is not None}
        try:
            p = dataclasses.replace(p, **changes)
        except ValueError as exc:
            raise click.UsageError(f"{exc} (--v-max must not be below the ramp's start, {p.v_start:g} V)") from None
        res = form(bench, p, rows=span(rows, bench.rows, "--rows"), cols=span(cols, bench.cols, "--cols"), out=out,
                   bench_file=bench_path, progress=progress, overwrite=overwrite)
    n = res.formed.size
    click.echo(f"formed {int(res.formed.sum())} of {n} cells ({res.pulses} pulses); never formed: {len(res.never_formed)}")
    for r, c in res.never_formed[:50]:
        click.echo(f"  ({r}, {c})")
    click.echo(f"saved {out}")


@click.command("program")
@bench_option
@click.option("--targets", "targets_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help=".npy of target conductances in S (NaN = leave alone), exactly the shape of the region")
@_out_opt
@click.option("--tol", default=0.03, show_default=True, type=Finite(0, 1, lo_open=True),
              help="relative tolerance, a fraction in (0, 1)")
@click.option("--tol-abs", default=0.0, show_default=True, type=Finite(0, 1e-3, "S"),
              help="absolute tolerance floor, S (at most 1 mS)")
@click.option("--n-read", default=None, type=click.IntRange(1, 100), help="reads averaged per verify")
@click.option("--max-pulses", default=None, type=click.IntRange(1, 100000), help="pulse budget per cell and pass")
@click.option("--passes", default=None, type=click.IntRange(1, 20), help="array-level passes")
@click.option("--faults", "faults_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="fault map of the whole chip (hil scan output or a .npy of codes 0-3): "
                   "its stuck / unreliable cells are left alone")
@click.option("--clip-to-window", is_flag=True, default=False,
              help="move targets outside the device's programmable window to its edge instead of refusing them")
@_rows_opt
@_cols_opt
@overwrite_option
@_progress_opt
def program_command(bench_path, targets_path, out, tol, tol_abs, n_read, max_pulses, passes, faults_path,
                    clip_to_window, rows, cols, overwrite, progress) -> None:
    """ISPP write-and-verify of a target conductance map."""
    import hil
    from hil.faultmap import WORKING, load_codes
    from protocols.ispp import preset_for, program

    targets = load_npy(targets_path, "--targets", ndim=2)
    if np.isinf(targets).any() or (targets[np.isfinite(targets)] <= 0).any():
        raise click.BadParameter(f"{targets_path} must hold positive conductances in siemens (NaN = leave a cell "
                                 "alone); it holds infinite, zero or negative values", param_hint="--targets")
    with hil.open_bench(bench_path) as bench:
        rows_i, cols_i = span(rows, bench.rows, "--rows"), span(cols, bench.cols, "--cols")
        region = (len(rows_i) if rows_i else bench.rows, len(cols_i) if cols_i else bench.cols)
        if targets.shape != region:
            raise click.BadParameter(f"{targets_path} holds {targets.shape[0]}x{targets.shape[1]} targets but the "
                                     f"region is {region[0]}x{region[1]}; give targets of the region's shape or "
                                     "choose the region with --rows / --cols", param_hint="--targets")
        if faults_path:
            codes = load_codes(faults_path, (bench.rows, bench.cols))
            sub = codes[np.ix_(rows_i or range(bench.rows), cols_i or range(bench.cols))]
            targets = np.where(sub == WORKING, targets, np.nan)
        p = preset_for(bench)
        changes = {"tol_rel": tol, "tol_abs": tol_abs, "n_read": n_read, "max_pulses": max_pulses, "passes": passes}
        p = dataclasses.replace(p, **{k: v for k, v in changes.items() if v is not None})
        try:
            res = program(bench, targets, p, rows=rows_i, cols=cols_i, out=out, bench_file=bench_path,
                          progress=progress, out_of_window="clip" if clip_to_window else "raise", overwrite=overwrite)
        except ValueError as exc:
            if "programmable window" not in str(exc):
                raise
            msg = str(exc).replace("pass out_of_window='clip'", "pass --clip-to-window")
            raise click.UsageError(f"{targets_path}: {msg}") from None
    s = res.summary()
    click.echo(", ".join(f"{k} {v}" for k, v in res.counts().items()))
    click.echo(f"mean pulses {s['mean_pulses']:.2f}, p99 {s['p99_pulses']:.1f}, converged {100 * s['success_rate']:.2f} %")
    click.echo(f"saved {out}")


def register(group: click.Group) -> None:
    for cmd in (read_command, form_command, program_command):
        group.add_command(cmd)
