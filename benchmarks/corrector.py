"""Seed 000 benchmark: defect study, 150,948-sample dataset, correctors on the paper and clean protocols.

Writes benchmarks/results/corrector.json (+ corrector_fig4.png, corrector_fig6.png) and the
dataset to out/corrector_dataset.h5. Default run: 3 base-network seeds x 2 corrector seeds
on the clean protocol; ``--quick`` uses one of each and fewer models.

    python3 -m benchmarks.corrector [--quick] [--scheduler local|serial|tcp://HOST:PORT]

The paper-protocol runs (one per base seed) and the clean-protocol runs (one per base
seed with its corrector seeds) are sweep points on Dask (:mod:`hil.sweep`); each trains
and draws from its own seeds with single-threaded BLAS, so the tables do not depend on
the scheduler.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks._common import add_sweep_args, run_points
from hil.corrector.dataset import generate
from hil.corrector.defects import DefectGeometry, paper_configs
from hil.corrector.models import CEILING, LOGISTIC, OUR_TRAIN, OURS, paper_mlp, ours_within
from hil.corrector.study import (CleanSetup, clean_data, clean_protocol, defect_study, paper_protocol, select_best,
                                 severity_curves)
from hil.networks.circuit import CircuitParams, NeuromorphicCircuit
from hil.networks.digits import load_digits_data, paper_split, train_digits_network
from simulated_bench.faults import PATTERNS

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
OUT = os.path.join(os.path.dirname(HERE), "out")

#: seed 000 Tables III and IV (MLP(10,10)), improvement range in pp
PAPER_SAME = {"circle": (30, 40), "ring": (30, 40), "rows": (30, 40), "columns": (30, 40),
              "circle_complement": (15, 20), "checkerboard": (10, 15)}
PAPER_CROSS = {("ring", "circle"): (15, 25), ("circle", "ring"): (15, 25), ("rows", "columns"): (10, 20),
               ("columns", "rows"): (10, 20), ("circle_complement", "circle"): (None, 10),
               ("circle", "circle_complement"): (None, 10)}
SHORT = {"circle": "circle", "ring": "ring", "circle_complement": "c-comp", "rows": "rows", "columns": "cols",
         "checkerboard": "checker"}


def _mean_std(vals: list[float]) -> tuple[float, float]:
    a = np.asarray(vals, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def fig4(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, pat in zip(axes.ravel(), PATTERNS):
        if pat == "checkerboard":  # one size: accuracy per layer
            for off, kind in ((-0.2, "off"), (0.2, "on")):
                acc = [next(r["accuracy"] for r in rows if r["pattern"] == pat and r["layer"] == layer
                            and r["kind"] == kind) for layer in range(4)]
                ax.bar(np.arange(4) + off, 100 * np.array(acc), 0.4, color=colors[:4],
                       hatch="" if kind == "off" else "//", edgecolor="k", label=f"stuck-{kind}")
            ax.set_xticks(range(4), [f"layer {k}" for k in range(4)])
            ax.set_title("checkerboard (~50 % of pairs; plain stuck-off, hatched stuck-on)")
            continue
        for layer in range(4):
            for kind, style in (("off", "-o"), ("on", "--s")):
                pts = sorted((r["coverage"], r["accuracy"]) for r in rows
                             if r["pattern"] == pat and r["layer"] == layer and r["kind"] == kind)
                cov, acc = zip(*pts)
                ax.plot(100 * np.array(cov), 100 * np.array(acc), style, color=colors[layer], ms=4,
                        label=f"layer {layer} stuck-{kind}")
        ax.set_title(pat)
        ax.set_xlabel("defective pairs in the layer's array (%)")
    for ax in axes.ravel():
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (%)")
    axes[1, 0].set_ylabel("accuracy (%)")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle("Seed 000 Fig. 4: accuracy vs defect severity per layer (1797 images; solid stuck-off, dashed stuck-on)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig6(curves: dict, pats: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(pats), len(pats), figsize=(12, 10), sharex=True)
    for i, d1 in enumerate(pats):
        for j, d2 in enumerate(pats):
            ax = axes[i, j]
            for name, curve in curves[f"{d1}->{d2}"].items():
                ax.plot(np.arange(1, len(curve) + 1), curve, "-o", ms=3, label=name)
            ax.axhline(0, color="k", lw=0.7)
            ax.set_title(f"train {SHORT[d1]} -> test {SHORT[d2]}", fontsize=9)
            ax.grid(alpha=0.3)
            if i == len(pats) - 1:
                ax.set_xlabel("severity (size index)")
            if j == 0:
                ax.set_ylabel("improvement (pp)")
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("Seed 000 Fig. 6: improvement over the faulty circuit (paper protocol, base seed 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def on_bench(n_images: int) -> None:
    """The full 64-50-20-8-10 circuit on four arrays of the simulated bench (through the drivers), with a
    stuck-off circle (r = 0.3) on layer 3, read with and without a corrector trained on the circuit model."""
    import hil
    from hil.corrector.defects import DefectConfig
    from hil.networks.circuit import expand_pairs
    from protocols.inference import evaluate, plan_from_circuit, program_network

    x, y = load_digits_data()
    tr, te = paper_split(y, 0)
    net = train_digits_network(x[tr], y[tr], 0)
    circuit = NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=0.0))  # the bench's VMM: virtual ground
    plan = plan_from_circuit(circuit)
    cfg = DefectConfig("circle", 3, 2)
    codes = cfg.codes(circuit.shapes[3], DefectGeometry())
    path = os.path.join(OUT, "corrector_bench_l3.npy")
    np.save(path, expand_pairs(codes))
    arrays = plan.chip_arrays()
    arrays[3]["faults"] = {"kind": "file", "path": path}
    v_train = circuit.output_voltages(x[tr], {3: codes})
    corrector = OURS[0].fit(v_train, y[tr], 0, v_train, y[tr])
    images = te[:n_images]
    t0 = time.perf_counter()
    with hil.open_bench(chip={"arrays": arrays}) as bench:
        results = program_network(bench, plan)
        t_prog = time.perf_counter() - t0
        out = evaluate(bench, plan, x[images], y[images], corrector)
    model_v = circuit.output_voltages(x[images], {3: codes})
    res = {"defect": {"pattern": cfg.pattern, "layer": cfg.layer, "size": cfg.size(circuit.shapes[3], DefectGeometry()),
                      "kind": "off"},
           "n_images": len(images), "corrector": OURS[0].name, "corrector_params": OURS[0].n_params,
           "ispp": [r.summary() for r in results], "program_s": t_prog, "total_s": time.perf_counter() - t0,
           "bench_accuracy": out["accuracy"], "bench_accuracy_corrected": out["accuracy_corrected"],
           "model_accuracy": float(np.mean(np.argmax(model_v, 1) == y[images])),
           "model_accuracy_corrected": float(np.mean(corrector.predict(model_v) == y[images])),
           "bench_model_argmax_agreement": float(np.mean(np.argmax(model_v, 1) == np.argmax(out["voltages"], 1)))}
    with open(os.path.join(RESULTS, "corrector_bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


def _paper_specs() -> list:
    return [paper_mlp(10, 10), paper_mlp(1), OURS[0]]


def _clean_specs(quick: bool) -> list:
    scaled = replace(paper_mlp(10, 10), name="MLP(10,10) scaled+selected", standardise=True, train=OUR_TRAIN)
    return [paper_mlp(10, 10), paper_mlp(1), scaled] + ([OURS[0], OURS[3], LOGISTIC] if quick else OURS)


def paper_point(base_seed: int, r_in: float, kind: str) -> dict:
    """Sweep point: the paper protocol (Table I split) for one base-network seed.

    Trains the 1617/180 network of ``base_seed``, generates its 84-configuration dataset
    and trains the paper's correctors on it (corrector seed 0). Single-threaded BLAS, so
    the numbers do not depend on where the point runs.
    """
    with threadpool_limits(1):
        x, y = load_digits_data()
        tr, te = paper_split(y, base_seed)
        net = train_digits_network(x[tr], y[tr], base_seed)
        circuit = NeuromorphicCircuit(net, x[tr], CircuitParams(r_in=r_in))
        ds = generate(circuit, x, y, paper_configs(), DefectGeometry(kind=kind))
        t0 = time.perf_counter()
        run = paper_protocol(ds, _paper_specs(), seed=0, split_seed=base_seed)
        return {"run": run, "software_test_acc": net.accuracy(x[te], y[te]), "train_s": time.perf_counter() - t0}


def clean_point(base_seed: int, corrector_seeds: list[int], quick: bool, ceiling: bool, r_in: float,
                kind: str) -> dict:
    """Sweep point: the clean protocol for one base-network seed and its corrector seeds
    (the ceiling model too on request); single-threaded BLAS."""
    with threadpool_limits(1):
        data = clean_data(base_seed, CleanSetup(circuit=CircuitParams(r_in=r_in), geometry=DefectGeometry(kind=kind)))
        specs = _clean_specs(quick)
        runs, t_train = [], 0.0
        for cs in corrector_seeds:
            t0 = time.perf_counter()
            run = clean_protocol(data, specs, cs)
            if ceiling and cs == corrector_seeds[0]:
                ceil = clean_protocol(data, [CEILING], cs)
                run["ceiling"] = {d: ceil["corrected"][CEILING.name][d][d] for d in PATTERNS}
            t_train += time.perf_counter() - t0
            run["software_test_acc"] = data.software_test_acc
            run["circuit_test_acc"] = data.circuit_test_acc
            runs.append(run)
        return {"runs": runs, "dataset_s": data.dataset_s, "train_s": t_train}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one base seed, one corrector seed, fewer models")
    ap.add_argument("--r-in", type=float, default=CircuitParams().r_in, help="I-V stage input impedance, ohm")
    ap.add_argument("--kind", choices=("off", "on"), default="off", help="stuck kind of the corrector datasets")
    ap.add_argument("--bench", type=int, default=0, metavar="N",
                    help="instead: run the full circuit on the simulated bench for N test images (ISPP write first)")
    add_sweep_args(ap)
    args = ap.parse_args()
    if args.bench:
        os.makedirs(OUT, exist_ok=True)
        on_bench(args.bench)
        return
    os.makedirs(RESULTS, exist_ok=True)
    os.makedirs(OUT, exist_ok=True)
    base_seeds = (0,) if args.quick else (0, 1, 2)
    # clean protocol runs (base-network seed, corrector seed): every base seed, and a second
    # corrector seed on the first
    clean_pairs = [(0, 0)] if args.quick else [(0, 0), (0, 1), (1, 0), (2, 0)]
    cparams = CircuitParams(r_in=args.r_in)
    geom = DefectGeometry(kind=args.kind)
    t_train = 0.0
    t_start = time.perf_counter()

    # ---- base network, circuit, defect study, the 150,948-sample dataset (seed 0) ----
    x, y = load_digits_data()
    tr, te = paper_split(y, 0)
    net = train_digits_network(x[tr], y[tr], 0)
    circuit = NeuromorphicCircuit(net, x[tr], cparams)
    sw_acc, circ_acc = net.accuracy(x[te], y[te]), float(np.mean(circuit.predict(x[te]) == y[te]))
    t0, c0 = time.perf_counter(), time.process_time()
    ds = generate(circuit, x, y, paper_configs(), geom)
    dataset_s, dataset_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    ds_path = os.path.join(OUT, "corrector_dataset.h5")
    ds.save(ds_path)
    print(f"software net: {net.n_params} params, test accuracy {sw_acc:.4f} (180 images); "
          f"on the circuit {circ_acc:.4f}")
    print(f"dataset: {ds.n_samples} samples in {dataset_s:.2f} s (CPU {dataset_cpu_s:.2f} s) -> {ds_path}")
    study = defect_study(circuit, x, y, geom)
    fig4(study, os.path.join(RESULTS, "corrector_fig4.png"))
    print("\nFig. 4 table: accuracy (%) per pattern / layer over the 4 sizes, stuck-off | stuck-on [coverage %]")
    for pat in PATTERNS:
        for layer in range(4):
            sel = {k: [r for r in study if r["pattern"] == pat and r["layer"] == layer and r["kind"] == k]
                   for k in ("off", "on")}
            print(f"  {pat:18s} L{layer}: " + " ".join(f"{100 * r['accuracy']:5.1f}" for r in sel["off"]) + " | "
                  + " ".join(f"{100 * r['accuracy']:5.1f}" for r in sel["on"]) + "  ["
                  + " ".join(f"{100 * r['coverage']:.0f}" for r in sel["off"]) + "]")

    records: list[dict] = []

    # ---- paper protocol (Table I split), all base seeds ----
    paper_specs = _paper_specs()
    sweep_args = argparse.Namespace(scheduler=args.scheduler, workers=args.workers, resume=args.resume)
    paper_rows = run_points("corrector_paper", "benchmarks.corrector:paper_point",
                            [{"base_seed": s, "r_in": args.r_in, "kind": args.kind} for s in base_seeds], sweep_args)
    paper_runs = []
    for row in paper_rows:
        paper_runs.append({**row["run"], "software_test_acc": row["software_test_acc"]})
        t_train += row["train_s"]
    for spec in paper_specs:
        for pat in PATTERNS:
            f = [r["faulty"][pat] for r in paper_runs]
            c = [r["corrected"][spec.name][pat][pat] for r in paper_runs]
            records.append({"pattern": pat, "protocol": "paper", "model": spec.name, "params": spec.n_params,
                            "acc_faulty": _mean_std(f)[0], "acc_corrected": _mean_std(c)[0],
                            "acc_corrected_std": _mean_std(c)[1], "n_runs": len(c)})
    cross_paper = {d1: {d2: float(np.mean([100 * (r["corrected"]["MLP(10,10)"][d1][d2] - r["faulty"][d2])
                                           for r in paper_runs])) for d2 in PATTERNS} for d1 in PATTERNS}
    per_config = {pat: [[int(a), int(b), float(c), float(d)] for a, b, c, d in
                        paper_runs[0]["per_config"]["MLP(10,10)"][pat]] for pat in PATTERNS}

    # ---- Fig. 6 curves (paper protocol, seed 0) ----
    fig_pats = ["circle", "ring", "circle_complement"]
    fig_specs = [paper_mlp(1), paper_mlp(6), paper_mlp(10, 10)] + ([] if args.quick else [paper_mlp(32, 32)])
    fig_specs.append(OURS[0])
    t0 = time.perf_counter()
    curves = severity_curves(ds, fig_specs, [(a, b) for a in fig_pats for b in fig_pats])
    t_train += time.perf_counter() - t0
    fig6(curves, fig_pats, os.path.join(RESULTS, "corrector_fig6.png"))

    # ---- clean protocol ----
    clean_specs = _clean_specs(args.quick)
    names330 = [s.name for s in clean_specs if s in ours_within(330)]
    names120 = [s.name for s in clean_specs if s in ours_within(120)]
    bases = list(dict.fromkeys(b for b, _ in clean_pairs))
    clean_rows = run_points("corrector_clean", "benchmarks.corrector:clean_point",
                            [{"base_seed": b, "corrector_seeds": [c for b2, c in clean_pairs if b2 == b],
                              "quick": args.quick, "ceiling": not args.quick and b == clean_pairs[0][0],
                              "r_in": args.r_in, "kind": args.kind} for b in bases], sweep_args)
    clean_runs = []
    clean_dataset_s = []
    for row in clean_rows:
        clean_dataset_s.append(row["dataset_s"])
        t_train += row["train_s"]
        for run in row["runs"]:
            run["best330"] = select_best(run, names330)
            run["best120"] = select_best(run, names120)
            clean_runs.append(run)
    print(f"clean protocol: {len(clean_runs)} runs done ({time.perf_counter() - t_start:.0f} s)", flush=True)

    def clean_acc(run: dict, name: str, d1: str, d2: str | None = None) -> float:
        if name in ("best<=330", "best<=120"):
            name = run["best330" if name == "best<=330" else "best120"][d1]
        return run["corrected"][name][d1][d2 or d1]

    clean_models = [(sp.name, sp.n_params) for sp in clean_specs] + [("best<=330", 330), ("best<=120", 120)]
    for name, n_par in clean_models:
        for pat in PATTERNS:
            f = [r["faulty"][pat] for r in clean_runs]
            c = [clean_acc(r, name, pat) for r in clean_runs]
            rec = {"pattern": pat, "protocol": "clean", "model": name, "params": n_par,
                   "acc_faulty": _mean_std(f)[0], "acc_corrected": _mean_std(c)[0],
                   "acc_corrected_std": _mean_std(c)[1], "gain_pp_std": _mean_std(100 * (np.array(c) - f))[1],
                   "n_runs": len(c)}
            if name.startswith("best"):
                picks = [r["best330" if name == "best<=330" else "best120"][pat] for r in clean_runs]
                rec["selected"] = sorted(set(picks))
                rec["params"] = max(sp.n_params for sp in clean_specs if sp.name in picks)
            records.append(rec)
    ceiling = [r["ceiling"] for r in clean_runs if "ceiling" in r]
    if ceiling:
        for pat in PATTERNS:
            records.append({"pattern": pat, "protocol": "clean", "model": CEILING.name, "params": CEILING.n_params,
                            "acc_faulty": clean_runs[0]["faulty"][pat], "acc_corrected": ceiling[0][pat], "n_runs": 1})
    cross_clean = {d1: {d2: float(np.mean([100 * (r["corrected"]["MLP(10,10)"][d1][d2] - r["faulty"][d2])
                                           for r in clean_runs])) for d2 in PATTERNS} for d1 in PATTERNS}
    cross_clean_best = {d1: {d2: float(np.mean([100 * (clean_acc(r, "best<=330", d1, d2) - r["faulty"][d2])
                                                for r in clean_runs])) for d2 in PATTERNS} for d1 in PATTERNS}

    # ---- claims ----
    def rec(protocol: str, model: str, pat: str) -> dict:
        return next(r for r in records if r["protocol"] == protocol and r["model"] == model and r["pattern"] == pat)

    gain = {m: {p: 100 * (rec("clean", m, p)["acc_corrected"] - rec("clean", m, p)["acc_faulty"]) for p in PATTERNS}
            for m in ("MLP(10,10)", "best<=330", "best<=120")}
    paired = {}
    for name in ("best<=330", "best<=120", "MLP(10,10) scaled+selected"):
        diff = {p: [100 * (clean_acc(r, name, p) - clean_acc(r, "MLP(10,10)", p)) for r in clean_runs] for p in PATTERNS}
        paired[name] = {p: {"mean_pp": _mean_std(d)[0], "std_pp": _mean_std(d)[1],
                            "wins": int(sum(v > 0 for v in d)), "runs": len(d)} for p, d in diff.items()}
    claims = {
        "software_test_acc_ge_95": bool(sw_acc >= 0.95),
        "mlp1_worse_than_no_corrector_every_pattern_paper": all(
            rec("paper", "MLP(1,)", p)["acc_corrected"] < rec("paper", "MLP(1,)", p)["acc_faulty"] for p in PATTERNS),
        "mlp1_worse_than_no_corrector_every_pattern_clean": all(
            rec("clean", "MLP(1,)", p)["acc_corrected"] < rec("clean", "MLP(1,)", p)["acc_faulty"] for p in PATTERNS),
        "best330_beats_mlp10x10_every_pattern_clean": all(gain["best<=330"][p] > gain["MLP(10,10)"][p]
                                                          for p in PATTERNS),
        # keep >= 75 % of MLP(10,10)'s gain: gain_120 >= 0.75 gain_MLP (a negative MLP gain is kept trivially)
        "best120_keeps_75pct_of_mlp10x10_gain_patterns_clean": int(sum(
            gain["best<=120"][p] >= 0.75 * gain["MLP(10,10)"][p] for p in PATTERNS)),
        "best120_keeps_75pct_of_positive_mlp10x10_gain_patterns_clean": int(sum(
            gain["MLP(10,10)"][p] > 0 and gain["best<=120"][p] >= 0.75 * gain["MLP(10,10)"][p] for p in PATTERNS)),
    }
    result = {
        "dataset_s": dataset_s, "dataset_cpu_s": dataset_cpu_s, "train_s": t_train, "n_samples": ds.n_samples,
        "clean_dataset_s": clean_dataset_s,
        "settings": {"paper_base_seeds": list(base_seeds), "clean_runs_base_corrector_seed": clean_pairs, "r_in_ohm": cparams.r_in,
                     "stuck_kind": geom.kind, "radius_reference": geom.radius_reference,
                     "band_max_fraction": geom.band_max_fraction, "quick": args.quick},
        "software_test_acc": sw_acc, "circuit_test_acc": circ_acc,
        "records": records,
        "cross_defect_pp": {"paper": {"MLP(10,10)": cross_paper},
                            "clean": {"MLP(10,10)": cross_clean, "best<=330": cross_clean_best}},
        "same_defect_per_config_paper_mlp10x10": {"columns": ["size_index", "layer", "acc_faulty", "acc_corrected"],
                                                 **per_config},
        "paper_tables": {"same": {k: list(v) for k, v in PAPER_SAME.items()},
                         "cross": {f"{a}->{b}": list(v) for (a, b), v in PAPER_CROSS.items()}},
        "fig6_curves_pp": curves,
        "defect_study": study,
        "claims": claims,
        "clean_paired_vs_mlp10x10_pp": paired,
    }
    with open(os.path.join(RESULTS, "corrector.json"), "w") as f:
        json.dump(result, f, indent=1)
    _print_tables(records, cross_paper, cross_clean, claims, dataset_s, t_train)
    print("\nclean protocol, paired difference to MLP(10,10) (pp, mean +- std over runs, wins/runs):")
    for name, per in paired.items():
        print(f"  {name:28s}" + " ".join(f"{SHORT[p]} {v['mean_pp']:+.1f}+-{v['std_pp']:.1f} ({v['wins']}/{v['runs']})"
                                          for p, v in per.items()))
    print(f"total {time.perf_counter() - t_start:.0f} s")


def _print_tables(records: list[dict], cross_paper: dict, cross_clean: dict, claims: dict, dataset_s: float,
                  t_train: float) -> None:
    print("\nSame-defect accuracy (%), faulty -> corrected [gain pp], mean over runs")
    for protocol in ("paper", "clean"):
        models = list(dict.fromkeys(r["model"] for r in records if r["protocol"] == protocol))
        print(f"  protocol {protocol}:")
        print("    " + f"{'model':28s}{'params':>7s} " + " ".join(f"{SHORT[p]:>16s}" for p in PATTERNS))
        for m in models:
            rs = {r["pattern"]: r for r in records if r["protocol"] == protocol and r["model"] == m}
            cells = [f"{100 * rs[p]['acc_faulty']:4.1f}->{100 * rs[p]['acc_corrected']:4.1f}"
                     f"[{100 * (rs[p]['acc_corrected'] - rs[p]['acc_faulty']):+5.1f}]" for p in PATTERNS]
            print(f"    {m:28s}{rs[PATTERNS[0]]['params']:7d} " + " ".join(f"{c:>16s}" for c in cells))
    print("\nSame-defect MLP(10,10) gain (pp) vs seed 000 Table III:")
    for p in PATTERNS:
        g = {pr: next(100 * (r["acc_corrected"] - r["acc_faulty"]) for r in records
                      if r["protocol"] == pr and r["model"] == "MLP(10,10)" and r["pattern"] == p)
             for pr in ("paper", "clean")}
        lo, hi = PAPER_SAME[p]
        print(f"  {p:18s} paper-split {g['paper']:+6.1f}   clean {g['clean']:+6.1f}   seed 000: +{lo} to +{hi}")
    print("\nCross-defect MLP(10,10) gain (pp), rows = trained on, cols = tested on (paper split | clean)")
    print("    " + "".join(f"{SHORT[p]:>16s}" for p in PATTERNS))
    for d1 in PATTERNS:
        print(f"  {SHORT[d1]:8s}" + "".join(f"{cross_paper[d1][d2]:+7.1f}|{cross_clean[d1][d2]:+6.1f}  "
                                             for d2 in PATTERNS))
    print("  seed 000 Table IV: ring<->circle +15..25, rows<->cols +10..20, c-comp<->circle < +10, checker<->any < +5")
    print(f"\nclaims: {json.dumps(claims)}")
    print(f"dataset_s {dataset_s:.2f}  train_s {t_train:.1f}")


if __name__ == "__main__":
    main()
