"""Seed 000 defect study with wire resistance: stuck-on vs stuck-off per pattern and layer (issue 7).

The circuit's four arrays are solved as crossbars (``hil.networks.wires``) with ``r`` ohm
per bit- and source-line segment and an ideal I-V stage (r_in = 0), so wires are the only
non-ideality; r = 0 is the ideal reference, where stuck-on and stuck-off coincide. A
reduced Fig. 4: the 180 test images of the paper split, each pattern at two sizes
(indices 1 and 3; the checkerboard has one), every layer, both kinds.

Writes benchmarks/results/corrector_wires.json and corrector_wires.png.

    python3 -m benchmarks.corrector_wires [--r 1.0 2.0] [--sizes 1 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks._common import RESULTS, write_results
from hil.corrector.study import wire_defect_study
from hil.networks.circuit import CircuitParams, NeuromorphicCircuit
from hil.networks.digits import load_digits_data, paper_split, train_digits_network
from hil.networks.wires import WiredCircuit
from simulated_bench.crossbar import WireParams
from simulated_bench.faults import PATTERNS

SHORT = {"circle": "circle", "ring": "ring", "circle_complement": "c-comp", "rows": "rows", "columns": "cols",
         "checkerboard": "checker"}


def _key(r: dict) -> tuple:
    return r["pattern"], r["layer"], r["size_index"]


def pair_rows(records: list[dict]) -> list[dict]:
    """One row per configuration: accuracy stuck-off, stuck-on and the difference (on - off)."""
    acc = {(_key(r), r["kind"]): r for r in records}
    keys = list(dict.fromkeys(_key(r) for r in records))
    return [{"pattern": k[0], "layer": k[1], "size_index": k[2], "size": acc[(k, "off")]["size"],
             "coverage": acc[(k, "off")]["coverage"], "acc_off": acc[(k, "off")]["accuracy"],
             "acc_on": acc[(k, "on")]["accuracy"],
             "on_minus_off": acc[(k, "on")]["accuracy"] - acc[(k, "off")]["accuracy"]} for k in keys]


def figure(study: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, pat in zip(axes.ravel(), PATTERNS):
        for c, (r_seg, res) in enumerate(study.items()):
            rows = [p for p in res["configs"] if p["pattern"] == pat]
            xs = np.arange(len(rows))
            ax.plot(xs, [100 * p["acc_off"] for p in rows], "o-", color=colors[c], label=f"r={r_seg} ohm off")
            ax.plot(xs, [100 * p["acc_on"] for p in rows], "s--", color=colors[c], label=f"r={r_seg} ohm on")
            ax.axhline(100 * res["clean_accuracy"], color=colors[c], lw=0.7, alpha=0.6)
            ax.set_xticks(xs, [f"L{p['layer']}\ns{p['size_index']}" for p in rows], fontsize=7)
        ax.set_title(pat)
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("test accuracy (%)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Seed 000 defects with wire resistance: stuck-off (solid) vs stuck-on (dashed); "
                 "thin lines: fault-free accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--r", type=float, nargs="+", default=[1.0, 2.0], help="ohm per segment (BL and SL)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 3], help="size indices of each pattern")
    ap.add_argument("--seed", type=int, default=0, help="base-network seed (paper split)")
    args = ap.parse_args()
    t_start = time.perf_counter()
    x, y = load_digits_data()
    tr, te = paper_split(y, args.seed)
    net = train_digits_network(x[tr], y[tr], args.seed)
    circuit = NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=0.0))
    study: dict = {}
    for r_seg in [0.0, *args.r]:
        t0 = time.perf_counter()
        wired = WiredCircuit(circuit, WireParams(0.0, r_seg, r_seg))
        records = wire_defect_study(wired, x[te], y[te], tuple(args.sizes))
        clean = float(np.mean(wired.predict(x[te]) == y[te]))
        configs = pair_rows(records)
        study[r_seg] = {"clean_accuracy": clean, "configs": configs, "time_s": time.perf_counter() - t0,
                        "on_worse_count": int(sum(p["on_minus_off"] < 0 for p in configs)),
                        "on_better_count": int(sum(p["on_minus_off"] > 0 for p in configs)),
                        "mean_on_minus_off": float(np.mean([p["on_minus_off"] for p in configs]))}
        print(f"r = {r_seg} ohm: fault-free accuracy {100 * clean:.1f} %, {len(records)} configurations "
              f"in {study[r_seg]['time_s']:.0f} s", flush=True)
    print("\nTest accuracy (%) stuck-off / stuck-on [on - off, pp], 180 images, r_in = 0")
    print(f"{'pattern':8s} {'L':>2s} {'s':>2s} {'cov':>5s} " + "".join(f"{f'r={r} ohm':>21s}" for r in study))
    base = study[0.0]["configs"]
    for k, p in enumerate(base):
        cells = "".join(f"{100 * res['configs'][k]['acc_off']:6.1f}/{100 * res['configs'][k]['acc_on']:5.1f} "
                        f"[{100 * res['configs'][k]['on_minus_off']:+5.1f}]" for res in study.values())
        print(f"{SHORT[p['pattern']]:8s} {p['layer']:2d} {p['size_index']:2d} {p['coverage']:5.2f} {cells}")
    for r_seg, res in study.items():
        print(f"r = {r_seg} ohm: on worse in {res['on_worse_count']}, better in {res['on_better_count']} of "
              f"{len(res['configs'])} configurations; mean on - off {100 * res['mean_on_minus_off']:+.1f} pp")
    png = RESULTS / "corrector_wires.png"
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure(study, str(png))
    total = time.perf_counter() - t_start
    path = write_results("corrector_wires", {
        "settings": {"r_in_ohm": 0.0, "r_segment_ohm": list(study), "size_indices": args.sizes,
                     "base_seed": args.seed, "images": "paper split test (180)",
                     "software_test_acc": net.accuracy(x[te], y[te])},
        "study": {str(r): res for r, res in study.items()}, "total_s": total})
    print(f"wrote {path} and {png} in {total:.0f} s")


if __name__ == "__main__":
    main()
