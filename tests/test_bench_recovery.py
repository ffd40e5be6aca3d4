"""After kill -9 the next open makes every instrument safe and says so; one bench, one
process; a hung or dead instrument ends in one error that names it, after one attempt
per instrument to switch outputs off."""
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import pytest
import yaml

import hil
from hil.bench import (BenchBusyError, BenchConnectionError, UncleanShutdownWarning, build_bench,
                       served_bench_data, served_simulation, simulated_bench_file)
from hil.benchfile import load_bench_file, parse_bench

SMALL = {"arrays": [{"name": "A", "rows": 4, "cols": 4}]}


def outputs_off(sim):
    e = sim.emulators
    return (not e["smu"].output and not any(ch.output for ch in e["pulser"].channels.values())
            and e["board"].route == "OFF" and e["board"].wl == 0.0)


@pytest.fixture
def served(tmp_path):
    """A served simulated bench and a bench file (no chip section) that opens it as a lab bench."""
    spec = load_bench_file(simulated_bench_file(), {"chip": SMALL})
    sim, servers = served_simulation(spec)
    data = served_bench_data(spec, servers)
    for entry in data["instruments"].values():
        entry["timeout"] = 0.3  # s: a silent instrument is noticed quickly
    path = tmp_path / "served.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    yield sim, servers, path
    servers.close()


def test_kill_9_then_next_open_makes_everything_safe_and_says_so(served):
    sim, _, path = served
    script = textwrap.dedent(f"""
        import os, signal, hil
        bench = hil.open_bench({str(path)!r})
        bench.read_row(0, None, 0.2, 3.0)
        bench.pulse_row(0, [0], 1.0, 1e-6, 1.5)
        bench.gate.set_gate(2.0)
        bench.selector.select(1, [2], "bl")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": os.getcwd()},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert sim.emulators["smu"].output and sim.emulators["pulser"].channels[1].output  # left driving
    assert sim.emulators["board"].route == "BL" and sim.emulators["board"].wl == 2.0
    with pytest.warns(UncleanShutdownWarning, match=rf"previous session \(pid {proc.pid} .*ended without closing"):
        bench = hil.open_bench(path)
    assert outputs_off(sim)  # before the caller could send anything
    assert bench.unclean_previous.pid == proc.pid
    bench.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UncleanShutdownWarning)  # a clean close leaves nothing to report
        hil.open_bench(path).close()


def test_a_bench_open_elsewhere_is_refused(served):
    _, _, path = served
    with hil.open_bench(path):
        with pytest.raises(BenchBusyError, match=rf"is open by pid {os.getpid()}"):
            hil.open_bench(path)
    hil.open_bench(path).close()  # closed: free again


def test_hung_instrument_one_error_naming_it_and_one_off_attempt_each(served):
    sim, _, path = served
    board = sim.emulators["board"]
    with pytest.raises(BenchConnectionError) as err:
        with hil.open_bench(path) as bench:
            bench.read_row(0, None, 0.2, 3.0)
            bench.pulse_row(0, [0], 1.0, 1e-6, 1.5)
            board.transcript = []
            board.handle_line = lambda line: None  # the board hangs: it reads but never answers
            bench.read_row(1, None, 0.2, 3.0)
    text = str(err.value)
    assert text.startswith(f"board (rram-hil-ab64 at socket://127.0.0.1:") and "(timeout 0.3 s)" in text
    # the read's settings and its MEAS? go out in one transfer: the read is what hung
    assert "did not answer while sensing 4 bit lines" in text
    assert "outputs switched off on smu, pulser" in text and "could not reach board" in text
    # exactly the command it hung on and ONE safe-state attempt; closing the bench sent nothing more
    assert board.transcript == ["ROW 1", "COL 0-3", "WL 3.0000", "ROUTE READ", "MEAS?", "ROUTE OFF"]
    e = sim.emulators
    assert not e["smu"].output and not e["pulser"].channels[1].output
    del board.handle_line


def test_dead_instrument_names_what_it_was_doing(served):
    sim, servers, path = served
    bench = hil.open_bench(path)
    bench.read_row(0, None, 0.2, 3.0)
    bench.pulse_row(0, [1], 1.0, 1e-6, 1.5)
    servers.servers["pulser"].close()  # the generator is switched off at the wall
    with pytest.raises(BenchConnectionError, match=r"pulser \(keysight81160a at .*\) did not answer while firing a "
                                                   r"1 V, 2e-06 s pulse .*outputs switched off on smu, board; could not reach pulser"):
        bench.pulse_row(0, [1], 1.0, 2e-6, 1.5)
    assert not sim.emulators["smu"].output and sim.emulators["board"].route == "OFF"
    with pytest.raises(BenchConnectionError, match="stopped answering earlier"):
        bench.pulse_row(0, [1], 1.0, 2e-6, 1.5)
    bench.close()
