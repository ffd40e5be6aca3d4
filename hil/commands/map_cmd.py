"""``hil map``: fault-aware factorization mapping of a user's matrix (seed 003)."""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from hil.factorization import (DeviceWindow, RankError, SolverParams, factorize,
                               random_fault_codes, validate_codes)
from hil.factorization.feasibility import exactness_report

from .inputs import Finite, load_npy

#: largest number of devices MA and MB together may need (k x (m + n)); beyond it no crossbar exists
MAX_DEVICES = 50_000_000
#: largest conductance a memristive device can be given, S
G_MAX_ABSURD = 1.0


def _load_npy(path: str, what: str) -> np.ndarray:
    return load_npy(path, what)


@click.command("map")
@click.argument("matrix_path", metavar="MATRIX.npy", type=click.Path(exists=True, dir_okay=False))
@click.option("--k", "k", type=click.IntRange(1, 1_000_000), required=True,
              help="Inner dimension: MA is m x k, MB is k x n.")
@click.option("--faults-a", type=click.Path(exists=True, dir_okay=False),
              help="Fault codes of crossbar A (m x k): 0 working, 1 stuck-OFF, 2 stuck-ON.")
@click.option("--faults-b", type=click.Path(exists=True, dir_okay=False),
              help="Fault codes of crossbar B (k x n).")
@click.option("--fault-rate", type=Finite(0, 1), help="Random faults (seed 003 Methods) at this rate.")
@click.option("--fault-kind", type=click.Choice(["off", "on"]), default="off", show_default=True,
              help="Kind of the random faults.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of faults and solver.")
@click.option("--g-max", type=Finite(0, G_MAX_ABSURD, "S", lo_open=True), default=DeviceWindow().g_max,
              show_default=True, help="Largest device conductance, siemens.")
@click.option("--tol", type=Finite(0, 1), default=SolverParams().tol, show_default=True,
              help="Stop once 1 - cos <= tol (0 <= tol <= 1).")
@click.option("--inner", type=click.Choice(["auto", "all"]), default=SolverParams().inner,
              show_default=True,
              help="auto: first try a fit through rank(M) inner lines (the rest at 0 S), "
                   "faster when the faults leave room; all: always spread over all k.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="Result JSON: MA, MB (S), row signs, scale, one_minus_cos.")
def map_command(matrix_path, k, faults_a, faults_b, fault_rate, fault_kind, seed, g_max, tol,
                inner, out_path):
    """Map MATRIX.npy onto two faulty crossbars as MA @ MB (seed 003)."""
    matrix = _load_npy(matrix_path, "MATRIX.npy")
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number) or np.iscomplexobj(matrix):
        raise click.BadParameter(f"matrix must be a real 2-D array, got {matrix.dtype} "
                                 f"with shape {matrix.shape}", param_hint="MATRIX.npy")
    matrix = matrix.astype(np.float64)
    if not np.all(np.isfinite(matrix)) or not np.any(matrix):
        raise click.BadParameter("matrix must be finite and not all zero", param_hint="MATRIX.npy")
    m, n = matrix.shape
    if k * (m + n) > MAX_DEVICES:
        raise click.BadParameter(f"k = {k} needs {k * (m + n):,} devices for a {m}x{n} matrix, more than "
                                 f"{MAX_DEVICES:,}; choose a k near the matrix's rank ({min(m, n)} at most)",
                                 param_hint="--k")
    if np.max(np.abs(matrix)) > 1e150 or np.min(np.abs(matrix[matrix != 0])) < 1e-150:
        raise click.BadParameter("matrix entries span beyond 1e-150..1e150; rescale the matrix",
                                 param_hint="MATRIX.npy")
    if not (g_max > 0 and np.isfinite(g_max)):
        raise click.BadParameter(f"g-max must be a positive conductance in siemens, got {g_max}",
                                 param_hint="--g-max")
    given = (faults_a is not None, faults_b is not None)
    if any(given) and fault_rate is not None:
        raise click.UsageError("give either --faults-a/--faults-b or --fault-rate, not both")
    if any(given) and not all(given):
        raise click.UsageError("--faults-a and --faults-b go together")
    rng = np.random.default_rng(seed)
    if all(given):
        try:
            codes_a = validate_codes(_load_npy(faults_a, "--faults-a"), (m, k), "faults-a")
            codes_b = validate_codes(_load_npy(faults_b, "--faults-b"), (k, n), "faults-b")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--faults-a/--faults-b") from exc
        faults = {"source": "files", "faults_a": str(faults_a), "faults_b": str(faults_b)}
    else:
        rate = 0.0 if fault_rate is None else fault_rate
        if not 0.0 <= rate <= 1.0:
            raise click.BadParameter(f"fault rate must be in [0, 1], got {rate}",
                                     param_hint="--fault-rate")
        off, on = (rate, 0.0) if fault_kind == "off" else (0.0, rate)
        codes_a = random_fault_codes(m, k, off, on, rng)
        codes_b = random_fault_codes(k, n, off, on, rng)
        faults = {"source": "random (seed 003 Methods)", "rate": rate, "kind": fault_kind}
    try:
        result = factorize(matrix, codes_a, codes_b, rng, DeviceWindow(g_max=g_max),
                           SolverParams(tol=tol, inner=inner))
    except RankError as exc:
        raise click.ClickException(str(exc)) from exc
    if not (np.isfinite(result.ma).all() and np.isfinite(result.mb).all() and np.isfinite(result.scale)
            and np.isfinite(result.one_minus_cos)):
        raise click.ClickException("the mapping produced non-finite conductances; check --g-max and the matrix's "
                                   "scale (nothing was written)")
    exact_fit, exact_note = exactness_report(matrix, codes_a, codes_b, result.one_minus_cos, tol,
                                             result.extra.get("obstruction", ...))
    record = {
        "exact_fit": exact_fit,
        "matrix": str(matrix_path), "shape": [m, n], "k": k, "seed": seed, "g_max_siemens": g_max,
        "faults": faults,
        "fault_codes_a": codes_a.tolist(), "fault_codes_b": codes_b.tolist(),
        "ma_siemens": result.ma.tolist(), "mb_siemens": result.mb.tolist(),
        "sign_a": result.sign_a.astype(int).tolist(), "sign_b": result.sign_b.astype(int).tolist(),
        "scale": result.scale,
        "scale_note": "MA @ MB = scale * M, scale in S^2 per unit of M",
        "one_minus_cos": result.one_minus_cos, "cpu_s": result.cpu_s, "inner": inner,
        "inner_lines_used": int(((result.ma != 0).any(axis=0) & (result.mb != 0).any(axis=1)).sum()),
    }
    Path(out_path).write_text(json.dumps(record, allow_nan=False))
    click.echo(f"k={k} ({record['inner_lines_used']} inner lines used)  "
               f"1-cos={result.one_minus_cos:.3e}  scale={result.scale:.4e} S^2  "
               f"cpu={result.cpu_s:.2f} s  -> {out_path}")
    click.echo(exact_note)


def register(group: click.Group) -> None:
    """Add ``hil map`` to the command group."""
    group.add_command(map_command)
