"""Hard limits before anything is sent; outputs off on errors, timeouts, Ctrl-C and exit."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hil
from hil import LimitError
from hil.bench import BenchConnectionError, served_bench_data, served_simulation
from hil.benchfile import load_bench_file

SMALL = {"arrays": [{"name": "A", "rows": 8, "cols": 8}]}


@pytest.fixture
def bench():
    with hil.open_bench(chip=SMALL) as b:
        yield b


def all_outputs_off(sim):
    e = sim.emulators
    return (not e["smu"].output and not any(ch.output for ch in e["pulser"].channels.values())
            and e["board"].route == "OFF" and e["board"].wl == 0.0)


def recording_all(sim):
    """Record every line the transports deliver to the instruments."""
    records = {}
    for name, emu in sim.emulators.items():
        emu.transcript = []
        records[name] = emu.transcript
    return records


@pytest.mark.parametrize("call", [
    lambda b: b.read_row(0, None, 3.5, 3.0),  # read voltage beyond v_line_max
    lambda b: b.read_row(0, None, 0.2, 5.5),  # gate beyond v_gate_max
    lambda b: b.pulse_row(0, [1], 3.2, 1e-6, 1.5),
    lambda b: b.pulse_row(0, [1], -3.2, 1e-6, 4.5),
    lambda b: b.pulse_row(0, [1], 1.0, 0.1, 1.5),  # longer than pulse_width_max
    lambda b: b.pulse_row(0, [1], 1.0, 1e-9, 1.5),  # shorter than the 81160A can make
    lambda b: b.pulse_row(0, [1], float("nan"), 1e-6, 1.5),
    lambda b: b.vmm(np.full(8, 3.5), 3.0),
])
def test_limit_violation_is_refused_with_nothing_sent(bench, call):
    records = recording_all(bench.sim)
    with pytest.raises(LimitError):
        call(bench)
    assert records == {name: [] for name in records}
    assert bench.sim.arrays["A"].pulse_count == 0


@given(v=st.floats(allow_nan=True, allow_infinity=True), g=st.floats(-10, 10), w=st.floats(0, 1))
@settings(max_examples=200, deadline=None)
def test_limits_check_exactly_the_declared_bounds(v, g, w):
    limits = hil.Limits(v_line_max=3.0, v_gate_max=5.0, i_compliance=1e-3, pulse_width_max=1e-2,
                        pulse_width_min=1.5e-9)
    for check, ok in ((lambda: limits.check_line(v), np.isfinite(v) and abs(v) <= 3.0),
                      (lambda: limits.check_gate(g), abs(g) <= 5.0),
                      (lambda: limits.check_width(w), 1.5e-9 <= w <= 1e-2)):
        if ok:
            check()
        else:
            with pytest.raises(LimitError):
                check()


def test_error_inside_with_block_switches_outputs_off():
    with pytest.raises(ZeroDivisionError):
        with hil.open_bench(chip=SMALL) as b:
            b.read_row(0, None, 0.2, 3.0)
            b.pulse_row(0, [0], 1.0, 1e-6, 1.5)
            sim = b.sim
            assert not all_outputs_off(sim)
            1 / 0
    assert all_outputs_off(sim)


def test_ctrl_c_inside_with_block_switches_outputs_off():
    with pytest.raises(KeyboardInterrupt):
        with hil.open_bench(chip=SMALL) as b:
            sim = b.sim
            b.read_row(0, None, 0.2, 3.0)
            b.pulse_row(0, [0], 1.0, 1e-6, 1.5)
            raise KeyboardInterrupt
    assert all_outputs_off(sim)


def test_silent_instrument_times_out_clearly_and_outputs_go_off(bench):
    bench.read_row(0, None, 0.2, 3.0)
    bench.pulse_row(0, [0], 1.0, 1e-6, 1.5)
    board = bench.sim.emulators["board"]
    board.handle_line = lambda line: None  # the board hangs: no reply at all
    with pytest.raises(BenchConnectionError, match=r"board \(rram-hil-ab64 at hilsim://.*did not answer.*no reply"):
        bench.read_row(1, None, 0.2, 3.0)
    e = bench.sim.emulators
    assert not e["smu"].output and not e["pulser"].channels[1].output
    del board.handle_line  # the board answers again, so the fixture can close the bench


def test_refused_query_times_out_in_process_as_over_visa(bench):
    from pyvisa.errors import VisaIOError

    smu = bench.selector.station.drivers["smu"]
    smu.write(":SOUR:FUNC CURR")
    with pytest.raises(VisaIOError, match="VI_ERROR_TMO"):
        smu.current  # the simulated bench sources volts only: -221 and no reply, like the instrument
    assert [int(code) for code, _ in smu.check_errors()] == [-221]


def test_interrupted_script_switches_outputs_off_at_exit(tmp_path):
    """A lab script killed by Ctrl-C outside any with-block still leaves the instruments off."""
    spec = load_bench_file(hil.bench.simulated_bench_file(), {"chip": SMALL})
    sim, served = served_simulation(spec)
    try:
        import yaml
        bench_file = tmp_path / "served.yaml"
        bench_file.write_text(yaml.safe_dump(served_bench_data(spec, served)))
        script = textwrap.dedent(f"""
            import hil
            bench = hil.open_bench({str(bench_file)!r})
            bench.read_row(0, None, 0.2, 3.0)
            bench.pulse_row(0, [0], 1.0, 1e-6, 1.5)
            raise KeyboardInterrupt
        """)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert "KeyboardInterrupt" in proc.stderr
        assert sim.arrays["A"].pulse_count == 1  # the script did drive the chip
        assert all_outputs_off(sim)
    finally:
        served.close()


def test_unreachable_instrument_fails_to_open_with_its_name(tmp_path):
    import yaml

    data = yaml.safe_load(open("examples/benches/real_lab.yaml").read())
    data["instruments"]["board"]["address"] = "socket://127.0.0.1:9"  # nothing listens on the discard port
    data["instruments"] = {"board": data["instruments"]["board"], **{k: v for k, v in data["instruments"].items()
                                                                     if k != "board"}}
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(BenchConnectionError, match=r"cannot open board \(rram-hil-ab64 at socket://127.0.0.1:9\)"):
        hil.open_bench(path)


def test_whole_plan_is_checked_against_limits_and_instrument_ranges(bench):
    records = recording_all(bench.sim)
    bench.check_plan(pulse_amplitudes=[0.8, 1.2, -2.0], pulse_widths=[1e-6, 1e-4], gate_voltages=[1.5, 4.5],
                     read_voltages=[0.2])
    for plan, match in (({"pulse_amplitudes": [1.0, 2.0, 3.4]}, "pulse amplitude 3.4 V exceeds .*v_line_max"),
                        ({"pulse_amplitudes": [0.02, 1.0]}, "0.02 V is below the 81160A's 50 mV minimum"),
                        ({"pulse_widths": [1e-6, 0.5]}, "pulse width 0.5 s exceeds .*pulse_width_max"),
                        ({"gate_voltages": [1.0, 6.0]}, "gate voltage 6 V exceeds .*v_gate_max"),
                        ({"read_voltages": [float("nan")]}, "read voltage in the plan is not a finite number")):
        with pytest.raises(LimitError, match=match):
            bench.check_plan(**plan)
    assert records == {name: [] for name in records}  # nothing was sent


def test_smu_pulser_plan_respects_the_smus_pulse_widths():
    with hil.open_bench("examples/benches/simulated_b2900.yaml", chip=SMALL) as b:
        with pytest.raises(LimitError, match=r"pulse width 1e-05 s is below pulse_width_min = 5e-05 s"):
            b.check_plan(pulse_widths=[1e-5])
        b.check_plan(pulse_widths=[1e-4, 1e-3], pulse_amplitudes=[1.0, -2.0])
