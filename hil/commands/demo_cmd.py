"""``hil demo``: the main job on the embedded simulated chip.

Builds a simulated 64x64 chip with stuck devices, reads it, prints a summary and saves
the conductance map and the fault map as PNG figures.
"""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np


def _save_maps(g_map: np.ndarray, codes: np.ndarray, out: Path) -> tuple[Path, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm

    out.mkdir(parents=True, exist_ok=True)
    g_png, f_png = out / "conductance_map.png", out / "fault_map.png"
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(g_map * 1e6, cmap="viridis", norm=LogNorm())
    fig.colorbar(im, ax=ax, label="conductance (uS)")
    ax.set(title="read conductance map", xlabel="column (bit line)", ylabel="row (word line)")
    fig.tight_layout()
    fig.savefig(g_png, dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = ListedColormap(["#e8e8e8", "#2b5cab", "#d1352b"])
    im = ax.imshow(codes, cmap=cmap, norm=BoundaryNorm([-0.5, 0.5, 1.5, 2.5], 3))
    cbar = fig.colorbar(im, ax=ax, ticks=[0, 1, 2])
    cbar.ax.set_yticklabels(["working", "stuck-OFF", "stuck-ON"])
    ax.set(title="fault map (chip truth)", xlabel="column (bit line)", ylabel="row (word line)")
    fig.tight_layout()
    fig.savefig(f_png, dpi=120)
    plt.close(fig)
    return g_png, f_png


@click.command("demo")
@click.option("--rows", default=64, show_default=True, type=click.IntRange(1, 4096))
@click.option("--cols", default=64, show_default=True, type=click.IntRange(1, 4096))
@click.option("--fault-off", default=0.05, show_default=True, type=click.FloatRange(0, 1), help="stuck-OFF rate")
@click.option("--fault-on", default=0.02, show_default=True, type=click.FloatRange(0, 1), help="stuck-ON rate")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="out/demo", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def demo(rows: int, cols: int, fault_off: float, fault_on: float, seed: int, out: Path) -> None:
    """Build a simulated chip with faults, read it, summarise and plot it."""
    from simulated_bench import SimulatedArray, random_fault_codes

    rng = np.random.default_rng(seed)
    codes = random_fault_codes(rows, cols, fault_off, fault_on, rng)
    chip = SimulatedArray(rows, cols, fault_codes=codes, seed=rng, initial_state="off")
    # bring the working cells to assorted states with SET pulses of random gate voltage
    for r in range(rows):
        chip.pulse_row(r, None, 2.0, 1e-6, float(rng.uniform(0.9, 1.5)))
    v_read, v_gate = 0.2, 3.0
    g_map = chip.read_all(v_read, v_gate) / v_read
    counts = {name: int(np.count_nonzero(codes == c)) for c, name in ((0, "working"), (1, "stuck-OFF"), (2, "stuck-ON"))}
    click.echo(f"simulated chip {rows}x{cols}, model {chip.model.name}, seed {seed}")
    click.echo("cells: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    working = g_map[codes == 0]
    click.echo(f"read at {v_read} V: working cells {working.min() * 1e6:.1f}..{working.max() * 1e6:.1f} uS "
               f"(median {np.median(working) * 1e6:.1f} uS); simulated time {chip.time_s * 1e3:.3f} ms")
    g_png, f_png = _save_maps(g_map, codes, out)
    click.echo(f"saved {g_png} and {f_png}")


def register(group: click.Group) -> None:
    group.add_command(demo)
