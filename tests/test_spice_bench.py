"""The bench file's engine switch: the same protocol-level calls on the numpy and the SPICE chip."""
import numpy as np
import pytest

import hil
from hil.benchfile import BenchFileError
from simulated_bench.crossbar import WireParams
from simulated_bench.spice.engine import SpiceArray
from simulated_bench.spice.runner import ngspice_available

V_READ, V_GATE = 0.2, 3.0
QUIET = {"d2d_rate_sigma": 0.0, "d2d_bound_sigma": 0.0, "c2c_rate_sigma": 0.0, "read_noise_scale": 0.0}



def chip(engine, **extra):
    return {"arrays": [{"name": "A", "rows": 3, "cols": 4}], "engine": engine, "variation": QUIET, **extra}


def program_and_read(engine, **extra):
    with hil.open_bench(chip=chip(engine, **extra)) as bench:
        bench.pulse_row(1, [0, 2], 2.0, 1e-7, 1.5)  # SET two cells
        bench.pulse_row(2, [3], 2.0, 1e-7, 2.0)  # and one more at another gate voltage
        bench.pulse_row(1, [2], -2.0, 1e-8, 3.0)  # and partly RESET one of them
        g = bench.read_array(V_READ, V_GATE)
        arr = bench.sim.arrays["A"]
        return g, arr.state.copy(), type(arr)


@pytest.mark.spice
@pytest.mark.skipif(not ngspice_available(), reason="ngspice is not installed (CI installs it)")
def test_protocol_read_runs_on_either_engine():
    g_np, s_np, cls_np = program_and_read("numpy")
    g_sp, s_sp, cls_sp = program_and_read("spice")
    assert cls_sp is SpiceArray and not issubclass(cls_np, SpiceArray)
    moved = np.abs(s_np - 1.7e-9) > 1e-12
    assert {tuple(x) for x in np.argwhere(moved)} == {(1, 0), (1, 2), (2, 3)}
    assert s_np[1, 0] < s_np[1, 2] < 1.7e-9  # the RESET cell went part of the way back
    np.testing.assert_allclose(s_sp, s_np, rtol=0, atol=1e-3 * 1.5e-9)
    np.testing.assert_allclose(g_sp, g_np, rtol=1e-3)
    assert g_np[1, 0] > 20 * g_np[0, 0]  # the map shows the programmed cells


def test_bench_file_wires_reach_the_chip():
    with hil.open_bench(chip={"arrays": [{"name": "A", "rows": 4, "cols": 4}],
                              "wires": {"r_bl": 2.0, "r_sl": 2.0}}) as bench:
        assert bench.sim.arrays["A"].wires == WireParams(0.0, 2.0, 2.0)
    with hil.open_bench(chip={"arrays": [{"name": "A", "rows": 4, "cols": 4}]}) as bench:
        assert bench.sim.arrays["A"].wires is None


@pytest.mark.parametrize("bad", [{"engine": "hspice"}, {"wires": {"r_bl": -1.0}}, {"wires": {"r_xx": 1.0}}])
def test_bench_file_rejects_bad_engine_or_wires(bad):
    with pytest.raises(BenchFileError):
        hil.open_bench(chip={"arrays": [{"name": "A", "rows": 4, "cols": 4}], **bad})
