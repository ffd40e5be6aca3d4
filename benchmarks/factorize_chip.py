"""Fault-aware factorization on the simulated chip (seed 003 Fig. 3f and Fig. 4).

The chip is ``hil/benches/factorization.yaml``: eight 64x64 Stanford-gap 1T1R arrays with
5 % random stuck-OFF devices each. Its fault maps come from a stuck-device scan of every
array (protocols/scan.py), never from the simulator's truth. Then, for each configuration,
C = Re(DFT32) goes onto arrays A1/B1 (layer 1) and A2/B2 (compensation layer) and
S = -Im(DFT32) onto A3/B3, A4/B4, with ISPP write-and-verify and read-back:

* direct: differential pairs (2 x 32 x 32 devices per layer), without / with one
  compensation layer (the first is the second's layer 1, measured alone). The
  compensation layer's gain is capped at the factorized layers' ratio (0.125, seed 003's
  analog slicing, which cannot undo a stuck device); "free gain" lets it be full scale,
  so the second pair array patches the first one's stuck devices;
* factorized k = 17 (47 % fewer devices) and k = 32 (the direct mapping's device count),
  each without and with one compensation layer (programmed separately: layer 1 of a
  compensated mapping is written short of its targets on purpose); and k = 17 with two
  compensation layers (seed 003's 3,264-device case; C only, on A1/B1..A3/B3).

Fig. 3f: for C, 1 - cos of the matrix measured through the chip (basis inputs, VMMs) and
of the read-back, and r^2 of measured against expected outputs for 64 random input
vectors in [-1, 1]. Fig. 4: the 2D DFT of a grayscale image (scikit-learn's china.jpg,
downsampled) in 32x32 blocks, every 1D pass by VMMs through the chip, reconstructed by an
ideal inverse DFT; SNR against the original.

Run: ``PYTHONPATH=$PWD python benchmarks/factorize_chip.py [--image-size 64] [--rate-off 0.05]``
-> ``benchmarks/results/factorize_chip.json`` and PNGs next to it.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

import hil
from benchmarks._common import RESULTS, write_results
from hil.factorization import one_minus_cos
from protocols.matrix import (MatrixParams, Placement, apply, block_dft2, block_idft2, dft_parts, evaluate,
                              program_direct, program_factorized, scan_arrays, snr_db)

BENCH = "hil/benches/factorization.yaml"
N = 32


def test_image(size: int) -> np.ndarray:
    """Grayscale china.jpg (ships with scikit-learn), area-downsampled and center-cropped to size x size, in [0, 1]."""
    from sklearn.datasets import load_sample_image

    rgb = load_sample_image("china.jpg").astype(float) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    f = max(1, min(gray.shape) // (2 * size))
    h, w = (gray.shape[0] // f) * f, (gray.shape[1] // f) * f
    small = gray[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    r0, c0 = (small.shape[0] - size) // 2, (small.shape[1] - size) // 2
    return small[r0:r0 + size, c0:c0 + size]


def placements(layers: int, part: int) -> tuple[list[Placement], list[Placement]]:
    """Arrays of matrix ``part`` (0: C on A1/B1, A2/B2; 1: S on A3/B3, A4/B4)."""
    a = [Placement(f"A{2 * part + i + 1}") for i in range(layers)]
    b = [Placement(f"B{2 * part + i + 1}") for i in range(layers)]
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=64, help="image side, a multiple of 32")
    ap.add_argument("--rate-off", type=float, default=0.05, help="stuck-OFF fraction of every array")
    ap.add_argument("--seed", type=int, default=0, help="chip seed")
    ap.add_argument("--random-inputs", type=int, default=64)
    args = ap.parse_args()
    t_start = time.perf_counter()
    c_mat, s_mat = dft_parts(N)
    image = test_image(args.image_size)
    p = MatrixParams()
    p_img = dataclasses.replace(p, n_vmm=1)  # one VMM per vector: pixel errors average over the inverse DFT
    bench = hil.open_bench(BENCH, chip={"seed": args.seed, "faults": {"kind": "random", "rate_off": args.rate_off}})
    fms = scan_arrays(bench)
    scan_s = time.perf_counter() - t_start
    print(f"scanned {len(fms)} arrays in {scan_s:.1f} s: "
          + ", ".join(f"{n} {fm.counts()['stuck_off']} off/{fm.counts()['stuck_on']} on" for n, fm in fms.items()))

    def direct(layers, params):
        out = []
        for part, mat in enumerate((c_mat, s_mat)):
            a, _ = placements(layers, part)
            out.append(program_direct(bench, mat, fms, a, params))
        return out

    def factorized(k, layers):
        out = []
        for part, mat in enumerate((c_mat, s_mat)):
            a, b = placements(layers, part)
            out.append(program_factorized(bench, mat, k, fms, a, b, p, rng=args.seed))
        return out

    records, images = [], {"original": image}
    scatter = {}

    def run(name, mapping, both, program_s):
        """Fig. 3f figures for C (and S when given) and, with both parts, the Fig. 4 image."""
        t0 = time.perf_counter()
        ev = evaluate(bench, both[0], c_mat, rng=1, n_random=args.random_inputs)
        rec_ = {"config": name, "mapping": mapping, "k": ev.get("k"), "layers": ev["layers"],
                "devices_per_matrix": ev["devices"], "re_one_minus_cos_measured": ev["one_minus_cos"],
                "re_one_minus_cos_readback": ev["one_minus_cos_readback"], "re_r2": ev["r2"], "pulses": ev["pulses"]}
        line = (f"{name:24s} devices {ev['devices']:5d}  Re: 1-cos {ev['one_minus_cos']:.2e} (read-back "
                f"{ev['one_minus_cos_readback']:.2e})  r^2 {ev['r2']:.4f}")
        if len(both) == 2:
            ev_s = evaluate(bench, both[1], s_mat, rng=2, n_random=args.random_inputs)
            img_maps = [dataclasses.replace(cm, params=p_img) for cm in both]
            spec = block_dft2(image, lambda u: apply(bench, img_maps[0], u), lambda u: apply(bench, img_maps[1], u), N)
            rec = block_idft2(spec, N)
            images[name] = rec
            rec_.update({"devices_re_and_im": ev["devices"] + ev_s["devices"], "im_one_minus_cos_measured":
                         ev_s["one_minus_cos"], "im_r2": ev_s["r2"], "image_snr_db": snr_db(image, rec),
                         "pulses": ev["pulses"] + ev_s["pulses"]})
            line += f"   Im: 1-cos {ev_s['one_minus_cos']:.2e}  image SNR {rec_['image_snr_db']:6.2f} dB"
        scatter[name] = (ev["vmm_expected"], ev["vmm_measured"])
        rec_.update({"program_s": program_s, "measure_s": time.perf_counter() - t0})
        records.append(rec_)
        print(f"{line}   [{program_s:.0f} s program, {rec_['measure_s']:.0f} s measure]", flush=True)

    t0 = time.perf_counter()
    d2 = direct(2, p)
    t_d = time.perf_counter() - t0
    run("direct", "direct", [cm.truncated(1) for cm in d2], t_d)
    run("direct+comp", "direct", d2, t_d)
    t0 = time.perf_counter()
    run("direct+comp (free gain)", "direct", direct(2, dataclasses.replace(p, direct_layer_gain=None)),
        time.perf_counter() - t0)
    for k in (17, 32):
        for layers in (1, 2):
            t0 = time.perf_counter()
            both = factorized(k, layers)
            run(f"fact k={k}" + ("+comp" if layers == 2 else ""), "factorized", both, time.perf_counter() - t0)
    # seed 003's two compensation layers (3 x 1088 devices), for C only: A1/B1, A2/B2, A3/B3
    t0 = time.perf_counter()
    three = program_factorized(bench, c_mat, 17, fms, [Placement(f"A{i}") for i in (1, 2, 3)],
                               [Placement(f"B{i}") for i in (1, 2, 3)], p, rng=args.seed)
    run("fact k=17+2comp", "factorized", [three], time.perf_counter() - t0)
    bench.close()

    by = {r["config"]: r for r in records}
    summary = {
        "fig3f_r2": {n: by[n]["re_r2"] for n in by},
        "fig3f_devices": {n: by[n]["devices_per_matrix"] for n in by},
        "fig3f_one_minus_cos": {n: by[n]["re_one_minus_cos_measured"] for n in by},
        "fig4_snr_db": {n: by[n]["image_snr_db"] for n in by if "image_snr_db" in by[n]},
        # seed 003 Fig. 4d: +28.9 dB at the direct mapping's device count (k = 32, with compensation),
        # +15.9 dB with 47 % fewer devices (k = 17 with compensation against direct with compensation)
        "fig4_snr_gain_equal_devices_comp_db": by["fact k=32+comp"]["image_snr_db"] - by["direct+comp"]["image_snr_db"],
        "fig4_snr_gain_equal_devices_db": by["fact k=32"]["image_snr_db"] - by["direct"]["image_snr_db"],
        "fig4_snr_gain_k17_comp_vs_direct_comp_db": (by["fact k=17+comp"]["image_snr_db"]
                                                     - by["direct+comp"]["image_snr_db"]),
        "paper": {"fig3f_r2": {"direct+comp": 0.9640, "fact k=17+comp": 0.9990, "fact k=17+2comp": 0.9998},
                  "fig4_snr_gain_equal_devices_comp_db": 28.9, "fig4_snr_gain_k17_comp_vs_direct_comp_db": 15.9},
    }
    out = {"bench": BENCH, "rate_off": args.rate_off, "seed": args.seed, "image_size": args.image_size,
           "matrix": "DFT32 (Re = C for Fig. 3f; C and S for the image)",
           "faults_found": {n: fm.counts() for n, fm in fms.items()}, "records": records, "summary": summary,
           "wall_s": time.perf_counter() - t_start}
    path = write_results("factorize_chip", out)
    _plots(scatter, images, by)
    print(f"Fig. 3f r^2: direct+comp {by['direct+comp']['re_r2']:.4f} (paper 0.9640), fact k=17+comp "
          f"{by['fact k=17+comp']['re_r2']:.4f} (0.9990), k=17+2comp {by['fact k=17+2comp']['re_r2']:.4f} (0.9998)")
    print(f"Fig. 4d SNR gain over direct: equal devices {summary['fig4_snr_gain_equal_devices_comp_db']:.1f} dB with "
          f"compensation (paper 28.9), {summary['fig4_snr_gain_equal_devices_db']:.1f} dB without; k=17+comp vs "
          f"direct+comp (47 % fewer devices) {summary['fig4_snr_gain_k17_comp_vs_direct_comp_db']:.1f} dB (paper 15.9)")
    print(f"wrote {path} in {out['wall_s']:.0f} s")


def _plots(scatter: dict, images: dict, by: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scatter)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.3), squeeze=False)
    for ax, name in zip(axes[0], names):
        e, m = scatter[name]
        ax.plot(e.ravel(), m.ravel(), ".", ms=1.5, alpha=0.5)
        lim = np.abs(e).max() * 1.1
        ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.5)
        ax.set_title(f"{name}\n{by[name]['devices_per_matrix']} devices, r$^2$ {by[name]['re_r2']:.4f}", fontsize=8)
        ax.set_xlabel("expected x @ Re(DFT32)", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].set_ylabel("measured on chip", fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "factorize_chip_vmm.png", dpi=130)
    plt.close(fig)
    n_cols = 4
    n_rows = -(-len(images) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.6 * n_cols, 2.9 * n_rows), squeeze=False)
    for ax in axes.ravel()[len(images):]:
        ax.axis("off")
    for ax, (name, img) in zip(axes.ravel(), images.items()):
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name if name == "original" else f"{name}\n{by[name]['image_snr_db']:.1f} dB", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / "factorize_chip_images.png", dpi=130)
    plt.close(fig)


if __name__ == "__main__":
    main()
