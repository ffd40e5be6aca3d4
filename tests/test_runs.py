"""The run lifecycle every protocol shares (protocols/runner.py): whole-plan pre-flight, regions,
honest resume (identity, confirmation reads, statistics), write-ahead records, signals."""
import dataclasses
import json
import os
import re
import signal

import h5py
import numpy as np
import pytest

import hil
from hil.runstore import RunMismatch, read_run
from protocols.forming import FormParams, form
from protocols.ispp import CONVERGED, STANFORD_ISPP, program
from protocols.read import read_all
from protocols.runner import Interrupted, PlanError, RegionError
from protocols.scan import STANFORD_SCAN, scan

CHIP = {"arrays": [{"name": "A", "rows": 6, "cols": 6}], "faults": {"kind": "none"}, "seed": 1}


def bench(**kw):
    return hil.open_bench(chip={**CHIP, **kw.pop("chip", {})}, **kw)


@pytest.mark.parametrize("make", [
    lambda b, out: form(b, FormParams(v_max=10.0), out=out),
    lambda b, out: scan(b, dataclasses.replace(STANFORD_SCAN, set_amp=3.5), out=out),
    lambda b, out: scan(b, dataclasses.replace(STANFORD_SCAN, restore=True), out=out),  # restore ladders: gate 2.6 V
    lambda b, out: program(b, np.full((6, 6), 100e-6), out=out),  # SET ladder gates reach 2.6 V
])
def test_a_plan_beyond_the_limits_is_refused_before_anything_is_sent_and_leaves_no_file(tmp_path, make):
    out = tmp_path / "run.h5"
    with bench(limits={"v_gate_max": 2.5}) as b:
        arr = b.sim.arrays["A"]
        pulses, reads = arr.pulse_count, arr.read_count
        with pytest.raises(PlanError) as info:
            make(b, str(out))
        assert arr.pulse_count == pulses and arr.read_count == reads
    msg = str(info.value)
    assert "bench limit" in msg and ("lower" in msg or "shorten" in msg)
    assert not out.exists()


def test_the_refused_plan_names_the_parameter_to_change():
    with bench() as b, pytest.raises(PlanError, match=r"v_max \(the top of the forming ramp\) reaches 10 V .* "
                                                        r"v_line_max = 3 V: lower v_max"):
        form(b, FormParams(v_max=10.0))


def test_a_plan_the_pulser_cannot_deliver_is_refused_naming_the_parameter():
    """Within the bench limits but under the 81160A's 50 mV amplitude floor: refused before any pulse."""
    with bench() as b:
        arr = b.sim.arrays["A"]
        pulses = arr.pulse_count
        with pytest.raises(PlanError, match=r"forming ramp.*0.01 V is below the 81160A.s 50 mV minimum"):
            form(b, FormParams(v_start=0.01, v_step=0.01, v_max=0.3))
        assert arr.pulse_count == pulses


def test_run_file_records_round_trips_and_bench_time_over_every_session(tmp_path):
    """The simulated bench's clock goes into the run file; a resumed session adds to it."""
    out = tmp_path / "read.h5"
    with bench() as b:
        before = b.sim.clock.snapshot()  # opening the bench (identification, safe state) is not the run's
        read_all(b, rows=[0, 1], out=str(out))
        spent = b.sim.clock.since(before)
    first = read_run(out)
    assert first["round_trips"] == spent["round_trips"] > 0
    assert first["bench_time_s"] == pytest.approx(spent["bench_time_s"]) and first["bench_time_s"] > 0
    with bench() as b:  # the same command again: nothing left to read, the totals stay
        read_all(b, rows=[0, 1], out=str(out))
    again = read_run(out)
    assert again["round_trips"] >= first["round_trips"]
    assert again["bench_time_s"] >= first["bench_time_s"]


def test_progress_bar_counts_the_pulses_and_reads_the_run_sends(tmp_path, capsys):
    """The bar's pulses and reads are the run's own: the pulse table's length and at least a read per cell."""
    out = tmp_path / "p.h5"
    with bench() as b:
        program(b, np.full((2, 4), 100e-6), rows=[0, 1], cols=range(4), out=str(out), progress=True)
    pulses, reads = (int(v) for v in re.findall(r"pulses=(\d+), reads=(\d+)", capsys.readouterr().err)[-1])
    with h5py.File(out, "r") as f:
        assert pulses == f["tables/pulses"].shape[0] > 0
    assert reads >= 8


@pytest.mark.parametrize("rows,cols,msg", [([1, 1], None, "row 1 is given 2 times"),
                                           (None, [0, 6], "column 6 is outside"),
                                           ([], None, "non-empty"),
                                           ([0.5], None, "whole numbers")])
def test_regions_are_validated(rows, cols, msg):
    with bench() as b, pytest.raises(RegionError, match=msg):
        read_all(b, rows=rows, cols=cols)


def test_targets_must_match_the_region_exactly():
    with bench() as b:
        with pytest.raises(ValueError, match=r"targets of shape \(3, 6\) do not match the region of 6 rows x 6"):
            program(b, np.full((3, 6), 100e-6))
        with pytest.raises(ValueError, match=r"targets of shape \(1, 6\)"):
            program(b, np.full(6, 100e-6))
        with pytest.raises(ValueError, match="finite number"):
            program(b, np.full((6, 6), 100e-6), dataclasses.replace(STANFORD_ISPP, tol_rel=float("nan")))


def test_resume_on_another_chip_or_instrument_is_refused_saying_what_differs(tmp_path, monkeypatch):
    out = str(tmp_path / "r.h5")
    with bench() as b:
        read_all(b, out=out)
    with bench(chip={"id": "CHIP-B"}) as b, pytest.raises(RunMismatch, match="chip 'SIM-STANFORD-64' in the file, "
                                                                             "'CHIP-B' on this bench"):
        read_all(b, out=out)
    with bench() as b:
        b.metadata["instruments"]["smu"]["idn"] = "KEITHLEY INSTRUMENTS,MODEL 2450,999,1"  # another unit
        with pytest.raises(RunMismatch, match=r"instrument smu: .*04455011.* in the file, .*999.* now"):
            read_all(b, out=out)
        read_all(b, out=out, overwrite=True)  # a deliberate restart
    assert read_run(out)["identity"]["instruments"]["smu"].endswith("999,1")


class Boom(KeyboardInterrupt):
    pass


def _interrupt_after(monkeypatch, bench_obj, n_pulses, exc=Boom):
    """Raise ``exc`` once the bench has been asked for more than ``n_pulses`` pulses (one per
    ``pulse_row``, one per group of ``pulse_groups``)."""
    real, real_groups, count = bench_obj.pulse_row, bench_obj.pulse_groups, [0]

    def pulse_row(*a, **k):
        count[0] += 1
        if count[0] > n_pulses:
            raise exc()
        return real(*a, **k)

    def pulse_groups(row, groups):
        count[0] += len(groups)
        if count[0] > n_pulses:
            raise exc()
        return real_groups(row, groups)

    monkeypatch.setattr(bench_obj, "pulse_row", pulse_row)
    monkeypatch.setattr(bench_obj, "pulse_groups", pulse_groups)

    def undo():
        monkeypatch.setattr(bench_obj, "pulse_row", real)
        monkeypatch.setattr(bench_obj, "pulse_groups", real_groups)
    return undo


def test_finished_cells_are_confirmed_by_a_read_before_a_resume_counts_them(tmp_path, monkeypatch):
    out = str(tmp_path / "p.h5")
    targets = np.full((6, 6), 200e-6)
    p = dataclasses.replace(STANFORD_ISPP, passes=1)
    with bench() as b:
        arr = b.sim.arrays["A"]
        undo = _interrupt_after(monkeypatch, b, 75)
        with pytest.raises(Boom):
            program(b, targets, p, out=out)
        undo()
        mid = read_run(out)
        assert mid["status"] == "interrupted"
        conv = np.argwhere(mid["cells"]["status"] == CONVERGED)
        assert len(conv) >= 2
        # what a fresh chip (or another one) would show: the "converged" cells are back in RESET
        for r, c in conv[:2]:
            arr.state[r, c] = arr.model.state_for_conductance(20e-6)
        res = program(b, targets, p, out=out)
        truth = arr.read_all(p.v_read, p.read_gate, noisy=False) / p.v_read
    assert np.all(res.status == CONVERGED)
    assert np.all(np.abs(truth / 200e-6 - 1) <= 0.031)  # every converged cell truly is in the band
    pulses = read_run(out)["tables"]["pulses"]
    again = pulses[pulses["session"] == 1]
    for r, c in conv[:2]:
        assert np.any((again["row"] == r) & (again["col"] == c))  # reprogrammed, not counted


def test_scan_statistics_cover_every_resumption(tmp_path, monkeypatch):
    out = str(tmp_path / "s.h5")
    with bench() as b:
        undo = _interrupt_after(monkeypatch, b, 2 * 3)  # three whole rows (SET + RESET each)
        with pytest.raises(Boom):
            scan(b, out=out)
        undo()
        res = scan(b, out=out)
    # 5 operations per cell in each row's scan, plus one confirmation read of each of the 3 rows done before
    assert res.ops_per_cell == pytest.approx(5 + 3 / 6)
    assert read_run(out)["ops_per_cell"] == pytest.approx(res.ops_per_cell)


def test_every_pulse_is_recorded_before_it_is_sent(tmp_path, monkeypatch):
    out = str(tmp_path / "p.h5")
    with bench() as b:
        sent = []
        real = b.pulse_row

        def pulse_row(row, cols, amplitude, width, v_gate):
            # the record of this pulse is already in the file when the bench is asked to send it
            pulses = read_run(out)["tables"]["pulses"]
            assert pulses.size and pulses[-1]["row"] == row and not pulses[-1]["delivered"]
            sent.append(len(np.atleast_1d(cols)))
            if len(sent) == 40:
                raise Boom()  # Ctrl-C while this pulse is on its way
            return real(row, cols, amplitude, width, v_gate)

        monkeypatch.setattr(b, "pulse_row", pulse_row)
        with pytest.raises(Boom):
            program(b, np.full((6, 6), 150e-6), out=out)
    pulses = read_run(out)["tables"]["pulses"]
    assert pulses.size == sum(sent)  # calibration pulses included, none missing, none doubled
    assert pulses[pulses["phase"] == b"calibrate"].size > 0
    last = pulses[-sent[-1]:]
    assert not last["delivered"].any() and pulses[:-sent[-1]]["delivered"].all()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_stops_the_run_before_the_next_operation(tmp_path, monkeypatch, sig):
    out = str(tmp_path / "s.h5")
    with bench() as b:
        real, count = b.sim.arrays["A"].pulse_row, [0]
        off_calls = []
        real_off = b.outputs_off
        monkeypatch.setattr(b, "outputs_off", lambda: (off_calls.append(1), real_off()))
        real_pulse = b.pulse_row

        def pulse_row(*a):
            count[0] += 1
            if count[0] == 3:
                os.kill(os.getpid(), sig)  # arrives while this pulse is being sent
            return real_pulse(*a)

        monkeypatch.setattr(b, "pulse_row", pulse_row)
        before = signal.getsignal(sig)
        with pytest.raises(Interrupted, match=signal.Signals(sig).name):
            scan(b, out=out)
        assert signal.getsignal(sig) is before  # handlers restored after the run
        assert count[0] == 3 and off_calls  # the pulse in flight finished; nothing was sent after it
    run = read_run(out)
    assert run["status"] == "interrupted" and run["tables"]["pulses"]["delivered"].all()
    assert json.loads(json.dumps(run["identity"]))["chip_id"] == "SIM-STANFORD-64"
