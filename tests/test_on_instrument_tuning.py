"""Write-and-verify and scans run by the instrument (2636B + 707B over TSP-Link) through the bench and
the protocols: the same rule as the host's ISPP state machine, limits checked before anything is sent,
honest write-ahead records, and a TSP tune call that hostile input cannot crash."""
import dataclasses

import numpy as np
import pytest
import yaml

import hil
from drivers.errors import InstrumentError
from hil.bench import build_bench
from hil.benchfile import parse_bench
from hil.roles import TUNE_CONVERGED, LimitError
from hil.runstore import read_run
from protocols.ispp import CUTE_ISPP, STANFORD_ISPP, program
from protocols.runner import Interrupted
from protocols.scan import scan

MATRIX = "examples/benches/simulated_matrix.yaml"
QUIET = {"read_noise_scale": 0.0, "c2c_rate_sigma": 0.0}


def matrix_bench(link=True, **chip):
    """The example 2636B + 81160A + 707B bench; without ``link`` the 707B is off the TSP-Link (host loop)."""
    data = yaml.safe_load(open(MATRIX).read())
    data["chip"].update(variation=QUIET, **chip)
    if not link:
        del data["wiring"]["matrix"]["tsplink_node"]
    return build_bench(parse_bench(data))


def targets(shape, seed=1):
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(15e-6), np.log(150e-6), shape))


def test_host_and_instrument_reach_the_same_outcome_on_a_seeded_chip(tmp_path):
    """Same chip, same targets, same ISPPParams: the instrument's loop and the host's state machine
    make the same decisions cell by cell (noise-free chip: the outcome is deterministic)."""
    t = targets((2, 8))
    runs = {}
    for on in (True, False):
        with matrix_bench(faults={"kind": "random", "rate_off": 0.1, "seed": 4}) as bench:
            before = bench.sim.clock.snapshot()
            res = program(bench, t, rows=[0, 1], cols=range(8), on_instrument=on, out=str(tmp_path / f"{on}.h5"))
            runs[on] = (res, bench.sim.clock.since(before)["round_trips"])
    (inst, rt_inst), (host, rt_host) = runs[True], runs[False]
    np.testing.assert_array_equal(inst.status, host.status)
    np.testing.assert_array_equal(inst.pulses, host.pulses)
    np.testing.assert_array_equal(inst.reversals, host.reversals)
    # host reads arrive with the instrument's print precision (format.asciiprecision = 6), the script's are full
    np.testing.assert_allclose(inst.g_final, host.g_final, rtol=1e-5)
    assert (inst.status == TUNE_CONVERGED).sum() >= 12 and (inst.status != TUNE_CONVERGED).any()  # stuck cells
    assert rt_inst < rt_host
    # the run file holds every pulse the instrument reported, per cell, and every tune call returned
    run = read_run(tmp_path / "True.h5")
    pulses = run["tables"]["pulses"]
    prog = pulses[pulses["phase"] == b"program"]
    counts = np.zeros((2, 8), int)
    np.add.at(counts, (prog["row"], prog["col"]), 1)
    np.testing.assert_array_equal(counts, inst.pulses)
    assert pulses["delivered"].all() and run["tables"]["tunes"]["returned"].all()
    assert set(np.unique(run["tables"]["tunes"]["row"])) == {0, 1}


def test_tune_row_checks_limits_and_the_smus_widths_before_sending():
    with matrix_bench() as bench:
        smu = bench.sim.emulators["smu"]
        rule = CUTE_ISPP.tune_rule()
        assert bench.can_tune_on_instrument and bench.can_tune(rule)
        assert not bench.can_tune(STANFORD_ISPP.tune_rule())  # 1 us pulses: below what the 2636B times
        hot = dataclasses.replace(rule, set_amps=rule.set_amps[:-1] + (3.5,))
        deep = dataclasses.replace(rule, reset_gates=(-3.5,) * len(rule.reset_gates))  # gate - amp < -v_gate_max
        with smu.recording() as sent:
            for bad in (hot, deep, STANFORD_ISPP.tune_rule()):
                with pytest.raises(LimitError):
                    bench.tune_row(0, [0, 1], [50e-6, 60e-6], bad, 10)
            with pytest.raises(ValueError):
                bench.tune_row(0, [0, 1], [np.nan, 60e-6], rule, 10)
            for budget in (-1, 10**9, np.nan, 2.5):  # 10**9: beyond the SMU's 10 000 pulses per cell and call
                with pytest.raises((ValueError, LimitError)):
                    bench.tune_row(0, [0, 1], [50e-6, 60e-6], rule, budget)
            with pytest.raises(ValueError):
                bench.tune_row(0, [0], [50e-6], rule, 10, start_set=[10**6])
            assert sent == []
        res = bench.tune_row(0, [3], [80e-6], rule, 60)
        assert res.status[0] == TUNE_CONVERGED and abs(res.g_final[0] / 80e-6 - 1) <= CUTE_ISPP.tol_rel
        log = res.log[0]
        assert log["polarity"][-1] == 0 and (log["polarity"] != 0).sum() == res.pulses[0]
    with hil.open_bench() as board:  # the board bench: every step from the host
        assert not board.can_tune_on_instrument and not board.can_tune(CUTE_ISPP.tune_rule())
        with pytest.raises(RuntimeError):
            board.tune_row(0, [0], [50e-6], CUTE_ISPP.tune_rule(), 10)


def test_an_interrupted_tune_call_is_on_record_and_the_run_resumes(tmp_path, monkeypatch):
    out = str(tmp_path / "p.h5")
    t = targets((3, 4), seed=2)
    with matrix_bench() as bench:
        real, calls = bench.tune_row, []

        def cut_short(*args, **kw):
            calls.append(real(*args, **kw))  # the instrument did the work ...
            if len(calls) == 2:
                raise Interrupted("SIGTERM")  # ... but the host never saw the reply
            return calls[-1]
        monkeypatch.setattr(bench, "tune_row", cut_short)
        with pytest.raises(Interrupted):
            program(bench, t, rows=[0, 1, 2], cols=range(4), out=out)
        mid = read_run(out)
        assert mid["status"] == "interrupted"
        tunes = mid["tables"]["tunes"]
        open_calls = tunes[~tunes["returned"]]
        assert set(open_calls["row"]) == {1} and (open_calls["max_pulses"] == CUTE_ISPP.max_pulses).all()
        assert not (mid["tables"]["pulses"]["row"] == 1).any()  # unknown pulses are not invented ...
        sent = calls[1].pulses.sum()
        assert sent <= open_calls["max_pulses"].sum()  # ... and the open record bounds them
        monkeypatch.setattr(bench, "tune_row", real)
        res = program(bench, t, rows=[0, 1, 2], cols=range(4), out=out)
    final = read_run(out)
    assert final["status"] == "complete" and final["tables"]["tunes"]["returned"].sum() == tunes["returned"].sum() + 8
    assert (res.status == TUNE_CONVERGED).all() and res.in_band().all()


def test_scan_on_the_instrument_finds_the_same_faults_as_from_the_host(tmp_path):
    chip = {"faults": {"kind": "random", "rate_off": 0.15, "rate_on": 0.1, "seed": 7}}
    maps = {}
    for link in (True, False):
        with matrix_bench(link, **chip) as bench:
            before = bench.sim.clock.snapshot()
            maps[link] = (scan(bench, rows=range(4), out=str(tmp_path / f"{link}.h5")),
                          bench.sim.clock.since(before)["round_trips"])
            truth = bench.sim.arrays["A"].fault_codes[:4]
    (inst, rt_inst), (host, rt_host) = maps[True], maps[False]
    np.testing.assert_array_equal(inst.faultmap.codes, host.faultmap.codes)
    for key in ("g_initial", "g_after_set", "g_after_reset"):
        np.testing.assert_allclose(inst.faultmap.evidence[key], host.faultmap.evidence[key], rtol=1e-5)
    assert ((inst.faultmap.codes[:4] != 0) == (truth != 0)).all()
    assert rt_inst < rt_host / 4
    pulses = read_run(tmp_path / "True.h5")["tables"]["pulses"]
    assert pulses.size == 4 * 16 * 2 and pulses["delivered"].all()  # a SET and a RESET per cell, on record


def test_hostile_tune_calls_are_refused_by_the_instrument_and_it_keeps_answering():
    """What arrives on a served 2636B's socket: NaN, huge budgets, out-of-range drives, missing ladders."""
    with matrix_bench() as bench:
        smu = bench.sim.emulators["smu"]
        bench.tune_row(0, [0], [50e-6], CUTE_ISPP.tune_rule(), 5)  # loads the script and the ladders
        state = bench.sim.arrays["A"].state.copy()

        def send(line):
            return smu.feed(line.encode() + b"\n").decode()
        rule = ("{tol_rel=0.03,tol_abs=0,accept_fraction=1,n_read=1,v_read=0.05,read_gate=3,width_up=0.001,"
                "width_down=0.001,step_growth=2,max_step_rungs=32,slow_fraction=0.3,stall_pulses=3,stall_rel=0.05,"
                "response_rel=0.5,read_noise_rel=0,confirm_z=2,max_verify_reads=6}")
        call = 'hilTuneRun(smua, smub, 2, {"1A01,1C33,1D17"}, %s, %s, {0}, {0}, {1}, {0}, %s)'
        attacks = [call % ("{0/0}", "{5}", rule), call % ("{1e-5}", "{1e12}", rule),
                   call % ("{1e-5}", "{0/0}", rule), call % ("{1e-5}", "{5}", rule.replace("n_read=1", "n_read=1e9")),
                   call % ("{1e-5}", "{5}", rule.replace("v_read=0.05", "v_read=0/0")),
                   call % ("{1e-5}", "{5}", rule.replace("width_up=0.001", "width_up=1e6")),
                   call % ("{1e-5}", "{5}", "nil"),
                   "hilTuneLadder(1, {500, 600}, {1, 2}) " + call % ("{1e-5}", "{5}", rule),
                   "hilTuneLadder(1, {0/0, 1}, {1, 2}) " + call % ("{1e-5}", "{5}", rule),
                   "smua.source.levelv = 0/0"]
        for attack in attacks:
            assert send(attack) == ""  # no reply: the call was refused ...
            assert int(float(send("print(errorqueue.count)"))) >= 1  # ... with an error-queue entry
            send("errorqueue.clear()")
            assert send("*IDN?").startswith("Keithley")
        np.testing.assert_array_equal(bench.sim.arrays["A"].state, state)  # no pulse reached the chip


def test_the_simulated_bench_finds_emulators_through_the_plugin_registry():
    from hil.instruments import PLUGINS, register, unregister
    from hil.instruments.keithley2450 import Plugin as K2450
    from simulated_bench import NO_VARIATION, SimulatedArray
    from simulated_bench.instruments import SimulatedInstruments, WiringError, set_model_resolver
    from simulated_bench.instruments.keithley2450 import Keithley2450Emulator

    @register
    class LabSmu(K2450):
        model = "lab-smu-9000"
    try:
        sim = SimulatedInstruments({"A": SimulatedArray(2, 2, variation=NO_VARIATION)}, {"smu": "lab-smu-9000"}, {})
        assert type(sim.emulators["smu"]) is Keithley2450Emulator
        with pytest.raises(WiringError, match="keithley245"):  # the registry's close match is named
            SimulatedInstruments({"A": SimulatedArray(2, 2)}, {"smu": "keithley2451"}, {})
    finally:
        unregister("lab-smu-9000")
    assert "lab-smu-9000" not in {p.model for p in PLUGINS}
    import hil.instruments as registry

    set_model_resolver(None)
    try:
        with pytest.raises(WiringError, match="pass the emulator class"):
            SimulatedInstruments({"A": SimulatedArray(2, 2)}, {"smu": "keithley2450"}, {})
        SimulatedInstruments({"A": SimulatedArray(2, 2)}, {"smu": Keithley2450Emulator}, {})  # classes need none
    finally:
        set_model_resolver(registry.emulator_of)


def test_row_reads_on_the_instrument_bring_each_cells_trip_status_in_the_same_call():
    from protocols.read import read_cells

    with matrix_bench(link=True) as bench:
        arr = bench.sim.arrays["A"]
        truth = arr.read_row(0, None, 0.05, 3.0, noisy=False) / 0.05  # A -> S
        smu = bench.sim.emulators["smu"]
        with smu.recording() as sent:
            g, n = read_cells(bench, 0, np.arange(16), 0.05, 3.0)
        assert n == 1 and sum(line.startswith("hilSweepRun(") for line in sent) == 1  # the row in one call
        np.testing.assert_allclose(g, truth, rtol=1e-6)
    data = yaml.safe_load(open(MATRIX).read())
    data["chip"]["variation"] = QUIET
    data["limits"]["i_compliance"] = 1e-5
    with build_bench(parse_bench(data)) as bench:
        bench.pulse_row(0, [1], 2.0, 1e-3, 3.0)  # one LRS cell: ~0.2 V x 190 uS  > 1e-5 A
        smu = bench.sim.emulators["smu"]
        with smu.recording() as sent:
            g, n = read_cells(bench, 0, np.arange(4), 0.2, 3.0)
        calls = [k for k, line in enumerate(sent) if line.startswith("hilSweepRun(")]
        assert n == 1 and calls == [len(sent) - 1]  # the row in one call, and no status query after it
        assert bench.read_tripped() and bench.last_sweep_tripped[:, 0].tolist() == [False, True, False, False]
        assert g[1] == pytest.approx(1e-5 / 0.2, rel=1e-3)  # capped: the run knows it from the trip status
        bench.read_row(0, [0], 0.2, 3.0)  # a host read of a cell well inside the limit: its own status
        assert not bench.read_tripped()
        with smu.recording() as sent:
            bench.read_row(0, [1], 0.2, 3.0)
        assert sent == ["print(smua.measure.i(), smua.source.compliance)"] and bench.read_tripped()


def test_served_matrix_bench_tunes_a_row_over_real_visa_sockets():
    """The same call through pyvisa-py to the served 2636B, whose script reaches the served 707B."""
    data = yaml.safe_load(open(MATRIX).read())
    data["chip"]["variation"] = QUIET
    for inst in data["instruments"].values():  # the emulators' host time is not bench time: on a
        inst["timeout"] = 60.0                  # loaded CI machine a reply can take longer than 2 s
    with build_bench(parse_bench(data), transport="socket") as bench:
        assert bench.can_tune_on_instrument
        res = program(bench, targets((1, 6), seed=3), rows=[2], cols=range(6))
    assert (res.status == TUNE_CONVERGED).all() and res.in_band().all()


def test_a_bench_file_naming_a_missing_tsplink_node_gets_a_clear_error_before_any_pulse():
    data = yaml.safe_load(open(MATRIX).read())
    data["chip"]["variation"] = QUIET
    with build_bench(parse_bench(data)) as bench:
        bench.selector.link_node = 7  # as if the 707B were set to another node than the bench file says
        state = bench.sim.arrays["A"].state.copy()
        with pytest.raises(InstrumentError, match="TSP-Link node 7"):
            bench.tune_row(0, [0], [50e-6], CUTE_ISPP.tune_rule(), 10)
        np.testing.assert_array_equal(bench.sim.arrays["A"].state, state)


def _record_tunes_and_reads(bench, monkeypatch, lie_about=None):
    """Events ("tune" | "read", row, cols) of the bench's row calls in order; ``lie_about`` = (row, col):
    the instrument reports that cell converged with a final read 20 % above its target."""
    events, tune, sweep = [], bench.tune_row, bench.sweep_row

    def tune_row(row, cols, g_target, *args, **kw):
        res = tune(row, cols, g_target, *args, **kw)
        events.append(("tune", row, tuple(int(c) for c in cols)))
        if lie_about is not None and lie_about[0] == row and lie_about[1] in cols:
            k = list(cols).index(lie_about[1])
            res.status[k], res.g_final[k] = TUNE_CONVERGED, 1.2 * np.asarray(g_target)[k]
        return res

    def sweep_row(row, cols, steps, *args, **kw):
        if not steps:
            events.append(("read", row, tuple(int(c) for c in cols)))
        return sweep(row, cols, steps, *args, **kw)
    monkeypatch.setattr(bench, "tune_row", tune_row)
    monkeypatch.setattr(bench, "sweep_row", sweep_row)
    return events


def _read_after_last_tune(events):
    last = max(i for i, e in enumerate(events) if e[0] == "tune")
    return {(r, c) for kind, r, cols in events[last + 1:] if kind == "read" for c in cols}


def test_the_verify_pass_rereads_only_what_the_instrument_did_not_confirm_in_band(tmp_path, monkeypatch):
    """Cells the instrument confirmed in band during the pass are not read again; a cell reported converged
    whose final read is outside the band is read again (and re-opened when the read shows it out); with
    ``reread_instrument_confirmed`` every finished cell is read again. Every converged cell's last
    recorded read lies in the band."""
    t = targets((2, 6), seed=5)
    p = CUTE_ISPP
    for reread in (False, True):
        with matrix_bench() as bench:
            events = _record_tunes_and_reads(bench, monkeypatch)
            out = tmp_path / f"r{reread}.h5"
            res = program(bench, t, dataclasses.replace(p, reread_instrument_confirmed=reread), rows=[0, 1],
                          cols=range(6), out=str(out))
        conv = {(r, c) for r, c in zip(*np.nonzero(res.status == TUNE_CONVERGED))}
        assert len(conv) == 12
        assert _read_after_last_tune(events) == (conv if reread else set())
        reads = read_run(out)["tables"]["reads"]
        lo, hi = p.band(t, p.accept_fraction)
        for r, c in conv:  # the last read on record is the converging one, inside the acceptance band
            g = reads["g"][(reads["row"] == r) & (reads["col"] == c)][-1]
            assert lo[r, c] <= g <= hi[r, c] and g == res.g_final[r, c]
    with matrix_bench() as bench:
        events = _record_tunes_and_reads(bench, monkeypatch, lie_about=(1, 2))
        res = program(bench, t, p, rows=[0, 1], cols=range(6))
    assert ("read", 1, (2,)) in events[events.index(("tune", 1, tuple(range(6)))) + 1:]  # not taken on its word
    assert res.status[1, 2] == TUNE_CONVERGED and res.in_band()[1, 2]  # the chip's real state, read again


def test_sigterm_mid_run_then_resume_rereads_the_cells_of_the_earlier_session(tmp_path, monkeypatch):
    """A real SIGTERM during the second row's tuning: the run stops before the third, resumes, confirms the
    file's converged cells by a read, and its verify reads those again (they were not confirmed in this
    session's pass) but not the cells this session's instrument run just confirmed."""
    import os
    import signal

    out, t = str(tmp_path / "p.h5"), targets((3, 5), seed=6)
    with matrix_bench() as bench:
        tune = bench.tune_row

        def tune_then_signal(row, *args, **kw):
            res = tune(row, *args, **kw)
            if row == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # the runner notes it; the next row's checkpoint stops
            return res
        monkeypatch.setattr(bench, "tune_row", tune_then_signal)
        with pytest.raises(Interrupted):
            program(bench, t, rows=[0, 1, 2], cols=range(5), out=out)
        mid = read_run(out)
        assert mid["status"] == "interrupted" and mid["cells"]["done"].all(axis=1).tolist() == [True, True, False]
        monkeypatch.setattr(bench, "tune_row", tune)
        events = _record_tunes_and_reads(bench, monkeypatch)
        res = program(bench, t, rows=[0, 1, 2], cols=range(5), out=out)
        truth = bench.sim.arrays["A"].read_all(CUTE_ISPP.v_read, CUTE_ISPP.read_gate, noisy=False)[:3, :5]
    final = read_run(out)
    assert final["status"] == "complete" and [s.decode() for s in final["sessions"]["status"]] == \
        ["interrupted", "complete"]
    assert [e[:2] for e in events] == [("read", 0), ("read", 1), ("tune", 2), ("read", 0), ("read", 1)]
    assert (res.status == TUNE_CONVERGED).all()
    np.testing.assert_array_less(np.abs(truth / CUTE_ISPP.v_read / t - 1), CUTE_ISPP.tol_rel)


def test_progress_counts_each_cell_once_when_a_verify_pass_reopens_cells(tmp_path, monkeypatch):
    """Cells re-opened by the verify pass (budget spent) and finished again, and cells left alone (NaN
    targets) of a resumed run, are counted once: the bar never passes its total and ends on it."""
    import protocols.runner as runner
    from hil.progress import Progress

    seen = []

    class Recording(Progress):
        def update(self, cells=0, pulses=0, reads=0):
            super().update(cells, pulses, reads)
            seen.append((self.done, self.total))
    monkeypatch.setattr(runner, "Progress", Recording)
    t = targets((2, 6), seed=7)
    t[0, :2] = np.nan
    out = str(tmp_path / "p.h5")
    tight = dataclasses.replace(CUTE_ISPP, max_pulses=2)  # cells spend their budget in pass 1
    with matrix_bench() as bench:
        program(bench, t, tight, rows=[0, 1], cols=range(6), out=str(tmp_path / "whole.h5"))
        first = list(seen)
        seen.clear()
        tune = bench.tune_row

        def stop_after_row_0(row, *args, **kw):
            res = tune(row, *args, **kw)
            if row == 0:
                raise Interrupted("SIGTERM")
            return res
        monkeypatch.setattr(bench, "tune_row", stop_after_row_0)
        with pytest.raises(Interrupted):
            program(bench, t, tight, rows=[0, 1], cols=range(6), out=out)
        monkeypatch.setattr(bench, "tune_row", tune)
        seen.clear()
        program(bench, t, tight, rows=[0, 1], cols=range(6), out=out)  # resumed: row 0 and its NaN cells done
    for log in (first, seen):
        assert all(0 <= done <= total == 12 for done, total in log) and log[-1] == (12, 12)
    dips = [b[0] < a[0] for a, b in zip(first, first[1:])]
    assert any(dips)  # the verify pass did re-open cells, and the bar showed it
