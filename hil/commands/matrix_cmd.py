"""``hil program-matrix``: write a matrix onto the chip (factorized or differential pairs) and measure it."""
from __future__ import annotations

import json

import click
import numpy as np

from .inputs import Finite, load_npy


def _arrays(text: str | None, default: list[str], what: str) -> list[str]:
    names = [t for t in (text.split(",") if text else default) if t]
    if not names:
        raise click.UsageError(f"no arrays for {what}")
    return names


@click.command("program-matrix")
@click.argument("matrix_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--bench", "bench_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="bench file with enough arrays (e.g. hil/benches/factorization.yaml)")
@click.option("--mapping", type=click.Choice(["factorized", "direct"]), default="factorized", show_default=True)
@click.option("--k", type=click.IntRange(1, 4096), default=None, help="inner dimension of MA @ MB (factorized)")
@click.option("--layers", type=click.IntRange(1, 8), default=1, show_default=True,
              help="1 + the number of compensation layers")
@click.option("--arrays-a", default=None,
              help="arrays of the layers, comma-separated: MA's (factorized) or the pair arrays (direct); "
                   "default: the chip's 1st, 3rd, ... arrays")
@click.option("--arrays-b", default=None, help="arrays of MB's layers (default: the chip's 2nd, 4th, ... arrays)")
@click.option("--faults", "fault_files", multiple=True, metavar="ARRAY=FILE",
              help="fault map of an array (hil scan output); arrays without one are scanned first")
@click.option("--g-max", default=400e-6, show_default=True, type=Finite(0, 1, "S", lo_open=True),
              help="top of the mapped window above the RESET floor, S")
@click.option("--random-inputs", default=64, show_default=True, type=click.IntRange(1, 100000), help="VMMs for r^2")
@click.option("--seed", default=0, show_default=True, type=int, help="solver and input seed")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="result file (HDF5)")
def program_matrix_command(matrix_path, bench_path, mapping, k, layers, arrays_a, arrays_b, fault_files, g_max,
                           random_inputs, seed, out) -> None:
    """Program MATRIX.npy (m x n, applied as x @ M) and report 1 - cos and r^2 of what the chip computes."""
    import h5py

    import hil
    from hil.faultmap import FaultMap
    from protocols.matrix import (MatrixParams, Placement, TiledChipMatrix, evaluate, exactness, program_direct,
                                  program_factorized, program_tiled_factorized, scan_arrays)

    matrix = load_npy(matrix_path, "MATRIX", ndim=2)
    if not np.isfinite(matrix).all() or not matrix.any():
        raise click.BadParameter(f"{matrix_path} must be finite and not all zero", param_hint="MATRIX")
    if mapping == "factorized" and k is None:
        raise click.UsageError("--k is required for the factorized mapping")
    p = MatrixParams(g_max=g_max)
    with hil.open_bench(bench_path) as bench:
        names = list(bench.arrays)
        a_all = _arrays(arrays_a, names[0::2], "MA")
        b_all = _arrays(arrays_b, names[1::2], "MB") if mapping == "factorized" else []
        unknown = [n for n in a_all + b_all if n not in bench.arrays]
        if unknown:
            raise click.UsageError(f"no array {', '.join(unknown)} on this chip ({', '.join(names)})")
        rows_a, cols_b = bench.arrays[a_all[0]][0], (bench.arrays[b_all[0]][1] if b_all else 0)
        # larger than one array: one (A, B) pair per tile of rows_a x cols_b
        tiled = mapping == "factorized" and (matrix.shape[0] > rows_a or matrix.shape[1] > cols_b)
        if tiled:
            n_tiles = -(-matrix.shape[0] // rows_a) * -(-matrix.shape[1] // cols_b)
            if layers > 1:
                raise click.UsageError("a tiled matrix (larger than one array) takes no compensation layers")
            if min(len(a_all), len(b_all)) < n_tiles:
                raise click.UsageError(f"{matrix.shape[0]} x {matrix.shape[1]} needs {n_tiles} tiles of "
                                       f"{rows_a} x {cols_b}, i.e. {n_tiles} MA and {n_tiles} MB arrays; "
                                       f"this chip offers {len(a_all)} and {len(b_all)}")
            layers = n_tiles
        a_names = a_all[:layers]
        b_names = b_all[:layers]
        if len(a_names) < layers or (mapping == "factorized" and len(b_names) < layers):
            raise click.UsageError(f"{layers} layer(s) need more arrays than this chip offers ({', '.join(names)})")
        fms = {}
        for spec in fault_files:
            name, sep, path = spec.partition("=")
            if not sep or name not in bench.arrays:
                raise click.UsageError(f"--faults wants ARRAY=FILE with an array of this chip, got {spec!r}")
            fms[name] = FaultMap.load(path)
            if fms[name].shape != tuple(bench.arrays[name]):
                raise click.BadParameter(f"{path} is a {fms[name].shape[0]}x{fms[name].shape[1]} map; array {name} "
                                         f"is {bench.arrays[name][0]}x{bench.arrays[name][1]}", param_hint="--faults")
        missing = [n for n in dict.fromkeys(a_names + b_names) if n not in fms]
        if missing:
            click.echo(f"scanning {', '.join(missing)} for stuck devices")
            fms.update(scan_arrays(bench, missing))
        if tiled:
            cm = program_tiled_factorized(bench, matrix, k, fms, list(zip(a_names, b_names)), (rows_a, cols_b), p,
                                          rng=seed)
        elif mapping == "factorized":
            cm = program_factorized(bench, matrix, k, fms, [Placement(n) for n in a_names],
                                    [Placement(n) for n in b_names], p, rng=seed)
        else:
            cm = program_direct(bench, matrix, fms, [Placement(n) for n in a_names], p)
        ev = evaluate(bench, cm, matrix, rng=seed, n_random=random_inputs)
    verdict = exactness(cm, matrix)  # None for the direct mapping
    blocks = (cm.blocks.items() if isinstance(cm, TiledChipMatrix)
              else [((0, 0), (np.arange(matrix.shape[0]), np.arange(matrix.shape[1]), cm))])
    with h5py.File(out, "w") as f:
        f.attrs.update({"mapping": mapping, "layers": ev["layers"], "tiles": len(blocks),
                        "scale": [c.scale for _, (_, _, c) in blocks] if tiled else cm.scale,
                        "devices": cm.devices, "pulses": cm.pulses, "one_minus_cos": ev["one_minus_cos"],
                        "one_minus_cos_readback": ev["one_minus_cos_readback"], "r2": ev["r2"],
                        "g_max": g_max, "seed": seed, "k": -1 if k is None else k})
        if tiled:
            f.attrs["layout"] = cm.meta["layout"]  # (rows, columns): contiguous or strided
            f.attrs["zero_tiles"] = json.dumps(cm.meta["zero_tiles"])  # all-zero blocks, left unprogrammed
        if verdict is not None:
            # the whole's and each tile's verdict (JSON: exact_possible true / false / null)
            f.attrs["exact_fit"] = json.dumps(verdict[0], allow_nan=False)
        f["matrix"], f["measured"] = matrix, ev["measured"]
        f["vmm_expected"], f["vmm_measured"] = ev["vmm_expected"], ev["vmm_measured"]
        for (ti, tj), (rows, cols, c) in blocks:
            # one array pair per tile; an untiled matrix keeps its stages at the top level
            top = f.create_group(f"tiles/{ti}_{tj}") if tiled else f
            # the rows (inputs) and columns (outputs) of M the pair serves: blocks or strided groups
            top.attrs.update({"rows": rows, "cols": cols})
            if verdict is not None and tiled:
                top.attrs["exact_fit"] = json.dumps(verdict[0]["tiles"][f"{ti}_{tj}"], allow_nan=False)
            _write_stages(top, c)
    layout = f" ({cm.meta['layout'][0]} rows, {cm.meta['layout'][1]} columns)" if tiled else ""
    click.echo(f"{mapping}{' tiled' if tiled else ''}{layout}: {cm.devices} devices, {cm.pulses} pulses; "
               f"1 - cos {ev['one_minus_cos']:.3e} measured "
               f"({ev['one_minus_cos_readback']:.3e} read-back), r^2 {ev['r2']:.5f}")
    for line in verdict[1] if verdict is not None else []:
        click.echo(line)
    click.echo(f"saved {out}")


def _write_stages(group, cm) -> None:
    for si, stage in enumerate(cm.stages):
        for li, layer in enumerate(stage.layers):
            g = group.create_group(f"stages/{si}/layers/{li}")
            g.attrs.update({"array": layer.placement.array, "row0": layer.placement.row0,
                            "col0": layer.placement.col0, "gain": layer.gain})
            for name in ("g_read", "floor", "row_sign", "row_index", "codes"):
                g[name] = getattr(layer, name)


def register(group: click.Group) -> None:
    group.add_command(program_matrix_command)
