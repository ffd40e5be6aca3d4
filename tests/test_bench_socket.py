"""The simulated bench over TCP: pyvisa-py / pyserial socket:// clients, hil sim serve."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import pyvisa

import hil
from hil.bench import BenchConnectionError, build_bench, served_bench_data, served_simulation
from hil.benchfile import load_bench_file, parse_bench

CHIP32 = {"arrays": [{"name": "A", "rows": 32, "cols": 32}], "initial_state": "off"}
QUIET32 = {**CHIP32, "variation": {"read_noise_scale": 0.0}}


def programmed(bench):
    for r in range(bench.rows):
        bench.pulse_row(r, list(range(r % 4, bench.cols, 4)), 2.0, 1e-6, 1.5)
    return bench


def test_read_32x32_over_socket_matches_truth_and_inprocess():
    with programmed(hil.open_bench(chip=QUIET32, transport="socket")) as sock:
        g_sock = sock.read_array(0.2, 3.0)
        arr = sock.sim.arrays["A"]
        truth = np.stack([arr.read_row(r, None, 0.2, 3.0, noisy=False) for r in range(32)]) / 0.2
    with programmed(hil.open_bench(chip=QUIET32)) as inproc:
        g_in = inproc.read_array(0.2, 3.0)
    assert np.array_equal(g_sock, g_in)  # same bytes, same chip: identical maps
    np.testing.assert_allclose(g_sock, truth, rtol=1e-6)
    assert truth.max() / truth.min() > 20


def test_read_32x32_over_socket_with_noise_is_within_read_noise():
    with programmed(hil.open_bench(chip=CHIP32, transport="socket")) as bench:
        g = bench.read_array(0.2, 3.0)
        arr = bench.sim.arrays["A"]
        truth = np.stack([arr.read_row(r, None, 0.2, 3.0, noisy=False) for r in range(32)]) / 0.2
        sigma = arr.model.read_noise_rel(arr.true_conductance())
    assert np.all(np.abs(g / truth - 1) < 6 * sigma)


def test_any_visa_client_can_query_the_served_instruments():
    spec = load_bench_file(hil.bench.simulated_bench_file())
    sim, served = served_simulation(spec)
    try:
        rm = pyvisa.ResourceManager("@py")
        smu = rm.open_resource(served.address("smu"), read_termination="\n", write_termination="\n", timeout=2000)
        assert smu.query("*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
        smu.write(":BOGUS 1")
        assert smu.query("SYST:ERR?").startswith("-113")
        smu.close()
        rm.close()
        assert {srv.server_address[0] for srv in served.servers.values()} == {"127.0.0.1"}
    finally:
        served.close()


def test_dropped_connection_raises_and_switches_the_others_off():
    spec = load_bench_file(hil.bench.simulated_bench_file(), {"chip": {"arrays": [{"name": "A", "rows": 8, "cols": 8}]}})
    sim, served = served_simulation(spec)
    try:
        bench = build_bench(parse_bench(served_bench_data(spec, served)))
        bench.read_row(0, None, 0.2, 3.0)
        bench.pulse_row(0, [1], 1.0, 1e-6, 1.5)
        assert sim.emulators["pulser"].channels[1].output and sim.emulators["smu"].output
        served.servers["board"].close()  # the board's cable is pulled
        with pytest.raises(BenchConnectionError, match="board"):
            bench.read_row(1, None, 0.2, 3.0)
        assert not sim.emulators["pulser"].channels[1].output
        assert not sim.emulators["smu"].output
        with pytest.raises(BenchConnectionError, match=r"board .* stopped answering earlier"):
            bench.read_row(1, None, 0.2, 3.0)  # nothing more is sent to an instrument given up on
        bench.close()  # the failure was reported once; closing does not try the board again
    finally:
        served.close()


def test_hil_sim_serve_prints_resources_and_stops_on_interrupt(tmp_path):
    out = tmp_path / "served.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "sim", "serve", "--bench-out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        lines = [proc.stdout.readline().split() for _ in range(3)]
        assert [(n, m) for n, m, _ in lines] == [("smu", "keithley2450"), ("pulser", "keysight81160a"),
                                                 ("board", "rram-hil-ab64")]
        assert lines[0][2].startswith("TCPIP0::127.0.0.1::") and lines[0][2].endswith("::SOCKET")
        assert lines[2][2].startswith("socket://127.0.0.1:")
        assert out.exists()  # written before the resources are printed
        with hil.open_bench(out) as bench:  # a plain bench file: the served chip looks like hardware
            assert bench.sim is None
            g = bench.read_row(0, [0, 1], 0.2, 3.0)
            assert np.all((g > 1e-6) & (g < 1e-4))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
