"""The factorization frontier (issue 17): high fault rates, other matrices, tiled sizes.

Writes benchmarks/results/factorize_frontier.json:
``{"records": [{"case", "matrix", "m", "n", "k", "fault", "rate", "seed", "one_minus_cos",
"cpu_s", "exact_possible", "certificate"}], "growth": {...}, "chip_128": {...}, "summary": {...}}``.
``exact_possible`` is true when a fit reached the bound (1e-10), false when
``hil.factorization.feasibility`` proves that no exact fit exists (its argument is in
``certificate``), null otherwise. ``cpu_s`` is process CPU time of the solve (all tiles),
after the compiled kernel is loaded, so machine load does not inflate it.

The run is incremental: every record is written as it finishes and a rerun skips the
records already in the file (``--redo`` recomputes the selected cases).

    nice -n 10 python3 -m benchmarks.factorize_frontier                 # every case, 10 seeds
    nice -n 10 python3 -m benchmarks.factorize_frontier --cases dft_off_high --seeds 3
    nice -n 10 python3 -m benchmarks.factorize_frontier --cases growth --rates 0.39 --sizes 32,64,128
    nice -n 10 python3 -m benchmarks.factorize_frontier --chip          # hil program-matrix, n = 128
    nice -n 10 python3 -m benchmarks.factorize_frontier --low-rank-signs --seeds 3  # see low_rank_signs.py
    nice -n 10 python3 -m benchmarks.factorize_frontier --sign-choice --seeds 3     # see sign_choice.py
    nice -n 10 python3 -m benchmarks.factorize_frontier --orthant 60 --out ...      # hil/factorization/orthant.py
    python3 -m benchmarks.factorize_frontier --list

Runs split by case write part files (``--out benchmarks/results/frontier_<part>.json``);
``--merge`` folds them into the main file, the newer record per key (case, matrix, m, n,
k, fault, rate, seed; by its ``finished`` time) winning, and recomputes growth and summary:

    python3 -m benchmarks.factorize_frontier --merge benchmarks/results/frontier_i17*.json

Tiled cases (n > 64, k = 64 per tile) map each tile in the layout ``map_tiled`` chooses
(``layout`` in the record: strided groups for Re(DFT), see hil/factorization/tiling.py).
"""
from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

from hil.factorization import (SolverParams, factorize, map_tiled, random_blocked_codes,  # noqa: E402
                               random_fault_codes, random_tile_codes)
from hil.factorization.feasibility import exact_fit_obstruction  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "factorize_frontier.json"
BOUND = 1e-10
TILE = 64  # one array: 64 x 64

# case -> list of (matrix, m, n, k, fault, rate) and the bound the issue asks for
CASES: dict[str, dict] = {
    "dft_off_high": {"bound": BOUND, "specs": [("re_dft", 64, 64, 64, "off", r)
                                               for r in (0.40, 0.42, 0.44, 0.45, 0.46, 0.48, 0.50)]},
    "dft_on_box": {"bound": BOUND, "specs": [("re_dft", 64, 64, 64, "on", r)
                                             for r in (0.30, 0.35, 0.40, 0.45, 0.50)]},
    "matrices_30": {"bound": BOUND, "specs": [("random_dense", 64, 64, 64, "off", 0.30),
                                              ("hadamard", 64, 64, 64, "off", 0.30),
                                              ("rect_dense", 48, 64, 48, "off", 0.30),
                                              ("rect_dense", 64, 40, 40, "off", 0.30)]},
    "low_rank_30": {"bound": 1e-8, "specs": [("low_rank", 64, 64, 32, "off", 0.30),
                                             ("low_rank", 32, 32, 16, "off", 0.30)]},
    # the remedy ``hil map`` names when k = rank(M) is proved short (row cone) or the count
    # is below 1: more inner lines (low rank: feasibility.k_for_margin at 70 % working)
    "rect_more_k_30": {"bound": BOUND, "specs": [("rect_dense", 48, 64, 56, "off", 0.30),
                                                 ("rect_dense", 64, 40, 48, "off", 0.30)]},
    # the other orientation of each rectangular case, at k = min(m, n)
    "rect_other_30": {"bound": BOUND, "specs": [("rect_dense", 64, 48, 48, "off", 0.30),
                                                ("rect_dense", 40, 64, 40, "off", 0.30)]},
    # the k ``hil map`` names (feasibility.k_suggestion: HINT_MARGIN free devices per needed
    # one at 70 % working) for the four rectangular shapes
    "rect_hint_k_30": {"bound": BOUND, "specs": [("rect_dense", 48, 64, 50, "off", 0.30),
                                                 ("rect_dense", 64, 40, 45, "off", 0.30),
                                                 ("rect_dense", 64, 48, 50, "off", 0.30),
                                                 ("rect_dense", 40, 64, 45, "off", 0.30)]},
    # one line fewer than that: where the measured onset of fits lies (HINT_MARGIN's basis)
    "rect_onset_k_30": {"bound": BOUND, "specs": [("rect_dense", 48, 64, 49, "off", 0.30),
                                                  ("rect_dense", 64, 40, 44, "off", 0.30),
                                                  ("rect_dense", 64, 48, 49, "off", 0.30),
                                                  ("rect_dense", 40, 64, 44, "off", 0.30)]},
    "low_rank_more_k_30": {"bound": 1e-8, "specs": [("low_rank", 64, 64, 55, "off", 0.30),
                                                    ("low_rank", 32, 32, 28, "off", 0.30)]},
    # where fits with one sign per row stop: the same low-rank targets at k = n/2 and lower
    # fault rates, and at 30 % with k between n/2 and the k of low_rank_more_k_30 (the
    # freedom count ``feasibility.freedom_margin`` crosses 1 near 24 % at k = n/2 and
    # between k = 39 and 40 / 20 and 21 at 30 %)
    "low_rank_rates": {"bound": 1e-8, "specs": [("low_rank", n, n, n // 2, "off", r)
                                                for n in (64, 32) for r in (0.20, 0.24, 0.27)]},
    "low_rank_k_30": {"bound": 1e-8, "specs": [("low_rank", 64, 64, k, "off", 0.30) for k in (36, 38, 39, 40, 44, 48)]
                      + [("low_rank", 32, 32, k, "off", 0.30) for k in (18, 20, 21, 22, 24)]},
    "growth": {"bound": BOUND, "specs": [("re_dft", n, n, min(n, TILE), "off", r)
                                         for r in (0.18, 0.39) for n in (32, 64, 128, 256)]},
    # the same arrays, one joint fit with k = n cut into 64 x 64 array blocks (n > 64 only:
    # below that both mappings are one array pair, and the growth fit reuses those records)
    "growth_blocked": {"bound": BOUND, "specs": [("re_dft", n, n, n, "off", r)
                                                 for r in (0.18, 0.39) for n in (128, 256)]},
}


def make_matrix(name: str, m: int, n: int, seed: int) -> np.ndarray:
    """The target: Re(DFT n), Hadamard, dense Gaussian, or rank n/4 (fixed per seed)."""
    rng = np.random.default_rng([seed, m, n, 17])
    if name == "re_dft":
        j = np.arange(n)
        return np.cos(2 * np.pi * np.outer(j, j) / n)
    if name == "hadamard":
        return scipy.linalg.hadamard(n).astype(float)
    if name in ("random_dense", "rect_dense"):
        return rng.standard_normal((m, n))
    if name == "low_rank":
        r = min(m, n) // 4
        return rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    raise ValueError(f"unknown matrix {name!r}")


def key(rec: dict) -> tuple:
    """A record's identity: a rerun or a part file's record with the same key replaces it."""
    return (rec["case"], rec["matrix"], rec["m"], rec["n"], rec["k"], rec["fault"], rec["rate"], rec["seed"])


def warm_up() -> None:
    """Load the compiled kernel (untimed)."""
    rng = np.random.default_rng(0)
    m_ = make_matrix("re_dft", 8, 8, 0)
    factorize(m_, random_fault_codes(8, 8, 0.1, 0, rng), random_fault_codes(8, 8, 0.1, 0, rng), rng)


def solve(task: dict) -> dict:
    """One trial: fault maps from the seed, the solver, the certificate check."""
    matrix, m, n, k, fault, rate, seed = (task[f] for f in ("matrix", "m", "n", "k", "fault", "rate", "seed"))
    m_ = make_matrix(matrix, m, n, seed)
    off, on = (rate, 0.0) if fault == "off" else (0.0, rate)
    rng = np.random.default_rng([seed, int(round(rate * 1000)), k, m, n, 0 if fault == "off" else 1])
    params = SolverParams(tol=task["bound"])
    if task["case"] == "growth_blocked":
        ca, cb = random_blocked_codes(m, k, n, (TILE, TILE), off, on, rng)
        t0 = time.process_time()
        res = factorize(m_, ca, cb, rng, params=params)
        cpu, omc = time.process_time() - t0, res.one_minus_cos
        pairs = [(m_, ca, cb)]
        extra = {"iterations": res.iterations, "attempts": res.attempts, "mapping": "blocked",
                 "arrays": 2 * (n // TILE) ** 2}
    elif m <= TILE and n <= TILE:
        ca, cb = random_fault_codes(m, k, off, on, rng), random_fault_codes(k, n, off, on, rng)
        t0 = time.process_time()
        res = factorize(m_, ca, cb, rng, params=params)
        cpu, omc = time.process_time() - t0, res.one_minus_cos
        pairs = [(m_, ca, cb)]
        extra = {"iterations": res.iterations, "attempts": res.attempts}
    else:
        codes = random_tile_codes((m, n), k, (TILE, TILE), off, on, rng)
        t0 = time.process_time()
        res = map_tiled(m_, k, (TILE, TILE), codes, seed, params=params, workers=1)
        cpu, omc = time.process_time() - t0, res.one_minus_cos(m_)
        pairs = [(res.block(m_, ix), *codes[ix]) for ix in codes]
        verdict = res.exactness(m_, task["bound"])[0]  # each tile's, as program-matrix prints it
        extra = {"mapping": "tiles", "layout": list(res.layout), "arrays": 2 * len(codes), "tiles": len(codes),
                 "tile_worst_one_minus_cos": max(f.one_minus_cos for f in res.tiles.values()),
                 "tile_verdicts": {v: verdict[f"{v}_tiles"] for v in ("exact", "impossible", "unknown")}}
    cert = None
    for blk, ca, cb in pairs:
        cert = exact_fit_obstruction(blk, ca, cb)
        if cert is not None:
            break
    exact = True if omc <= task["bound"] else (False if cert is not None else None)
    rec = {k_: task[k_] for k_ in ("case", "matrix", "m", "n", "k", "fault", "rate", "seed")}
    rec.update(finished=time.time(), one_minus_cos=omc, cpu_s=cpu, exact_possible=exact, bound=task["bound"],
               certificate=None if cert is None else {"kind": cert.kind, "reason": cert.reason, "exact": cert.exact,
                                                       "omc_lower_bound": cert.omc_lower_bound},
               **extra)
    return rec


#: the tall rectangular trials the column-orthant sign search (``--orthant``) is measured on
ORTHANT_SPECS = [("rect_dense", 64, 40, 40, "off", 0.30), ("rect_dense", 64, 48, 48, "off", 0.30)]


def orthant_trial(task: dict) -> dict:
    """The column-orthant MILP (hil/factorization/orthant.py) on one trial's masks, for at most
    ``task["seconds"]``; when it decides nothing, whether the solver's own row signs pass the
    relaxation (a floating-point LP per column: then this relaxation cannot prove the trial)."""
    from hil.factorization.orthant import OrthantVerdict, column_orthant, orthant_sign_search, signs_pass

    matrix, m, n, k, fault, rate, seed = (task[f] for f in ("matrix", "m", "n", "k", "fault", "rate", "seed"))
    m_ = make_matrix(matrix, m, n, seed)
    rng = np.random.default_rng([seed, int(round(rate * 1000)), k, m, n, 0])  # as in ``solve``
    ca, cb = random_fault_codes(m, k, rate, 0.0, rng), random_fault_codes(k, n, rate, 0.0, rng)
    t0 = time.process_time()
    verdict = column_orthant(m_, ca, cb, task["seconds"], log=True) if task["seconds"] > 0 else OrthantVerdict("not_run")
    rec = {k_: task[k_] for k_ in ("matrix", "m", "n", "k", "fault", "rate", "seed")}
    rec.update(status=verdict.status, cpu_s=time.process_time() - t0, wall_s=verdict.seconds,
               time_limit_s=task["seconds"], nodes=verdict.nodes, explored_pct=verdict.explored_pct,
               columns=verdict.columns, message=verdict.message)
    if verdict.status != "infeasible":
        fit = factorize(m_, ca, cb, rng, params=SolverParams(tol=BOUND))
        rec.update(fit_one_minus_cos=fit.one_minus_cos, fit_signs_pass=signs_pass(m_, ca, cb, fit.sign_a))
        if not rec["fit_signs_pass"]:  # search from the fit's signs for ones that pass
            given, signs, met = orthant_sign_search(m_, ca, cb, fit.sign_a, rng)
            rec.update(fit_columns_met=given, search_columns_met=met, search_signs_pass=signs_pass(m_, ca, cb, signs))
    return rec


def run_orthant(seconds: float, seeds: int, workers: int) -> dict:
    """``--orthant``: the sign search on ``ORTHANT_SPECS``, one record per trial."""
    tasks = [{"matrix": mt, "m": m, "n": n, "k": k, "fault": f, "rate": r, "seed": seed, "seconds": seconds}
             for (mt, m, n, k, f, r) in ORTHANT_SPECS for seed in range(seeds)]
    trials = []
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
        for fut in as_completed([pool.submit(orthant_trial, t) for t in tasks]):
            rec = fut.result()
            trials.append(rec)
            print(f"orthant {rec['m']}x{rec['n']} k={rec['k']} seed {rec['seed']}: {rec['status']} "
                  f"{rec['wall_s']:.1f} s, {rec['nodes']} nodes; fit's signs pass: {rec.get('fit_signs_pass')}",
                  flush=True)
    trials.sort(key=lambda r: (r["m"], r["n"], r["k"], r["seed"]))
    return {"finished": time.time(), "time_limit_s": seconds, "trials": trials}


def orthant_key(seconds: float) -> str:
    """Where ``--orthant`` stores its trials: the MILP runs, or (SECONDS = 0) the fit's signs
    and the local sign search alone."""
    return "orthant_milp" if seconds > 0 else "orthant_search"


def _init_worker() -> None:
    warm_up()


def load(path: Path) -> dict:
    """The results file at ``path`` (empty if there is none); another file there is refused."""
    if not path.exists():
        return {"records": []}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path} is not a factorize_frontier results file (no records list); "
                         "give --out a new or a results file")
    return data


@contextmanager
def _locked(path: Path):
    """Hold the results file's lock: runs and merges may overlap (e.g. ``--chip`` beside a
    solver run, helpers merging part files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(path: Path, data: dict) -> dict:
    """Recompute growth and summary, then replace the file in one step (a kill mid-write
    leaves the previous file, never half a file)."""
    data["records"] = sorted(data["records"], key=key)
    data["growth"], data["summary"] = growth(data["records"]), summary(data["records"])
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(data, f, indent=1)
        tmp = f.name
    os.replace(tmp, path)
    return data


def save(path: Path, data: dict) -> dict:
    """Merge ``data`` into the file and write it atomically; returns what was written.

    Under the lock the file is re-read and ``data`` folded in (``_fold``: the newer record
    per key wins), so a long run holding records it loaded at its start never replaces
    what another run redid meanwhile; ``data["_dropped"]`` keys (``--redo``) lose their
    records on disk.
    """
    with _locked(path):
        return _write(path, _fold(load(path), data, data.get("_dropped", set())))


def _newer(new: dict, old: dict) -> bool:
    """Whether ``new`` replaces ``old``: a later ``finished`` time wins; a record without one
    (written before records carried it) is older than any with one; a tie goes to ``new``."""
    return new.get("finished", float("-inf")) >= old.get("finished", float("-inf"))


def _fold(into: dict, data: dict, dropped=frozenset()) -> dict:
    """``into`` with ``data``'s records and entries (``chip_128``) merged in, the newer per key."""
    by_key = {key(r): r for r in into["records"] if key(r) not in dropped}
    for r in data["records"]:
        if key(r) not in by_key or _newer(r, by_key[key(r)]):
            by_key[key(r)] = r
    for name, value in data.items():
        if name in ("records", "growth", "summary", "_dropped"):
            continue
        if not (isinstance(value, dict) and isinstance(into.get(name), dict) and not _newer(value, into[name])):
            into[name] = value
    into["records"] = list(by_key.values())
    return into


def merge_parts(path: Path, parts: list[Path]) -> dict:
    """Merge part files (``--out`` of runs by case) into ``path``; the newer record per key wins.

    Other entries with a ``finished`` time (``chip_128``) go the same way; growth and
    summary are recomputed from the merged records.
    """
    with _locked(path):
        merged = load(path)
        for part in parts:
            if not Path(part).exists():
                raise FileNotFoundError(f"no part file {part}")
            merged = _fold(merged, load(Path(part)))
        return _write(path, merged)


def growth(records: list[dict]) -> dict:
    """Least-squares slope of log(median CPU) against log(n), n = 32..256, per fault rate.

    ``exponent_18``/``exponent_39``: independent 64 x 64 tiles (k = 64 each) beyond n = 64;
    ``blocked_exponent_*``: one joint fit with k = n over the same arrays. n <= 64 is one
    array pair either way.
    """
    out = {}
    for rate in (0.18, 0.39):
        pct = int(round(rate * 100))
        for prefix, big_case in (("", "growth"), ("blocked_", "growth_blocked")):
            pts = []
            for n in (32, 64, 128, 256):
                case = "growth" if n <= TILE else big_case
                cpu = [r["cpu_s"] for r in records if r["case"] == case and r["rate"] == rate and r["n"] == n]
                if cpu:
                    pts.append((n, float(np.median(cpu))))
            out[f"{prefix}exponent_{pct}"] = float(np.polyfit(np.log([p[0] for p in pts]),
                                                             np.log([p[1] for p in pts]), 1)[0]) \
                if len(pts) >= 2 else None
            out[f"{prefix}median_cpu_s_{pct}"] = {str(n): c for n, c in pts}
    return out


def summary(records: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(f"{r['matrix']}_{r['m']}x{r['n']}_k{r['k']}_{r['fault']}_{r['rate']:.2f}", []).append(r)
    out = {}
    for name, rs in sorted(groups.items()):
        omc = np.array([r["one_minus_cos"] for r in rs])
        cpu = np.array([r["cpu_s"] for r in rs])
        out[name] = {"trials": len(rs), "bound": rs[0]["bound"], "meet_bound": int((omc <= rs[0]["bound"]).sum()),
                     "certified_impossible": sum(r["exact_possible"] is False for r in rs),
                     "unresolved": sum(r["exact_possible"] is None for r in rs),
                     "median_one_minus_cos": float(np.median(omc)), "worst_one_minus_cos": float(omc.max()),
                     "median_cpu_s": float(np.median(cpu)), "max_cpu_s": float(cpu.max())}
    return out


def chip_128(seed: int) -> dict:
    """``hil program-matrix`` of Re(DFT128) on a simulated chip of eight 64x64 arrays (2 x 2 tiles)."""
    import h5py
    import yaml
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "hil/benches/factorization.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        bench = Path(tmp) / "bench.yaml"
        bench.write_text(yaml.safe_dump(raw))
        np.save(Path(tmp) / "m.npy", make_matrix("re_dft", 128, 128, 0))
        out = Path(tmp) / "r.h5"
        cmd = [sys.executable, "-m", "hil", "program-matrix", str(Path(tmp) / "m.npy"), "--bench", str(bench),
               "--k", "64", "--seed", str(seed), "--out", str(out)]
        t0, cpu0 = time.time(), _children_cpu()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        cpu = _children_cpu() - cpu0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        with h5py.File(out) as f:
            a = f.attrs  # "scale" is one value per tile: read only the scalar figures
            rec = {"r2": float(a["r2"]), "devices": int(a["devices"]), "one_minus_cos": float(a["one_minus_cos"]),
                   "one_minus_cos_readback": float(a["one_minus_cos_readback"]), "pulses": int(a["pulses"]),
                   "tiles": int(a["tiles"]), "layout": [str(v) for v in a.get("layout", ["contiguous"] * 2)],
                   "exact_fit": json.loads(a["exact_fit"])}  # the per-tile verdicts program-matrix printed
    command = ["hil", "program-matrix", "re_dft128.npy", "--bench", "hil/benches/factorization.yaml"] + cmd[7:11]
    return {**rec, "finished": time.time(), "wall_s": time.time() - t0, "cpu_s": cpu,
            "command": " ".join(command), "stdout": proc.stdout.strip()}


def _children_cpu() -> float:
    """CPU seconds (user + system) of finished child processes."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated cases (see --list)")
    ap.add_argument("--rates", default=None, help="only these fault rates, comma-separated")
    ap.add_argument("--sizes", default=None, help="only these n (columns), comma-separated")
    ap.add_argument("--seeds", type=int, default=10, help="trials per case spec")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--redo", action="store_true", help="recompute selected records already in the file")
    ap.add_argument("--chip", action="store_true", help="also run hil program-matrix at n = 128")
    ap.add_argument("--out", type=Path, default=OUT, help="results file (a part file when several runs share the work)")
    ap.add_argument("--merge", type=Path, nargs="+", metavar="PART.json", default=None,
                    help="merge these part files' records into --out (the newer record per key wins), "
                         "recompute growth and summary, and run nothing")
    ap.add_argument("--low-rank-signs", action="store_true",
                    help="run only benchmarks/low_rank_signs.py (free-signed, one-sign and planted fits on the "
                         "low-rank masks) and store it as low_rank_signs in --out")
    ap.add_argument("--orthant", type=float, default=None, metavar="SECONDS",
                    help="run only the column-orthant sign search (hil/factorization/orthant.py) on the tall "
                         "rectangular trials: the MILP for at most SECONDS each (stored as orthant_milp in --out), "
                         "or with SECONDS = 0 only the fit's signs and the local sign search (orthant_search)")
    ap.add_argument("--sign-choice", action="store_true",
                    help="run only benchmarks/sign_choice.py (homotopy, flip search, alternating and "
                         "guided sign choices against the solver on the trials it misses) and store it as "
                         "sign_choice in --out")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for name, c in CASES.items():
            print(name, c["bound"], c["specs"])
        return
    try:  # before any run: a foreign --out would be found only when the results are written
        load(args.out)
    except (ValueError, json.JSONDecodeError) as e:
        ap.error(f"--out: {e}")
    if args.merge:
        missing = [str(p) for p in args.merge if not p.is_file()]
        if missing:
            ap.error(f"no such part file: {', '.join(missing)}")
        report(merge_parts(args.out, args.merge))
        return
    if args.low_rank_signs:
        from benchmarks import low_rank_signs
        report(save(args.out, {"records": [], "low_rank_signs": low_rank_signs.run(make_matrix, seeds=args.seeds)}))
        return
    if args.orthant is not None:
        if not args.orthant >= 0:
            ap.error("--orthant needs SECONDS >= 0")
        report(save(args.out, {"records": [], orthant_key(args.orthant): run_orthant(args.orthant, args.seeds,
                                                                                      args.workers)}))
        return
    if args.sign_choice:
        from benchmarks import sign_choice
        report(save(args.out, {"records": [], "sign_choice": sign_choice.run(make_matrix, seeds=args.seeds)}))
        return
    names = [c for c in args.cases.split(",") if c]
    unknown = set(names) - set(CASES)
    if unknown:
        ap.error(f"unknown cases {sorted(unknown)}; known: {', '.join(CASES)}")
    rates = None if args.rates is None else {round(float(r), 4) for r in args.rates.split(",")}
    sizes = None if args.sizes is None else {int(v) for v in args.sizes.split(",")}
    data = load(args.out)
    tasks = []
    for name in names:
        for (matrix, m, n, k, fault, rate) in CASES[name]["specs"]:
            if (rates is not None and round(rate, 4) not in rates) or (sizes is not None and n not in sizes):
                continue
            for seed in range(args.seeds):
                tasks.append({"case": name, "matrix": matrix, "m": m, "n": n, "k": k, "fault": fault,
                              "rate": rate, "seed": seed, "bound": CASES[name]["bound"]})
    done = {key(r) for r in data["records"]}
    if args.redo:
        redo = {key(t) for t in tasks}
        data["records"] = [r for r in data["records"] if key(r) not in redo]
        data["_dropped"] = redo
    else:
        tasks = [t for t in tasks if key(t) not in done]
    print(f"{len(tasks)} trials to run ({len(data['records'])} records kept)", flush=True)
    t0 = time.time()
    if tasks:
        with ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool:
            futures = [pool.submit(solve, t) for t in tasks]
            for i, fut in enumerate(as_completed(futures), 1):
                rec = fut.result()
                data["records"].append(rec)
                save(args.out, data)
                print(f"[{i}/{len(tasks)} {time.time() - t0:.0f}s] {rec['matrix']} {rec['m']}x{rec['n']} "
                      f"k={rec['k']} {rec['fault']} {rec['rate']:.2f} seed {rec['seed']}: 1-cos "
                      f"{rec['one_minus_cos']:.2e} cpu {rec['cpu_s']:.2f} s exact={rec['exact_possible']}",
                      flush=True)
    if args.chip:
        data["chip_128"] = chip_128(seed=0)
    report(save(args.out, data))


def report(data: dict) -> None:
    """Print the summary per case spec, the growth fit and the chip figures."""
    for name, s in data["summary"].items():
        print(f"{name:40s} {s['meet_bound']:2d}/{s['trials']} <= {s['bound']:.0e}  "
              f"certified-impossible {s['certified_impossible']}  median {s['median_one_minus_cos']:.1e}  "
              f"worst {s['worst_one_minus_cos']:.1e}  cpu median {s['median_cpu_s']:.2f} s max {s['max_cpu_s']:.2f} s")
    print("growth", json.dumps(data["growth"]))
    for name in ("orthant_milp", "orthant_search"):
        for r in data.get(name, {}).get("trials", []):
            print(f"{name} {r['m']}x{r['n']} k={r['k']} seed {r['seed']}: {r['status']} in {r['wall_s']:.1f} s "
                  f"(limit {r['time_limit_s']:g} s), {r.get('nodes')} nodes, {r.get('explored_pct')} % explored; "
                  f"fit's signs pass: {r.get('fit_signs_pass')}; searched signs meet "
                  f"{r.get('search_columns_met')} of {r['k']} columns (from {r.get('fit_columns_met')}), "
                  f"pass: {r.get('search_signs_pass')}")
    if "chip_128" in data:
        chip = {k: v for k, v in data["chip_128"].items() if k not in ("stdout", "exact_fit")}
        verdict = data["chip_128"].get("exact_fit")  # program-matrix's per-tile verdicts (absent before session 6)
        if verdict:
            chip["exact_fit"] = {k: v for k, v in verdict.items() if k != "tiles"}
        print("chip_128", json.dumps(chip))


if __name__ == "__main__":
    main()
