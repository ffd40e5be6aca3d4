"""Bench files: validation errors name the field and the problem; chip options build the chip."""
import copy

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import hil
from hil.bench import simulated_bench_file
from hil.benchfile import BenchFileError, load_bench_file, parse_bench
from simulated_bench import pattern_fault_codes, random_fault_codes

SIM = yaml.safe_load(simulated_bench_file().read_text())
REAL = yaml.safe_load(open("examples/benches/real_lab.yaml").read())


def edited(base, path, value=None, delete=False):
    data = copy.deepcopy(base)
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("data,match", [
    (edited(REAL, "instruments.smu.model", "keithly2450"),
     r"instruments\.smu\.model: unknown instrument model 'keithly2450'; did you mean 'keithley2450'\?"),
    (edited(REAL, "instruments.pulser.address", delete=True), r"instruments\.pulser\.address: missing address"),
    (edited(REAL, "instruments.board.address", ""), r"instruments\.board\.address: missing address"),
    (edited(REAL, "limits.v_line_max", 50.0), r"limits\.v_line_max: 50\.0 is out of range: must be <= 10"),
    (edited(REAL, "limits.i_compliance", -1e-3), r"limits\.i_compliance: -0\.001 is out of range: must be > 0"),
    (edited(REAL, "limits.v_gate_max", "five"), r"limits\.v_gate_max: must be a number"),
    (edited(REAL, "limits.pulse_width_min", 1e-10), r"limits\.pulse_width_min: 1e-10 s is out of range: the "
                                                    r"keysight81160a 'pulser' makes no pulse shorter than 1\.5e-09"),
    (edited(REAL, "limits.v_gate_max", delete=True), r"limits\.v_gate_max: missing hard limit"),
    (edited(REAL, "limits.v_line_mx", 2.0), r"limits\.v_line_mx: unknown key 'v_line_mx'; did you mean 'v_line_max'\?"),
    (edited(REAL, "wirin", {}), r"wirin: unknown key 'wirin'; did you mean 'wiring'\?"),
    (edited(REAL, "wiring", delete=True), r"wiring: missing section"),
    (edited(REAL, "wiring.read", "smu2"), r"wiring\.read: no instrument 'smu2' in the instruments section; "
                                          r"did you mean 'smu'\?"),
    (edited(REAL, "wiring.pulse", "pulser.3"), r"wiring\.pulse: keysight81160a has channels 1, 2, not '3'"),
    (edited(REAL, "wiring.pulse", "smu"), r"wiring\.pulse: a keithley2450 cannot serve as pulse"),
    (edited(REAL, "instruments.smu.address", "sim://smu"), r"instruments\.smu\.address: 'sim://smu' names a "
                                                           r"simulated instrument"),
    (edited(SIM, "instruments.smu.address", "GPIB0::5::INSTR"), r"instruments\.smu\.address: a simulated bench"),
    (edited(SIM, "chip.device_model", "stanford"), r"chip\.device_model: unknown device model 'stanford'; "
                                                   r"did you mean 'stanford_gap'\?"),
    (edited(SIM, "chip.faults", {"kind": "randm"}), r"chip\.faults\.kind: unknown fault kind 'randm'; "
                                                    r"did you mean 'random'\?"),
    (edited(SIM, "chip.faults", {"kind": "random", "rate_off": 1.5}), r"chip\.faults\.rate_off: 1\.5 is out of range"),
    (edited(SIM, "chip.faults", {"kind": "pattern", "pattern": "rign"}), r"chip\.faults\.pattern: unknown pattern "
                                                                         r"'rign'; did you mean 'ring'\?"),
    (edited(SIM, "chip.arrays", [{"name": "A", "rows": 4, "cols": 4}, {"name": "A", "rows": 4, "cols": 4}]),
     r"chip\.arrays\[1\]\.name: array name 'A' used twice"),
    (edited(SIM, "chip.arrays", [{"name": "A", "rows": 0, "cols": 4}]), r"chip\.arrays\[0\]\.rows: 0 is out of range"),
    (edited(SIM, "chip.variation", {"read_noize_scale": 0}), r"chip\.variation\.read_noize_scale: unknown key "
                                                             r"'read_noize_scale'; did you mean 'read_noise_scale'\?"),
])
def test_bad_bench_files_name_field_and_problem(data, match):
    with pytest.raises(BenchFileError, match=match):
        parse_bench(data, source="lab.yaml")


def test_matrix_wiring_is_checked():
    data = yaml.safe_load(open("examples/benches/simulated_matrix.yaml").read())
    with pytest.raises(BenchFileError, match=r"wiring\.matrix\.array: 24x30 needs 78 matrix columns"):
        parse_bench(edited(data, "wiring.matrix.array", {"rows": 24, "cols": 30}))
    with pytest.raises(BenchFileError, match=r"wiring\.matrix\.rows: no matrix row carries the gate input"):
        parse_bench(edited(data, "wiring.matrix.rows", {"A": "read", "B": "pulse"}))
    with pytest.raises(BenchFileError, match=r"does not match the simulated chip's single array 16x16"):
        parse_bench(edited(data, "wiring.matrix.array", {"rows": 8, "cols": 8}))


def test_file_errors(tmp_path):
    with pytest.raises(BenchFileError, match="cannot be read"):
        load_bench_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("instruments: [unclosed")
    with pytest.raises(BenchFileError, match="not valid YAML"):
        load_bench_file(bad)


def test_examples_are_valid():
    assert load_bench_file("examples/benches/real_lab.yaml").simulated is False
    assert load_bench_file("examples/benches/simulated.yaml").simulated is True
    assert load_bench_file("examples/benches/simulated_matrix.yaml").wiring["sense"] == "read"


@given(st.dictionaries(st.sampled_from(["v_line_max", "v_gate_max", "i_compliance", "pulse_width_max",
                                        "pulse_width_min"]),
                       st.floats(-1.0, 20.0, allow_nan=False), min_size=5))
@settings(max_examples=150, deadline=None)
def test_limits_are_accepted_exactly_when_in_range(values):
    # the schema's bounds, then what the wired instruments can do: 81160A highs up to 5 V on the
    # lines, the board's 0-5 V DAC on the gate, the 2450's 1 nA smallest current limit
    ranges = {"v_line_max": 5, "v_gate_max": 5, "i_compliance": 0.1, "pulse_width_max": 1, "pulse_width_min": 1}
    data = edited(REAL, "limits", values)
    ok = all(0 < v <= ranges[k] for k, v in values.items()) and values["pulse_width_min"] >= 1.5e-9 \
        and values["pulse_width_min"] <= values["pulse_width_max"] and values["i_compliance"] >= 1e-9
    if ok:
        limits = parse_bench(data).limits
        assert limits.v_line_max == values["v_line_max"] and limits.pulse_width_min == values["pulse_width_min"]
    else:
        with pytest.raises(BenchFileError, match=r"limits\.\w+"):
            parse_bench(data)


def test_chip_faults_random_pattern_and_file(tmp_path):
    arrays = [{"name": "A", "rows": 16, "cols": 16}]
    with hil.open_bench(chip={"arrays": arrays, "faults": {"kind": "random", "rate_off": 0.1, "rate_on": 0.05,
                                                            "seed": 7}}) as b:
        np.testing.assert_array_equal(b.sim.arrays["A"].true_fault_codes, random_fault_codes(16, 16, 0.1, 0.05, 7))
    with hil.open_bench(chip={"arrays": arrays, "faults": {"kind": "pattern", "pattern": "ring", "size": 0.3,
                                                            "stuck": "on"}}) as b:
        np.testing.assert_array_equal(b.sim.arrays["A"].true_fault_codes,
                                      pattern_fault_codes("ring", 16, 16, 0.3, "on"))
    codes = np.zeros((16, 16), np.int8)
    codes[3, 4], codes[5, 6] = 1, 2
    np.save(tmp_path / "codes.npy", codes)
    data = edited(SIM, "chip.faults", {"kind": "file", "path": "codes.npy"})
    data["chip"]["arrays"] = arrays
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(data))
    with hil.open_bench(tmp_path / "bench.yaml") as b:  # the path is relative to the bench file
        np.testing.assert_array_equal(b.sim.arrays["A"].true_fault_codes, codes)
        g = b.read_row(3, [4], 0.2, 3.0)
        on = b.read_row(5, [6], 0.2, 3.0)
        assert on[0] > 30 * g[0]


def test_device_model_and_seed_are_honoured():
    chip = {"arrays": [{"name": "A", "rows": 4, "cols": 4}], "device_model": "cute_multilevel", "seed": 11}
    with hil.open_bench(chip=chip) as a, hil.open_bench(chip=chip) as b:
        assert type(a.sim.arrays["A"].model).__name__ == "CuTeMultilevelModel"
        np.testing.assert_array_equal(a.sim.arrays["A"].rate_factor, b.sim.arrays["A"].rate_factor)
