"""Whatever a careless user types: one-line errors, no traceback, no silent wrong result, no pulse
beyond the limits (hypothesis fuzzing of the command-line inputs)."""
import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.bench import simulated_bench_file
from hil.cli import cli
from hil.runstore import read_run
from simulated_bench.array import SimulatedArray

N = 4
LIMITS = {"v_line_max": 3.0, "v_gate_max": 5.0}
FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from(["nan", "inf", "-inf", "1e300", "-1e300", "0", "-0", "1e-300", "abc", "", "0x10", "1,5"]),
    st.integers(-10**12, 10**12),
)


@pytest.fixture(scope="module")
def bench_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": N, "cols": N}], "faults": {"kind": "none"}})
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


@pytest.fixture(autouse=True)
def pulses_within_limits(monkeypatch):
    """Every pulse any command sends, checked against the bench limits where it reaches the chip."""
    seen = []
    real = SimulatedArray.apply_lines

    def apply_lines(self, v_wl, v_bl, v_sl, width):
        seen.append((np.max(np.abs(v_bl)), np.max(np.abs(v_sl)), np.max(v_wl)))
        return real(self, v_wl, v_bl, v_sl, width)

    monkeypatch.setattr(SimulatedArray, "apply_lines", apply_lines)
    yield
    for bl, sl, wl in seen:
        assert bl <= LIMITS["v_line_max"] + 1e-9 and sl <= LIMITS["v_line_max"] + 1e-9
        assert wl <= LIMITS["v_gate_max"] + 1e-9


def invoke(*args):
    res = CliRunner().invoke(cli, [str(a) for a in args])
    if res.exit_code != 0:
        assert isinstance(res.exception, SystemExit), f"{args}: {res.exception!r}\n{res.output}"
        assert "Traceback" not in res.output
        assert res.output.strip().splitlines()[-1].startswith("Error:"), res.output
    else:
        assert res.exception is None
    return res


def as_float(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@FUZZ
@given(tol=numbers)
def test_program_tolerance(tmp_path_factory, bench_path, tol):
    tmp = tmp_path_factory.mktemp("p")
    np.save(tmp / "t.npy", np.full((N, N), 100e-6))
    res = invoke("program", "--bench", bench_path, "--targets", tmp / "t.npy", "--out", tmp / "p.h5", "--tol", tol,
                 "--passes", 1, "--max-pulses", 3, "--no-progress")
    v = as_float(tol)
    assert (res.exit_code == 0) == (v is not None and 0 < v < 1), res.output
    if res.exit_code == 0:
        assert read_run(tmp / "p.h5")["parameters"]["params"]["tol_rel"] == v
    else:
        assert not (tmp / "p.h5").exists()  # a refused run leaves nothing behind


@FUZZ
@given(v_max=numbers, gate=numbers)
def test_form_ramp_and_gate(tmp_path_factory, bench_path, v_max, gate):
    out = tmp_path_factory.mktemp("f") / "f.h5"
    res = invoke("form", "--bench", bench_path, "--out", out, "--v-max", v_max, "--gate", gate, "--rows", "0",
                 "--no-progress")
    a, g = as_float(v_max), as_float(gate)
    ok = a is not None and g is not None and 1.0 <= a <= LIMITS["v_line_max"] and 0 < g <= LIMITS["v_gate_max"]
    assert (res.exit_code == 0) == ok, res.output
    assert out.exists() == ok


region_text = st.text(alphabet="0123456789:,- x", max_size=8)


@FUZZ
@given(rows=region_text, cols=region_text, v_read=numbers)
def test_read_region_and_voltage(tmp_path_factory, bench_path, rows, cols, v_read):
    out = tmp_path_factory.mktemp("r") / "r.h5"
    res = invoke("read", "--bench", bench_path, "--out", out, "--rows", rows, "--cols", cols, "--v-read", v_read,
                 "--no-progress")
    v = as_float(v_read)
    if v is None or v == 0 or abs(v) > LIMITS["v_line_max"]:
        assert res.exit_code != 0
    if res.exit_code == 0:
        run = read_run(out)
        for key in ("rows", "cols"):
            idx = np.asarray(run["parameters"][key])
            assert idx.size and np.unique(idx).size == idx.size and idx.min() >= 0 and idx.max() < N


targets = st.tuples(st.sampled_from([(N, N), (N, N), (2, N), (N,), (N, N, 1), (N + 1, N)]),
                    st.sampled_from([100e-6, np.nan, -1e-6, 0.0, np.inf, 1e300, 2e-3, 1e-9]))


@FUZZ
@given(spec=targets, where=st.integers(0, N * N - 1))
def test_program_targets(tmp_path_factory, bench_path, spec, where):
    shape, odd = spec
    tmp = tmp_path_factory.mktemp("t")
    t = np.full(shape, 150e-6)
    t.flat[where % t.size] = odd
    np.save(tmp / "t.npy", t)
    res = invoke("program", "--bench", bench_path, "--targets", tmp / "t.npy", "--out", tmp / "p.h5",
                 "--passes", 1, "--max-pulses", 3, "--no-progress")
    ok = shape == (N, N) and (np.isnan(odd) or 10e-6 <= odd <= 1e-3)
    assert (res.exit_code == 0) == ok, res.output


fault_values = st.sampled_from([0, 1, 2, 3, -1, 0.6, 257, np.nan, 4])


@FUZZ
@given(shape=st.sampled_from([(N, N), (N, N), (2 * N, 2 * N), (N,)]), odd=fault_values,
       where=st.integers(0, 4 * N * N - 1))
def test_program_fault_maps(tmp_path_factory, bench_path, shape, odd, where):
    tmp = tmp_path_factory.mktemp("fm")
    codes = np.zeros(shape)
    codes.flat[where % codes.size] = odd
    np.save(tmp / "codes.npy", codes)
    np.save(tmp / "t.npy", np.full((N, N), 150e-6))
    res = invoke("program", "--bench", bench_path, "--targets", tmp / "t.npy", "--faults", tmp / "codes.npy",
                 "--out", tmp / "p.h5", "--passes", 1, "--max-pulses", 3, "--no-progress")
    ok = shape == (N, N) and odd in (0, 1, 2, 3)
    assert (res.exit_code == 0) == ok, res.output
    if ok:
        status = read_run(tmp / "p.h5")["cells"]["status"]
        assert (status == 4).sum() == (codes != 0).sum()  # cells the map calls faulty are left alone


@FUZZ
@given(tol=numbers, g_max=numbers, k=st.one_of(st.integers(-5, 30_000_000), st.sampled_from(["x", "1.5", ""])))
def test_map_numbers(tmp_path_factory, tol, g_max, k):
    tmp = tmp_path_factory.mktemp("m")
    np.save(tmp / "m.npy", np.random.default_rng(0).normal(size=(6, 5)))
    res = invoke("map", tmp / "m.npy", "--k", k, "--tol", tol, "--g-max", g_max, "--fault-rate", 0.05,
                 "--out", tmp / "r.json")
    t, g = as_float(tol), as_float(g_max)
    ki = k if isinstance(k, int) else None
    ok = t is not None and 0 <= t <= 1 and g is not None and 0 < g <= 1 and ki is not None and 5 <= ki <= 1_000_000
    if not ok:
        assert res.exit_code != 0 and not (tmp / "r.json").exists()
    else:
        assert res.exit_code == 0 or "rank" in res.output  # k below the rank of the faulty fit is refused too


def test_bench_file_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["limits"]["v_line_max"] = -1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    res = invoke("read", "--bench", bad, "--out", tmp_path / "r.h5")
    assert res.exit_code != 0 and len(res.output.strip().splitlines()) <= 2 and "v_line_max" in res.output
    assert not (tmp_path / "r.h5").exists()
    res = CliRunner().invoke(cli, ["--debug", "read", "--bench", str(bad), "--out", str(tmp_path / "r.h5")])
    assert res.exit_code != 0 and res.exception is not None and not isinstance(res.exception, SystemExit)


def test_a_refused_form_leaves_no_file_and_the_corrected_command_runs(tmp_path, bench_path):
    out = tmp_path / "f.h5"
    res = invoke("form", "--bench", bench_path, "--out", out, "--v-max", 10, "--no-progress")
    assert res.exit_code == 1 and "lower v_max" in res.output and not out.exists()
    res = invoke("form", "--bench", bench_path, "--out", out, "--v-max", 2.5, "--no-progress")
    assert res.exit_code == 0 and read_run(out)["status"] == "complete"
    res = invoke("form", "--bench", bench_path, "--out", out, "--v-max", 2.0, "--no-progress")
    assert res.exit_code == 1 and "--overwrite" in res.output  # another experiment in the same file
    assert invoke("form", "--bench", bench_path, "--out", out, "--v-max", 2.0, "--overwrite",
                  "--no-progress").exit_code == 0


def test_exported_codes_with_unreliable_cells_make_a_simulated_bench(tmp_path):
    codes = np.zeros((N, N), np.int8)
    codes[0, 1], codes[2, 2], codes[3, 0] = 1, 2, 3
    np.save(tmp_path / "codes.npy", codes)
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": N, "cols": N}],
                         "faults": {"kind": "file", "path": str(tmp_path / "codes.npy")}})
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(spec))
    res = invoke("scan", "--bench", tmp_path / "b.yaml", "--out", tmp_path / "f.h5", "--no-progress")
    assert res.exit_code == 0, res.output
