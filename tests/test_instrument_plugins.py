"""Instrument plug-ins: one registry, identity checked on open, compliance from the instrument,
pulse-then-read trains through the bench, and the Keysight B2900 bench end to end."""
import copy

import numpy as np
import pytest
import yaml

import hil
from drivers.keithley2450 import Keithley2450
from hil import instruments
from hil.bench import InstrumentIdentityError, build_bench, served_bench_data, served_simulation, simulated_bench_file
from hil.benchfile import BenchFileError, load_bench_file, parse_bench
from hil.instruments import keithley2450 as k2450_plugin
from simulated_bench.instruments import Keithley2450Emulator

SIM = yaml.safe_load(simulated_bench_file().read_text())
QUIET = {"read_noise_scale": 0.0, "c2c_rate_sigma": 0.0}
V_READ, V_GATE = 0.2, 3.0


def small(data, rows=4, cols=4, **chip):
    data = copy.deepcopy(data)
    data["chip"].update(arrays=[{"name": "A", "rows": rows, "cols": cols}], variation=QUIET, **chip)
    return data


def truth(arr, row, cols):
    return arr.read_row(row, cols, V_READ, V_GATE, noisy=False) / V_READ


# --------------------------------------------------------------------------------------
# registry: a new model is one plug-in and one registration, nothing else
# --------------------------------------------------------------------------------------
class AcmeEmulator(Keithley2450Emulator):
    """A lab's own SMU speaking 2450 SCPI, identifying as itself."""

    idn = "ACME Instruments,SM-1,A0001,0.9"
    model = "acme-sm1"


class AcmeDriver(Keithley2450):
    def __init__(self, adapter, name="ACME SM-1", **kwargs):
        super().__init__(adapter, name, **kwargs)


class AcmePlugin(instruments.InstrumentPlugin):
    model = "acme-sm1"
    description = "ACME SM-1 (2450-compatible SCPI)"
    roles = frozenset({"read", "gate"})
    idn_model = r"SM-1"
    v_range = (-20.0, 20.0)
    i_compliance_range = (1e-9, 0.1)
    emulator = f"{__name__}:AcmeEmulator"

    @classmethod
    def driver_class(cls):
        return AcmeDriver

    @classmethod
    def source(cls, station, name, channel, i_compliance):
        return k2450_plugin.Keithley2450Source(station, name, channel, i_compliance)


@pytest.fixture
def acme():
    instruments.register(AcmePlugin)
    yield AcmePlugin
    instruments.unregister(AcmePlugin.model)


def test_registered_plugin_serves_a_bench_with_no_other_edit(acme, tmp_path):
    data = small(SIM)
    data["instruments"]["smu"] = {"model": "acme-sm1", "address": "sim://smu"}
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(data))
    with hil.open_bench(path) as bench:
        assert bench.identity["instruments"]["smu"]["idn_model"] == "SM-1"
        assert bench.identity["instruments"]["smu"]["serial"] == "A0001"
        bench.pulse_row(1, [2], 2.0, 1e-6, 1.5)
        g = bench.read_row(1, [1, 2], V_READ, V_GATE)
        np.testing.assert_allclose(g, truth(bench.sim.arrays["A"], 1, [1, 2]), rtol=1e-6)
        assert g[1] > 10 * g[0]
        sim = bench.sim
    assert not sim.emulators["smu"].output
    # its facts reach the schema: its roles, its ranges, its name in suggestions
    data["wiring"]["pulse"] = "smu"
    with pytest.raises(BenchFileError, match=r"wiring\.pulse: a acme-sm1 cannot serve as pulse"):
        parse_bench(data)
    data = small(SIM)
    data["instruments"]["smu"] = {"model": "acme-sm2", "address": "sim://smu"}
    with pytest.raises(BenchFileError, match=r"unknown instrument model 'acme-sm2'; did you mean 'acme-sm1'\?"):
        parse_bench(data)


def test_unregistered_model_is_unknown_again(acme):
    instruments.unregister(acme.model)
    assert "acme-sm1" not in instruments.models()
    with pytest.raises(KeyError, match="unknown instrument model 'acme-sm1'"):
        instruments.plugin_for("acme-sm1")
    instruments.register(acme)  # the fixture removes it again


def test_every_model_is_listed_once_with_consistent_facts():
    names = [p.model for p in instruments.PLUGINS]
    assert len(names) == len(set(names))
    for p in instruments.PLUGINS:
        assert p.roles and p.roles <= set(instruments.base.ROLE_NAMES), p.model
        assert p.kind in ("visa", "serial")
        assert p.emulator_class().model == p.model  # its simulated twin answers as that model
        if "pulse" in p.roles:
            assert p.pulse_width_range is not None and 0 < p.pulse_width_range[0] < p.pulse_width_range[1]
        if p.v_range is not None:
            assert p.v_range[0] < p.v_range[1]
        # the emulator's identification is recognised by this plug-in and by no other
        ident = instruments.parse_idn(p.emulator_class().idn) if p.emulator_class().idn else None
        if ident is None:  # emulators that build their *IDN? per instance
            continue
        assert p.matches(ident), p.model
        assert instruments.identify_model(ident) == p.model


def test_no_model_name_is_switched_on_outside_its_plugin():
    """The model strings live in hil/instruments only (plus the emulators' own registry)."""
    import pathlib

    offenders = []
    for path in pathlib.Path("hil").rglob("*.py"):
        if "instruments" in path.parts:
            continue
        text = path.read_text()
        for p in instruments.PLUGINS:
            if f'"{p.model}"' in text or f"'{p.model}'" in text:
                offenders.append((str(path), p.model))
    assert offenders == []


# --------------------------------------------------------------------------------------
# identity
# --------------------------------------------------------------------------------------
def test_wrong_instrument_at_an_address_is_refused_before_anything_is_sent():
    spec = load_bench_file(simulated_bench_file(), {"chip": {"arrays": [{"name": "A", "rows": 4, "cols": 4}]}})
    sim, served = served_simulation(spec)
    try:
        for emu in sim.emulators.values():
            emu.transcript = []
        data = served_bench_data(spec, served)
        data["instruments"]["smu"]["model"] = "keithley2600b"  # the bench file is wrong: a 2450 answers
        with pytest.raises(InstrumentIdentityError) as err:
            build_bench(parse_bench(data))
        text = str(err.value)
        assert "instruments.smu" in text and "'KEITHLEY INSTRUMENTS,MODEL 2450,04455011,1.7.12b'" in text
        assert "not a keithley2600b" in text and "set instruments.smu.model to keithley2450" in text
        sent = {name: [line for line in emu.transcript if line] for name, emu in sim.emulators.items()}
        assert sent["smu"] == ["*IDN?"] and sent["pulser"] == [] and sent["board"] == []
        # the same bench opened with the right model works and reports what answered
        data["instruments"]["smu"]["model"] = "keithley2450"
        with build_bench(parse_bench(data)) as bench:
            ids = bench.identity["instruments"]
            assert (ids["smu"]["serial"], ids["pulser"]["idn_model"], ids["board"]["firmware"]) == \
                ("04455011", "81160A", "1.2.0")
            assert bench.identity["bench_file_sha256"] == parse_bench(data).sha256
            assert bench.identity["device"]["chip_id"] == "SIM-STANFORD-64"
    finally:
        served.close()


def test_device_arrays_must_match_what_the_addresser_reaches():
    spec = load_bench_file(simulated_bench_file(), {"chip": {"arrays": [{"name": "A", "rows": 4, "cols": 4}]}})
    sim, served = served_simulation(spec)
    try:
        data = served_bench_data(spec, served)
        data["device"]["arrays"] = [{"name": "A", "rows": 64, "cols": 64}]
        with pytest.raises(InstrumentIdentityError, match=r"device\.arrays: the bench file says A:64x64 but the "
                                                          r"addresser board reaches A:4x4"):
            build_bench(parse_bench(data))
        assert not sim.emulators["smu"].output
    finally:
        served.close()


def test_real_bench_device_chooses_the_presets(tmp_path):
    from protocols.ispp import CUTE_ISPP, preset_for

    spec = load_bench_file(simulated_bench_file(), {"chip": {"arrays": [{"name": "A", "rows": 4, "cols": 4}]}})
    sim, served = served_simulation(spec)
    try:
        data = served_bench_data(spec, served)  # no chip section: a real bench as far as hil knows
        assert "chip" not in data
        data["device"] = {"model": "cute_multilevel", "chip_id": "CUTE-W3-D17"}
        with build_bench(parse_bench(data)) as bench:
            assert bench.metadata["device_model"] == "cute_multilevel" and bench.metadata["chip_id"] == "CUTE-W3-D17"
            assert preset_for(bench) == CUTE_ISPP
    finally:
        served.close()


# --------------------------------------------------------------------------------------
# compliance from the instrument
# --------------------------------------------------------------------------------------
def test_read_compliance_is_the_instruments_trip_status():
    with hil.open_bench(chip={"arrays": [{"name": "A", "rows": 4, "cols": 4}], "variation": QUIET},
                        limits={"i_compliance": 2e-6}) as bench:
        bench.pulse_row(0, [1, 2], 2.0, 1e-4, 1.5)  # two LRS cells: ~0.2 V x 2 x 120 uS >> 2 uA
        bench.read_row(0, None, V_READ, V_GATE)
        assert bench.read_tripped()
        bench.read_row(0, [0], V_READ, V_GATE)  # one HRS cell: ~1 uA
        assert not bench.read_tripped()


def test_matrix_bench_reads_trip_status_of_the_column_read():
    with hil.open_bench("examples/benches/simulated_matrix.yaml", limits={"i_compliance": 1e-5},
                        chip={"variation": QUIET}) as bench:
        bench.pulse_row(0, [1], 2.0, 1e-4, 1.5)
        g = bench.read_row(0, [0, 1], V_READ, V_GATE)
        assert bench.read_tripped() and g[1] == pytest.approx(1e-5 / V_READ, rel=1e-3)  # capped, not measured
        bench.read_row(0, [0], V_READ, V_GATE)
        assert not bench.read_tripped()


# --------------------------------------------------------------------------------------
# pulse-then-read trains through the bench
# --------------------------------------------------------------------------------------
def test_2600b_pulse_read_train_through_the_bench():
    with hil.open_bench("examples/benches/simulated_matrix.yaml", chip={"variation": QUIET}) as bench:
        arr = bench.sim.arrays["A"]
        twin = copy.deepcopy(arr)
        assert bench.can_pulse_read
        levels = [1.4, 1.6, 1.8, 2.0]
        smu = bench.sim.emulators["smu"]
        with smu.recording() as sent:
            g = bench.pulse_read_cell(2, 3, levels, 2e-4, V_READ, 1.5)
        expected = []
        for v in levels:
            twin.pulse_row(2, [3], v, 2e-4, 1.5)
            expected.append(twin.read_row(2, [3], V_READ, 1.5, noisy=False)[0] / V_READ)
        np.testing.assert_allclose(g, expected, rtol=1e-5)
        assert np.all(np.diff(g) > 0)  # the train programmed the cell step by step
        assert sum(line.startswith("hilPulseReadRun(") for line in sent) == 1  # one call runs the whole train
        with smu.recording() as sent:
            with pytest.raises(hil.LimitError, match="outside what the read SMU times"):
                bench.pulse_read_cell(2, 3, levels, 5e-5, V_READ, 1.5)  # below the 2600B's 100 us
            with pytest.raises(hil.LimitError):
                bench.pulse_read_cell(2, 3, [1.0, 3.5], 2e-4, V_READ, 1.5)  # one level beyond v_line_max
        assert sent == []


def test_pulse_read_needs_an_smu_that_times_pulses():
    with hil.open_bench(chip={"arrays": [{"name": "A", "rows": 4, "cols": 4}]}) as bench:
        assert not bench.can_pulse_read
        with pytest.raises(RuntimeError, match="cannot run pulse-read trains"):
            bench.pulse_read_cell(0, 0, [1.0], 1e-4, V_READ, 1.5)


# --------------------------------------------------------------------------------------
# the Keysight B2900 bench, end to end
# --------------------------------------------------------------------------------------
def test_b2900_bench_end_to_end():
    from protocols.ispp import CONVERGED, CUTE_ISPP, program, preset_for

    with hil.open_bench("examples/benches/simulated_b2900.yaml",
                        chip={"arrays": [{"name": "A", "rows": 4, "cols": 6}], "variation": QUIET}) as bench:
        ident = bench.identity["instruments"]["smu"]
        assert (ident["model"], ident["idn_model"]) == ("keysightb2900", "B2902A")
        assert bench.metadata["device_model"] == "cute_multilevel"
        arr = bench.sim.arrays["A"]
        g = bench.read_row(1, None, V_READ, V_GATE)
        np.testing.assert_allclose(g, truth(arr, 1, np.arange(6)), rtol=1e-5)
        bench.pulse_row(1, [4], 2.0, 1e-4, 1.5)  # SET from channel 2 on the PULSE input
        g2 = bench.read_row(1, [3, 4], V_READ, V_GATE)
        assert g2[1] > 10 * g2[0]
        bench.pulse_row(1, [4], -2.5, 1e-4, 4.5)  # RESET through the source line
        assert bench.read_row(1, [4], V_READ, V_GATE)[0] < g2[1] / 5
        with pytest.raises(hil.LimitError):
            bench.pulse_row(1, [4], 2.0, 1e-5, 1.5)  # shorter than the B2900 times
        train = bench.pulse_read_cell(2, 0, [1.2, 1.5, 1.8], 1e-4, V_READ, 1.5)  # channel 1 on the read route
        assert train.shape == (3,) and train[-1] > train[0]
        # a protocol runs on it unchanged, with the presets of the device the bench file names
        assert preset_for(bench) == CUTE_ISPP
        target = np.array([[40e-6, 80e-6, 120e-6]])
        result = program(bench, target, rows=[3], cols=[0, 1, 2])
        assert np.all(result.status == CONVERGED)
        g_true = truth(arr, 3, [0, 1, 2])
        assert np.all(np.abs(g_true - target[0]) <= 0.06 * target[0])  # the cells hold their targets
        sim = bench.sim
    smu = sim.emulators["smu"]
    assert not any(ch.output for ch in smu.channels.values())
    assert sim.emulators["board"].route == "OFF" and sim.emulators["board"].wl == 0.0


def test_one_channel_b2900_variant_refuses_wiring_on_channel_2():
    spec = load_bench_file("examples/benches/simulated_b2900.yaml", {"chip": {"arrays": [{"name": "A", "rows": 4,
                                                                                         "cols": 4}]}})
    sim, served = served_simulation(spec)
    try:
        sim.emulators["smu"].idn = "Keysight Technologies,B2901A,MY51140001,3.4.2011.5100"  # one output only
        with pytest.raises(InstrumentIdentityError, match=r"instruments\.smu: a B2901A has one channel, but the "
                                                          r"wiring uses channel\(s\) 2"):
            build_bench(parse_bench(served_bench_data(spec, served)))
        assert not any(ch.output for ch in sim.emulators["smu"].channels.values())
    finally:
        served.close()


def test_instrument_silent_at_identification_is_named():
    spec = load_bench_file(simulated_bench_file(), {"chip": {"arrays": [{"name": "A", "rows": 4, "cols": 4}]}})
    sim, served = served_simulation(spec)
    try:
        data = served_bench_data(spec, served)
        for entry in data["instruments"].values():
            entry["timeout"] = 0.3
        board = sim.emulators["board"]
        board.handle_line = lambda line: None
        with pytest.raises(hil.BenchConnectionError, match=r"board \(rram-hil-ab64 at .*\) did not answer while "
                                                           r"identifying itself \(\*IDN\?\) \(timeout 0\.3 s\)"):
            build_bench(parse_bench(data))
    finally:
        served.close()


def test_a_role_asked_for_a_capability_it_lacks_says_which():
    """The base roles' optional capabilities (a script-driven selector, an externally triggered
    pulser) refuse with RoleNotServed, the error the plug-ins raise for a role they do not serve."""
    from hil.instruments.base import RoleNotServed
    from hil.roles import Pulser, Selector

    def bare(role):
        return type(f"Bare{role.__name__}", (role,), {m: lambda *a, **k: None for m in role.__abstractmethods__})()

    with pytest.raises(RoleNotServed, match="no link_node"):
        bare(Selector).cell_routes(0, [1, 2])
    with pytest.raises(RoleNotServed, match="can_trigger is False"):
        bare(Pulser).arm([0.5], 1e-6)
