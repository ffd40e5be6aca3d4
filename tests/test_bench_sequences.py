"""Bench.pulse_groups: a row's pulse groups as one addresser sequence that triggers the pulser.

On the board benches the AB64's TRIG OUT reaches the pulser's trigger input (81160A TRIG IN,
B2902A digital I/O pin 1): one arming and one ``SEQ`` replace a generator round trip and a
board round trip per group. The chip must end exactly as with one ``pulse_row`` per group.
"""
from pathlib import Path

import numpy as np
import pytest

import hil
from hil.benchfile import BenchFileError
from hil.roles import LimitError

ROOT = Path(__file__).resolve().parents[1]
CHIP = {"device_model": "stanford_gap", "seed": 5, "arrays": [{"name": "A", "rows": 4, "cols": 8}],
        "variation": {"read_noise_scale": 0.0}}
BENCHES = {"2450+81160A": (None, 1e-6), "B2902A": (ROOT / "examples/benches/simulated_b2900.yaml", 100e-6)}


def groups(width):
    # SET groups of one amplitude (gates differ), RESETs of two amplitudes, as an ISPP iteration sends them
    return [([5], -1.2, width, 4.0), ([6], -1.3, width, 4.0), ([0, 2], 2.0, width, 1.1), ([1], 2.0, width, 1.4),
            ([3, 7], 2.0, width, 2.0)]


@pytest.mark.parametrize("name", BENCHES)
def test_pulse_groups_leave_the_chip_as_one_pulse_row_per_group(name):
    path, width = BENCHES[name]
    with hil.open_bench(path, chip=CHIP) as fast, hil.open_bench(path, chip=CHIP) as slow:
        assert fast.can_sequence
        for b in (fast, slow):  # instruments set up, as in a run: a read and a first pulse on row 3
            b.read_row(1, None, 0.05, 3.0)
        fast.pulse_groups(3, [([4], 2.0, width, 1.5)])
        slow.pulse_row(3, [4], 2.0, width, 1.5)
        for b in (fast, slow):
            b.sim.clock.reset()
        before = fast.sim.arrays["A"].state.copy()
        fast.pulse_groups(1, groups(width))
        for cols, amp, w, gate in groups(width):
            slow.pulse_row(1, cols, amp, w, gate)
        np.testing.assert_allclose(fast.sim.arrays["A"].state, slow.sim.arrays["A"].state, rtol=0, atol=0)
        moved = fast.sim.arrays["A"].state != before
        assert moved[1, [0, 1, 2, 3, 7]].all() and not moved[[0, 2, 3]].any()  # the SETs acted, on row 1 only
        per = {n: t.round_trips for n, t in fast.sim.clock.instruments.items()}
        if name == "B2902A":  # one pulse list armed for the whole row, one SEQ
            assert per == {"smu": 1, "board": 1}
        else:  # the 81160A gives every triggered pulse one level: one arming and one SEQ per amplitude
            assert per == {"pulser": 3, "board": 3}
        assert fast.sim.clock.round_trips < slow.sim.clock.round_trips


def test_pulse_groups_check_every_group_before_sending_any():
    with hil.open_bench(chip=CHIP) as bench:
        before = bench.sim.arrays["A"].state.copy()
        bench.sim.clock.reset()
        for bad in ([([0], 2.0, 1e-6, 1.1), ([1], 3.5, 1e-6, 1.1)],  # beyond v_line_max
                    [([0], 2.0, 1e-6, 1.1), ([9], 2.0, 1e-6, 1.1)],  # no column 9
                    [([0], 2.0, 1e-6, 1.1), ([1], 2.0, 1.0, 1.1)],  # longer than pulse_width_max
                    [([0], 2.0, 1e-6, 1.1), ([1], float("nan"), 1e-6, 1.1)]):
            with pytest.raises((LimitError, IndexError)):
                bench.pulse_groups(0, bad)
        assert bench.sim.clock.round_trips == 0
        np.testing.assert_array_equal(bench.sim.arrays["A"].state, before)
        bench.pulse_groups(0, [])  # nothing to send
        assert bench.sim.clock.round_trips == 0


def test_the_trigger_cable_is_declared_by_the_bench_file(tmp_path):
    """Without ``wiring.pulse_trigger`` the board never sequences (pulse_row per group); declaring it
    where the addresser cannot sequence is refused, naming the field."""
    import yaml

    base = yaml.safe_load((ROOT / "hil/benches/simulated.yaml").read_text())
    base["chip"]["arrays"] = [{"name": "A", "rows": 4, "cols": 8}]
    del base["wiring"]["pulse_trigger"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(base))
    with hil.open_bench(plain) as bench:
        assert not bench.can_sequence
        bench.sim.clock.reset()
        with bench.sim.emulators["board"].recording() as lines:
            bench.pulse_groups(0, [([0], 2.0, 1e-6, 1.1), ([1], 2.0, 1e-6, 1.3)])
        assert lines and not any(line.startswith("SEQ") for line in lines)
        assert bench.sim.clock.instruments["board"].round_trips == 2  # one routing per group
    matrix = yaml.safe_load((ROOT / "examples/benches/simulated_matrix.yaml").read_text())
    matrix["wiring"]["pulse_trigger"] = True
    bad = tmp_path / "matrix.yaml"
    bad.write_text(yaml.safe_dump(matrix))
    with pytest.raises(BenchFileError, match="wiring.pulse_trigger: matrix cannot sequence pulses"):
        hil.open_bench(bad)


def test_a_pulse_after_the_state_was_forgotten_still_fires():
    """After an error the bench forgets what its instruments hold: a generator left armed on its
    trigger input is put back on manual arming before a plain pulse, never left silent."""
    with hil.open_bench(chip=CHIP) as bench:
        arr = bench.sim.arrays["A"]
        bench.pulse_groups(0, [([0], 2.0, 1e-6, 1.5)])  # the 81160A is now armed on EXT
        bench.station.forget_state()
        before = arr.state.copy()
        bench.pulse_row(2, [3], 2.0, 1e-6, 1.5)
        assert arr.state[2, 3] != before[2, 3]
        assert bench.sim.emulators["pulser"].channels[1].arm == "MAN"
