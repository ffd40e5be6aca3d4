"""``hil demo``: the main job, end to end on the embedded simulated bench.

1. open the simulated bench (a 64x64 Stanford-gap chip with stuck devices) through the
   real drivers;
2. scan it for stuck devices and save the fault map (HDF5 + PNG);
3. write-and-verify (ISPP) a picture into the working cells, leaving the stuck ones alone;
4. read the array back and save the target and programmed conductance maps (PNG).

Every step is a protocol a lab script would call on a real bench; only the final
comparison with the chip's hidden fault map is specific to the simulation.
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from .inputs import Finite


def picture_targets(rows: int, cols: int, g_low: float, g_high: float) -> np.ndarray:
    """Four handwritten digits (scikit-learn's UCI set) tiled over the array, as conductances (S).

    Ink maps to ``g_high`` and paper to ``g_low``, log-uniformly in between.
    """
    from sklearn.datasets import load_digits

    digits = load_digits().images  # 8x8, intensities 0..16
    picks = [digits[i] for i in (0, 13, 22, 37)]  # one each of 0, 3, 2, 7
    half_r, half_c = rows // 2, cols // 2
    canvas = np.zeros((rows, cols))
    for k, img in enumerate(picks):
        block = np.kron(img / 16.0, np.ones((-(-half_r // 8), -(-half_c // 8))))[:half_r, :half_c]
        r0, c0 = (k // 2) * half_r, (k % 2) * half_c
        canvas[r0:r0 + half_r, c0:c0 + half_c] = block
    return g_low * (g_high / g_low) ** canvas


@click.command("demo")
@click.option("--out", default="out/demo", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--fault-off", default=0.05, show_default=True, type=Finite(0, 1), help="stuck-OFF rate")
@click.option("--fault-on", default=0.02, show_default=True, type=Finite(0, 1), help="stuck-ON rate")
@click.option("--seed", default=0, show_default=True, type=int, help="seed of the simulated chip")
@click.option("--tolerance", default=0.03, show_default=True, type=Finite(0.005, 0.5),
              help="ISPP tolerance, relative")
@click.option("--progress/--no-progress", default=True, show_default=True)
def demo(out: Path, fault_off: float, fault_on: float, seed: int, tolerance: float, progress: bool) -> None:
    """Scan a simulated chip for stuck devices, program a picture into it, read it back."""
    import dataclasses

    import hil
    from hil.faultmap import precision_recall
    from hil.plots import conductance_heatmap, faultmap_heatmap
    from protocols.ispp import program, preset_for
    from protocols.read import ReadParams, read_all
    from protocols.scan import scan

    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    faults = {"kind": "random", "rate_off": fault_off, "rate_on": fault_on, "seed": seed}
    with hil.open_bench(chip={"seed": seed, "faults": faults}) as bench:
        click.echo(f"bench {bench.name!r}: {bench.rows}x{bench.cols} chip, hard limits "
                   f"|V_line| <= {bench.limits.v_line_max:g} V, V_gate <= {bench.limits.v_gate_max:g} V")

        chip = bench.sim.arrays[bench.array]  # the simulation's ground truth, for the final comparison only

        # 1. stuck-device scan -> fault map
        res = scan(bench, out=str(out / "scan_run.h5"), chip_id=f"SIM-{seed}", progress=progress, overwrite=True)
        fm = res.faultmap
        fm.save(out / "faults.h5")
        faultmap_heatmap(fm, out / "faults.png")
        click.echo(fm.summary())
        precision, recall = precision_recall(fm.export_codes(), chip.true_fault_codes)
        click.echo(f"  against the simulated chip's hidden fault map: precision {precision:.3f}, recall {recall:.3f}")

        # 2. ISPP write-and-verify of a picture into the working cells only
        params = dataclasses.replace(preset_for(bench), tol_rel=tolerance)
        targets = picture_targets(bench.rows, bench.cols, 20e-6, 400e-6)
        targets[fm.masks()["faulty"]] = np.nan  # stuck cells cannot be programmed: leave them alone
        conductance_heatmap(targets, out / "target.png", "target conductance (stuck cells blank)")
        result = program(bench, targets, params, out=str(out / "ispp_run.h5"), seed=seed, progress=progress,
                         overwrite=True)
        s = result.summary()
        click.echo(f"ISPP at {tolerance:.0%}: {s['cells']} cells, {s['success_rate']:.2%} converged, "
                   f"mean {s['mean_pulses']:.2f} pulses (p99 {s['p99_pulses']:.0f})")

        # 3. read back
        readback = read_all(bench, ReadParams(params.v_read, params.read_gate, 4), out=str(out / "read_run.h5"),
                            heatmap=str(out / "programmed.png"), progress=progress, overwrite=True)
        ok = np.isfinite(targets)
        err = np.abs(readback.g[ok] / targets[ok] - 1)
        click.echo(f"read-back: median |error| {np.median(err):.2%}, {np.mean(err <= tolerance):.2%} of programmed "
                   f"cells within {tolerance:.0%}; simulated chip time {chip.time_s * 1e3:.1f} ms")
    click.echo(f"done in {time.perf_counter() - t0:.1f} s; figures and run files in {out}/")


def register(group: click.Group) -> None:
    group.add_command(demo)
