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


# --------------------------------------------------------------------------------------
# what a careless or unlucky user writes
# --------------------------------------------------------------------------------------
def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    text = open("examples/benches/real_lab.yaml").read().replace(
        "limits:", "limits:\n  v_gate_max: 9.0", 1)  # v_gate_max given twice: PyYAML would keep the last
    path.write_text(text)
    with pytest.raises(BenchFileError, match=rf"bench file {path}: .*key 'v_gate_max' appears twice"):
        load_bench_file(path)


def test_binary_garbage_is_a_bench_file_error(tmp_path):
    for k, blob in enumerate([bytes(range(256)), b"\x89PNG\r\n\x1a\n\x00\x00", b"\x00" * 8, b"name: x\n\xff\xfe"]):
        path = tmp_path / f"garbage{k}.yaml"
        path.write_bytes(blob)
        with pytest.raises(BenchFileError, match=rf"bench file {path}: "):
            load_bench_file(path)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_infinite_limits_name_the_field(tmp_path, value):
    path = tmp_path / "nan.yaml"
    path.write_text(open("examples/benches/real_lab.yaml").read().replace("v_line_max: 2.5", f"v_line_max: {value}"))
    with pytest.raises(BenchFileError, match=rf"bench file {path}: limits\.v_line_max: must be a finite number"):
        load_bench_file(path)


def test_limits_beyond_an_instruments_range_are_refused_on_load():
    with pytest.raises(BenchFileError, match=r"limits\.v_gate_max: 9 V is beyond what 'board' \(rram-hil-ab64, on "
                                             r"the gate input\) can source \(0 to 5 V\)"):
        parse_bench(edited(REAL, "limits.v_gate_max", 9.0), source="lab.yaml")
    with pytest.raises(BenchFileError, match=r"limits\.v_line_max: 6 V is beyond what 'pulser' \(keysight81160a"):
        parse_bench(edited(REAL, "limits.v_line_max", 6.0))
    with pytest.raises(BenchFileError, match=r"limits\.pulse_width_min: 5e-05 s is out of range: the keithley2600b"):
        data = yaml.safe_load(open("examples/benches/simulated_matrix.yaml").read())
        data["instruments"]["pulser"] = {"model": "keithley2600b", "address": "sim://pulser"}
        data["wiring"]["pulse"] = "pulser.a"
        parse_bench(edited(data, "limits.pulse_width_min", 5e-5))


def test_fault_map_files_missing_or_bad_name_file_and_field(tmp_path):
    data = edited(SIM, "chip.faults", {"kind": "file", "path": "codes.npy"})
    data["chip"]["arrays"] = [{"name": "A", "rows": 4, "cols": 4}]
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(BenchFileError, match=rf"bench file {path}: chip\.faults\.path: fault-map file "
                                             rf"'{tmp_path / 'codes.npy'}' does not exist"):
        load_bench_file(path)
    (tmp_path / "codes.npy").write_bytes(b"not numpy")
    with pytest.raises(BenchFileError, match=r"chip\.faults\.path: fault-map file .* is not a \.npy array"):
        load_bench_file(path)
    for bad, match in ((np.zeros((4, 5), np.int8), r"has shape \(4, 5\), the array is \(4, 4\)"),
                       (np.full((4, 4), 0.6), "whole-number codes"),
                       (np.full((4, 4), 257), r"holds code 257 at \(0, 0\)")):
        np.save(tmp_path / "codes.npy", bad)
        with pytest.raises(BenchFileError, match=rf"chip\.faults\.path: .*{match}"):
            load_bench_file(path)


def test_exported_fault_codes_including_unreliable_are_accepted(tmp_path):
    from hil.faultmap import CODE_NAMES, NOT_SCANNED, STUCK_OFF, STUCK_ON, UNRELIABLE, WORKING

    codes = np.zeros((4, 4), np.int8)
    codes[0, 1], codes[1, 2], codes[2, 3], codes[3, 0] = STUCK_OFF, STUCK_ON, UNRELIABLE, NOT_SCANNED
    assert set(np.unique(codes)) <= set(CODE_NAMES)
    np.save(tmp_path / "exported.npy", codes)
    data = edited(SIM, "chip.faults", {"kind": "file", "path": "exported.npy"})
    data["chip"]["arrays"] = [{"name": "A", "rows": 4, "cols": 4}]
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(data))
    with hil.open_bench(tmp_path / "bench.yaml") as bench:
        truth = bench.sim.arrays["A"].true_fault_codes
    # the chip's own devices: stuck ones stuck, an unreliable or unscanned cell a live device
    expected = np.where(np.isin(codes, (STUCK_OFF, STUCK_ON)), codes, WORKING)
    np.testing.assert_array_equal(truth, expected)


def test_device_section_is_required_on_a_real_bench_and_typed():
    with pytest.raises(BenchFileError, match=r"device: missing section: say which chip is on the bench"):
        parse_bench(edited(REAL, "device", delete=True))
    with pytest.raises(BenchFileError, match=r"device\.model: unknown device model 'cute'; did you mean "
                                             r"'cute_multilevel'\?"):
        parse_bench(edited(REAL, "device.model", "cute"))
    with pytest.raises(BenchFileError, match=r"device\.chip_i: unknown key 'chip_i'; did you mean 'chip_id'\?"):
        parse_bench(edited(REAL, "device.chip_i", "x"))
    spec = parse_bench(edited(REAL, "device", {"model": "cute_multilevel", "chip_id": "CUTE-W3-D17",
                                               "arrays": [{"name": "A", "rows": 64, "cols": 64}]}))
    assert (spec.device.model, spec.device.chip_id, spec.device.array_shapes()) == \
        ("cute_multilevel", "CUTE-W3-D17", {"A": (64, 64)})
    sim = parse_bench(SIM)  # a simulated bench's device is its chip
    assert (sim.device.model, sim.device.chip_id) == ("stanford_gap", "SIM-STANFORD-64")
    with pytest.raises(BenchFileError, match=r"device\.model: cute_multilevel but the simulated chip is stanford_gap"):
        parse_bench(edited(SIM, "device", {"model": "cute_multilevel", "chip_id": "SIM-STANFORD-64"}))


def test_bench_file_hash_ignores_comments_and_key_order():
    text = open("examples/benches/real_lab.yaml").read()
    a = parse_bench(yaml.safe_load(text))
    b = parse_bench(dict(reversed(list(yaml.safe_load(text + "\n# a comment\n").items()))))
    assert a.sha256 == b.sha256
    assert parse_bench(edited(REAL, "limits.v_line_max", 2.0)).sha256 != a.sha256


# hypothesis: any edit of a valid bench file gives a spec or a BenchFileError, never anything else
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
                    st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                             max_size=2))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _paths(v, prefix + (k,))


@st.composite
def _mutated(draw):
    data = copy.deepcopy(draw(st.sampled_from([SIM, REAL])))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        node = data
        for key in path[:-1]:
            node = node[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(node, dict):
            del node[path[-1]]
        elif action == "add" and isinstance(node, dict):
            node[draw(st.text(max_size=10))] = draw(_LEAVES)
        else:
            node[path[-1]] = draw(_LEAVES)
    return data


@given(_mutated())
@settings(max_examples=300, deadline=None)
def test_fuzzed_bench_files_give_a_spec_or_a_clear_error(data):
    try:
        spec = parse_bench(data, source="fuzz.yaml")
    except BenchFileError as exc:
        text = str(exc)
        assert text.startswith("bench file fuzz.yaml: ") and "\n" not in text.strip()
        where = text.split(": ", 2)[1]
        assert where  # a field (or "top level") is always named
        return
    # accepted: the limits are finite and inside the schema's bounds
    for value in (spec.limits.v_line_max, spec.limits.v_gate_max, spec.limits.i_compliance):
        assert np.isfinite(value) and value > 0


@given(st.binary(max_size=200))
@settings(max_examples=150, deadline=None)
def test_fuzzed_bytes_never_escape_as_anything_but_bench_file_error(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("fuzz") / "bench.yaml"
    path.write_bytes(blob)
    with pytest.raises(BenchFileError, match=rf"bench file {path}: "):
        load_bench_file(path)


def test_driver_options_come_from_the_plugin_schema():
    ok = parse_bench(edited(REAL, "instruments.smu.options", {"visa_library": "@py", "query_delay": 0.01}))
    assert dict(ok.instruments["smu"].options) == {"visa_library": "@py", "query_delay": 0.01}
    with pytest.raises(BenchFileError, match=r"instruments\.smu\.options\.visa_libary: unknown option 'visa_libary' "
                                             r"for a keithley2450; did you mean 'visa_library'\?"):
        parse_bench(edited(REAL, "instruments.smu.options", {"visa_libary": "@py"}))
    with pytest.raises(BenchFileError, match=r"instruments\.board\.options\.baud: unknown option 'baud' for a "
                                             r"rram-hil-ab64; it takes no options"):
        parse_bench(edited(REAL, "instruments.board.options", {"baud": 9600}))
    with pytest.raises(BenchFileError, match=r"instruments\.smu\.options\.query_delay: must be a finite number"):
        parse_bench(edited(REAL, "instruments.smu.options", {"query_delay": float("nan")}))
