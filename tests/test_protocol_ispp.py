"""ISPP write-and-verify: the state machine, the seed-004 Fig. 5 behaviour, arrays through the drivers."""
import dataclasses

import numpy as np
import pytest

import hil
from hil.runstore import read_run
from protocols import ispp
from protocols.ispp import (CONVERGED, CUTE_ISPP, EXHAUSTED, PENDING, RESET, SET, STANFORD_ISPP, UNRESPONSIVE,
                            CellProgrammer, Ladder, calibrate_levels, group_pulses, program)

PLAIN = dataclasses.replace(STANFORD_ISPP, accept_fraction=1.0, step_growth=1.0)


def chip(n, **extra):
    return {"arrays": [{"name": "A", "rows": n, "cols": n}], **extra}


# --- ladders and the pure state machine --------------------------------------------------------
def test_ladders():
    lin = Ladder.linear(0.5, 0.01, 2.0, 3.0, width=1e-3)
    assert lin.n_rungs == 151 and lin.drive(0) == (0.5, 3.0) and lin.drive(10**6)[0] == 2.0
    od = Ladder.overdrive(2.0, 0.85, 2.6, v_th=0.7, ratio=1.05)
    g = np.asarray(od.gates)
    assert g[0] == 0.85 and g[-1] == 2.6 and np.allclose(np.diff(np.log(g[:-1] - 0.7)), np.log(1.05), atol=1e-3)
    assert od.at_top(od.n_rungs - 1) and not od.at_top(0)
    with pytest.raises(ValueError):
        Ladder((1.0, 0.9), (3.0, 3.0))  # weakening drive
    with pytest.raises(ValueError):
        Ladder.linear(1.0, 0.0, 1.0, 3.0)  # nothing steps


def test_one_in_band_read_does_not_finish_a_cell():
    sm = CellProgrammer([100e-6], PLAIN)
    need, *_ = sm.decide([100.5e-6])
    assert not need[0] and sm.status[0] == PENDING  # first in-band read: wait for the confirmation
    need, pol, *_ = sm.decide([90e-6])  # the confirmation read is out of band: keep programming
    assert need[0] and pol[0] == SET and sm.status[0] == PENDING
    sm.decide([101e-6])
    sm.decide([99.5e-6])
    assert sm.status[0] == CONVERGED


def test_rungs_climb_and_restart_after_a_polarity_reversal():
    sm = CellProgrammer([100e-6], PLAIN)
    rungs = []
    for g in (50e-6, 60e-6, 70e-6):  # below the band: SET rungs 0, 1, 2
        need, pol, amp, gate = sm.decide([g])
        rungs.append(sm.rung[0])
        assert pol[0] == SET
    assert rungs == [0, 1, 2]
    need, pol, amp, gate = sm.decide([150e-6])  # overshoot: RESET from the bottom of its ladder
    assert pol[0] == RESET and sm.rung[0] == 0 and amp[0] == PLAIN.reset_ladder.amps[0]
    need, pol, amp, gate = sm.decide([80e-6])  # back below: SET restarts at rung 0 too
    assert pol[0] == SET and sm.rung[0] == 0 and sm.reversals[0] == 2


def test_step_grows_while_a_cell_does_not_move_and_unresponsive_cells_stop():
    p = dataclasses.replace(STANFORD_ISPP, stall_pulses=3)
    sm = CellProgrammer([100e-6], p)
    rungs = []
    while sm.status[0] == PENDING:
        sm.decide([5e-6])  # a stuck-OFF cell: nothing moves
        rungs.append(sm.rung[0])
    assert sm.status[0] == UNRESPONSIVE
    assert rungs[:4] == [0, 2, 6, 14]  # steps of 2, 4, 8 rungs: the top is reached in a few pulses
    assert sm.pulses[0] < 15


def test_budget_and_new_pass():
    p = dataclasses.replace(PLAIN, max_pulses=3)
    sm = CellProgrammer([100e-6, 50e-6, 20e-6], p)
    for g in ([10e-6, 50e-6, 20e-6], [11e-6, 50.2e-6, 5e-6], [12e-6, 50e-6, 6e-6], [13e-6, 50e-6, 7e-6]):
        sm.decide(np.where(sm.status == PENDING, g, np.nan))
    assert sm.status[0] == EXHAUSTED and sm.status[1] == CONVERGED and sm.status[2] == PENDING
    sm.status[2] = UNRESPONSIVE
    reopened = sm.new_pass([12e-6, 60e-6, 5e-6])  # cell 1 drifted out of its band
    assert reopened.tolist() == [True, True, False] and sm.status.tolist() == [PENDING, PENDING, UNRESPONSIVE]


def test_cells_needing_the_same_pulse_share_it():
    need = np.array([True, True, False, True, True])
    pol = np.array([1, 1, 0, -1, 1])
    amp = np.array([2.0, 2.0, 0.0, 1.2, 2.0])
    gate = np.array([1.0, 1.0, 0.0, 4.0, 1.1])
    groups = {(s, a, g): idx.tolist() for s, a, g, idx in group_pulses(need, pol, amp, gate)}
    assert groups == {(1, 2.0, 1.0): [0, 1], (-1, 1.2, 4.0): [3], (1, 2.0, 1.1): [4]}


# --- seed 004 Fig. 5 on the simulated Cu:Te cell ------------------------------------------------------
@pytest.fixture(scope="module")
def fig5():
    """Nine levels at 3 % and then at 1 % on one Cu:Te 1T1R cell (single reads, Delta V = 10 mV)."""
    targets = np.arange(180, 19, -20) * 1e-6
    out = {}
    with hil.open_bench(chip={"device_model": "cute_multilevel", "seed": 0, **chip(1)}) as bench:
        for tol in (0.03, 0.01):
            p = dataclasses.replace(CUTE_ISPP, tol_rel=tol, step_growth=1.0, passes=1, max_pulses=60)
            cal = calibrate_levels(bench, 0, [0], p, stride=5)
            bench.pulse_row(0, [0], 2.0, 1e-3, 3.0)  # full SET at 2 V first, as seed 004
            total, conv, rev, truly = 1, 0, 0, 0
            for t in targets:
                r = program(bench, [[t]], p, calibration=cal)
                total += int(r.pulses[0, 0])
                conv += int(r.status[0, 0] == CONVERGED)
                rev += int(r.reversals[0, 0])
                truly += int(abs(bench.sim.arrays["A"].true_conductance()[0, 0] / t - 1) <= tol)
            out[tol] = (total, conv, rev, truly)
    return out


def test_fig5_nine_levels_at_3_percent_in_at_most_60_pulses(fig5):
    total, conv, rev, truly = fig5[0.03]
    assert conv == 9 and total <= 60  # seed 004: nine tunings within 55 pulses
    assert rev <= 3 and truly >= 7


def test_fig5_one_percent_band_is_defeated_by_two_percent_read_noise(fig5):
    total, conv, rev, truly = fig5[0.01]
    # seed 004 Fig. 5D: repetitive switching between SET and RESET, no reliable target
    assert rev >= 4 * max(fig5[0.03][2], 2) and total > fig5[0.03][0]
    # pooled verify reads keep the 2 % noise from faking success: the levels are not reached
    assert conv <= 1 and truly <= 4


# --- arrays through the drivers -----------------------------------------------------------------------
N = 12


@pytest.fixture(scope="module")
def bench():
    """One simulated Stanford chip for the array tests (its pulse tables are shared between them)."""
    faults = {"kind": "random", "rate_off": 0.05, "rate_on": 0.05, "seed": 2}
    with hil.open_bench(chip=chip(N, seed=3, faults=faults)) as b:
        yield b


def test_stanford_array_every_working_cell_within_3_percent(bench, tmp_path):
    n = N
    rng = np.random.default_rng(5)
    targets = np.exp(rng.uniform(np.log(10e-6), np.log(1e-3), (n, n)))
    arr = bench.sim.arrays["A"]
    res = program(bench, targets, out=str(tmp_path / "ispp.h5"))
    working = arr.true_fault_codes == 0
    p = res.params
    truth = arr.read_all(p.v_read, p.read_gate, noisy=False) / p.v_read
    assert np.all(res.status[working] == CONVERGED)
    assert np.all(res.status[~working] == UNRESPONSIVE)
    assert np.all(np.abs(truth[working] / targets[working] - 1) <= 0.03)
    assert res.summary(working)["mean_pulses"] <= 8
    run = read_run(tmp_path / "ispp.h5")
    assert run["status"] == "complete" and run["protocol"] == "ispp" and run["chip_id"] == "SIM-STANFORD-64"
    assert "calibration" in run["arrays"] and run["arrays"]["targets"].shape == (n, n)
    np.testing.assert_array_equal(run["cells"]["status"], res.status)
    pulses = run["tables"]["pulses"]
    assert pulses["delivered"].all()
    cal = pulses[pulses["phase"] == b"calibrate"]  # calibration pulses are recorded too
    assert cal.size and set(np.unique(pulses["phase"])) == {b"calibrate", b"program"}
    prog = pulses[pulses["phase"] == b"program"]
    per_cell = np.zeros((n, n), int)
    np.add.at(per_cell, (prog["row"], prog["col"]), 1)
    np.testing.assert_array_equal(per_cell, res.pulses)  # the full pulse history is in the file


def test_same_pulses_are_shared_and_a_later_pass_reprograms_only_drifted_cells(bench, monkeypatch):
    arr = bench.sim.arrays["A"]
    rows, cols = [r for r in range(N) if np.all(arr.true_fault_codes[r, :6] == 0)][:4], list(range(6))
    targets = np.full((len(rows), len(cols)), 200e-6)
    first = program(bench, targets, dataclasses.replace(STANFORD_ISPP, passes=1), rows=rows, cols=cols)
    assert np.all(first.status == CONVERGED)
    # cells of a row with the same target mostly need the same pulse: one pulse_row serves them
    log = first.pulse_log
    row_pulses = np.unique(np.stack([log["pass"], log["iteration"], log["row"], log["polarity"], log["amplitude"],
                                     log["gate"]], axis=1), axis=0).shape[0]
    assert log.size == first.pulses.sum() and row_pulses < 0.5 * log.size

    real_next_pass = ispp.ISPPPage.next_pass

    def drift_then_verify(*args, **kwargs):  # a cell drifts after the first pass, before its verify reads
        arr.state[rows[1], cols[3]] = arr.model.state_for_conductance(60e-6)
        return real_next_pass(*args, **kwargs)

    monkeypatch.setattr(ispp.ISPPPage, "next_pass", drift_then_verify)
    again = program(bench, targets, dataclasses.replace(STANFORD_ISPP, passes=2), rows=rows, cols=cols,
                    calibration=first.calibration)
    assert np.all(again.status == CONVERGED)
    second = again.pulse_log[again.pulse_log["pass"] == 2]
    assert set(zip(second["row"].tolist(), second["col"].tolist())) == {(rows[1], cols[3])}


class Boom(KeyboardInterrupt):
    pass


def test_interrupted_run_is_readable_and_resumes_skipping_done_cells(bench, tmp_path):
    n = N
    rng = np.random.default_rng(0)
    targets = np.exp(rng.uniform(np.log(20e-6), np.log(500e-6), (n, n)))
    out = str(tmp_path / "run.h5")
    if True:
        real_pulse, real_groups, count = bench.pulse_row, bench.pulse_groups, {"n": 0}

        def flaky(*a, **k):
            count["n"] += 1
            if count["n"] == 130:
                raise Boom()
            return real_pulse(*a, **k)

        def flaky_groups(row, groups):  # the bench fails at the 130th pulse group, wherever it falls
            count["n"] += len(groups)
            if count["n"] >= 130:
                raise Boom()
            return real_groups(row, groups)

        bench.pulse_row, bench.pulse_groups = flaky, flaky_groups
        try:
            with pytest.raises(Boom):
                program(bench, targets, out=out)
        finally:
            bench.pulse_row, bench.pulse_groups = real_pulse, real_groups
        mid = read_run(out)
        assert mid["status"] == "interrupted"
        done_rows = np.nonzero(mid["cells"]["done"].all(axis=1))[0]
        assert 0 < done_rows.size < n
        n_pulses_before = mid["tables"]["pulses"].size
        bench.pulse_row = real_pulse
        res = program(bench, targets, out=out)
        working = bench.sim.arrays["A"].true_fault_codes == 0
    final = read_run(out)
    assert final["status"] == "complete" and len(final["sessions"]) == 2
    assert np.all(res.status[working] == CONVERGED)
    new = final["tables"]["pulses"][n_pulses_before:]
    new = new[new["pass"] == 1]  # (pass 2 may legitimately touch any row)
    assert new.size
    # finished rows were skipped, but for the cells whose confirmation read found them out of the
    # band: those few are pulsed again, each only from a read outside its acceptance band
    again = new[np.isin(new["row"], done_rows)]
    assert len({(int(r), int(c)) for r, c in zip(again["row"], again["col"])}) <= max(2, done_rows.size * n // 20)
    p = STANFORD_ISPP
    for rec in again:
        lo, hi = p.band(targets[rec["row"], rec["col"]], p.accept_fraction)
        assert not lo <= rec["g_before"] <= hi


def test_targets_outside_the_window_are_refused_before_anything_is_sent():
    from protocols.ispp import STANFORD_ISPP, check_window

    targets = np.full((2, 3), 100e-6)
    targets[1, 2] = 3e-3  # above the Stanford ladders' reach
    with hil.open_bench(chip={"arrays": [{"name": "A", "rows": 4, "cols": 4}]}) as bench:
        pulses_before = bench.sim.arrays["A"].pulse_count
        with pytest.raises(ValueError, match=r"1 target\(s\) outside the programmable window .* at \(1, 2\)"):
            program(bench, targets, STANFORD_ISPP, rows=[0, 1], cols=[0, 1, 2])
        # targets smaller than the region are refused, not programmed into its top-left corner
        with pytest.raises(ValueError, match=r"targets of shape \(2, 3\) do not match the region of 4 rows x 4"):
            program(bench, np.full((2, 3), 100e-6), STANFORD_ISPP)
        assert bench.sim.arrays["A"].pulse_count == pulses_before
    clipped = check_window(targets, STANFORD_ISPP.g_window, "clip")
    assert clipped[1, 2] == STANFORD_ISPP.g_window[1] and clipped[0, 0] == 100e-6
    with pytest.raises(ValueError, match="positive conductances"):
        check_window(np.array([[-1e-6]]), None)
    with pytest.raises(ValueError, match="out_of_window"):
        check_window(targets, STANFORD_ISPP.g_window, "wrap")


def test_pooled_verify_does_not_accept_a_noisy_lucky_read():
    """A state 2 % off target, read with 2 % noise, is never accepted in a 1 % band (seed 004 Fig. 5D)."""
    from protocols.ispp import CellProgrammer

    p = dataclasses.replace(CUTE_ISPP, tol_rel=0.01)
    rng = np.random.default_rng(5)
    n = 2000
    sm = CellProgrammer(np.full(n, 100e-6), p)
    true_g = 102e-6
    accepted = np.zeros(n, bool)
    for _ in range(p.max_verify_reads):
        need, _, _, _ = sm.decide(np.where(sm.active & ~accepted, true_g * (1 + 0.02 * rng.standard_normal(n)), np.nan))
        accepted |= sm.status == CONVERGED
        sm.pulsed_last[:] = need  # no pulse reached the cells in this check: only the bookkeeping matters
    assert accepted.mean() < 0.01
    plain = CellProgrammer(np.full(n, 100e-6), dataclasses.replace(p, read_noise_rel=0.0))
    fooled = np.zeros(n, bool)
    for _ in range(2):
        plain.decide(np.where(plain.active, true_g * (1 + 0.02 * rng.standard_normal(n)), np.nan))
        fooled |= plain.status == CONVERGED
    assert fooled.mean() > 0.03  # the plain two-read rule is fooled now and then


# --- fast on the bench clock: a row iteration's pulses as board sequences ---------------------------------
FAST_CHIP = chip(6, seed=7, faults={"kind": "random", "rate_off": 0.05, "rate_on": 0.05, "seed": 3})
TWIN_CHIP = chip(4, seed=7, faults={"kind": "random", "rate_off": 0.1, "rate_on": 0.1, "seed": 3})


def _fast_targets(n):
    return np.exp(np.random.default_rng(4).uniform(np.log(20e-6), np.log(500e-6), (n, n)))


def test_sequenced_ispp_reaches_the_same_cells_as_one_pulse_row_per_group():
    """The board's SEQ (pulser armed on its trigger input) changes the transport, not the physics:
    on twin seeded chips every cell ends with the same status, pulse count and conductance."""
    results, clocks = [], []
    for sequenced in (True, False):
        with hil.open_bench(chip=TWIN_CHIP) as bench:
            if not sequenced:
                bench.pulser.can_trigger = False  # this bench's pulser as one without a trigger input
            assert bench.can_sequence == sequenced
            bench.sim.clock.reset()
            results.append(program(bench, _fast_targets(4), PLAIN))
            clocks.append(bench.sim.clock.round_trips)
    fast, slow = results
    np.testing.assert_array_equal(fast.status, slow.status)
    np.testing.assert_array_equal(fast.pulses, slow.pulses)
    np.testing.assert_allclose(fast.g_final, slow.g_final, rtol=1e-12)
    assert (fast.status == CONVERGED).sum() >= 0.8 * fast.status.size
    assert clocks[0] < clocks[1]


def test_round_trips_per_row_iteration_are_bounded_by_its_distinct_pulses():
    """One board transfer per row read and one pulser arming plus one board SEQ per distinct pulse
    amplitude of an iteration, however many cells the row holds."""
    with hil.open_bench(chip=FAST_CHIP) as bench:
        bench.read_row(0, None, PLAIN.v_read, PLAIN.read_gate)  # configure the read source first
        bench.sim.clock.reset()
        res = program(bench, _fast_targets(6), dataclasses.replace(PLAIN, passes=1), calibration=None)
        per = {n: t.round_trips for n, t in bench.sim.clock.instruments.items()}
    reads = {(r["pass"], r["iteration"], r["row"]) for r in res.read_log}
    arms = {(p["pass"], p["iteration"], p["row"], float(p["amplitude"])) for p in res.pulse_log}
    assert res.pulse_log.size > 3 * len(arms)  # several cells share each arming
    assert per["board"] <= len(reads) + len(arms) + 2  # + the final safe state
    assert per["pulser"] <= len(arms) + 6  # + its one-time set-up and safe state
