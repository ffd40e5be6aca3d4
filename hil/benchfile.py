"""Bench files: YAML descriptions of a bench, validated with errors that name the field.

A bench file lists the instruments (model and address), how their outputs reach the
addresser's inputs (``wiring``), the hard limits, and, for a simulated bench only, the
simulated chip behind the instruments (``chip``). Layout::

    name: my-bench
    instruments:
      smu:    {model: keithley2450,   address: "TCPIP0::192.168.0.10::inst0::INSTR"}
      pulser: {model: keysight81160a, address: "GPIB0::10::INSTR"}
      board:  {model: rram-hil-ab64,  address: /dev/ttyUSB0}
    wiring:
      addresser: board      # the instrument that routes inputs to chip lines
      read: smu             # source on the READ input (instrument or instrument.channel)
      pulse: pulser.1       # source on the PULSE input
      gate: board           # word-line supply (the board's DAC or an SMU channel)
      sense: board          # per-bit-line sense: the board's channels, or "read" (column by column)
    limits: {v_line_max: 3.0, v_gate_max: 5.0, i_compliance: 1.0e-3,
             pulse_width_min: 1.5e-9, pulse_width_max: 1.0e-2}

An instrument entry may also give ``timeout`` (s, default 2) and ``options`` (keyword
arguments for its driver, e.g. ``visa_library: "@py"``). Models: ``keithley2450``,
``keithley2600b`` (channels ``a``/``b``), ``keysight81160a`` (channels ``1``/``2``),
``rram-hil-ab64`` (the addressing board, serial), ``keithley707b`` (switch matrix; its
``wiring.matrix`` maps matrix rows to inputs and gives the array size, see
``examples/benches/simulated_matrix.yaml``).

Addresses of simulated benches are ``sim://NAME`` (VISA-style instruments) and
``hilsim://NAME`` (serial instruments); their ``chip`` section is described in
``hil/benches/simulated.yaml``.
"""
from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from simulated_bench.aging import AgingParams
from simulated_bench.faults import PATTERNS

from .roles import Limits


class BenchFileError(ValueError):
    """A bench file that cannot describe a bench; the message names the field."""


@dataclass(frozen=True)
class ModelInfo:
    """What the bench needs to know of an instrument model before opening it."""

    kind: str  # "visa" or "serial"
    channels: tuple[str, ...] = ()  # endpoint suffixes ("1", "2", "a", "b"); () = single output
    roles: tuple[str, ...] = ()  # what it can do in the wiring
    pulse_width_min: float | None = None  # s, shortest pulse it can make (pulsers)


MODELS: dict[str, ModelInfo] = {
    "keithley2450": ModelInfo("visa", (), ("read", "gate")),
    # pulses timed by the SMU itself (TSP delay): practical down to ~100 us
    "keithley2600b": ModelInfo("visa", ("a", "b"), ("read", "pulse", "gate"), pulse_width_min=100e-6),
    "keysight81160a": ModelInfo("visa", ("1", "2"), ("pulse",), pulse_width_min=1.5e-9),
    "rram-hil-ab64": ModelInfo("serial", (), ("addresser", "gate", "sense")),
    "keithley707b": ModelInfo("visa", (), ("addresser",)),
}

TOP_KEYS = ("name", "description", "chip", "instruments", "wiring", "limits")
INSTRUMENT_KEYS = ("model", "address", "timeout", "options")
WIRING_KEYS = ("addresser", "read", "pulse", "gate", "sense", "matrix")
LIMIT_RANGES = {  # field -> (exclusive lower bound, inclusive upper bound), SI units
    "v_line_max": (0.0, 10.0),
    "v_gate_max": (0.0, 10.0),
    "i_compliance": (0.0, 0.1),
    "pulse_width_max": (0.0, 1.0),
    "pulse_width_min": (0.0, 1.0),
}
REQUIRED_LIMITS = ("v_line_max", "v_gate_max", "i_compliance", "pulse_width_max")
CHIP_KEYS = ("id", "device_model", "seed", "arrays", "faults", "variation", "initial_state", "engine", "wires",
             "aging")
ARRAY_KEYS = ("name", "rows", "cols", "faults", "seed", "initial_state")
DEVICE_MODELS = ("stanford_gap", "cute_multilevel")
FAULT_KEYS = {"none": ("kind",), "random": ("kind", "rate_off", "rate_on", "seed"),
              "pattern": ("kind", "pattern", "size", "stuck"), "file": ("kind", "path")}
VARIATION_KEYS = ("d2d_rate_sigma", "d2d_bound_sigma", "c2c_rate_sigma", "read_noise_scale")
ENGINES = ("numpy", "spice")  # the simulated chip's physics: vectorised numpy, or ngspice (small arrays)
WIRE_KEYS = ("r_wl", "r_bl", "r_sl")  # ohms per line segment
MATRIX_KEYS = ("rows", "array")
MATRIX_LINES = 72  # six 8x12 cards: bit lines, then source lines, then word lines
SIM_SCHEMES = ("sim://", "hilsim://")


@dataclass(frozen=True)
class InstrumentSpec:
    name: str
    model: str
    address: str
    timeout: float = 2.0
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def info(self) -> ModelInfo:
        return MODELS[self.model]


@dataclass(frozen=True)
class BenchSpec:
    """A validated bench file."""

    name: str
    instruments: Mapping[str, InstrumentSpec]
    wiring: Mapping[str, Any]
    limits: Limits
    chip: Mapping[str, Any] | None = None
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self.chip is not None

    def to_yaml(self) -> str:
        """The bench file as YAML (for run records)."""
        return yaml.safe_dump(dict(self.raw), sort_keys=False)


def _fail(where: str, problem: str, source: str = "") -> BenchFileError:
    prefix = f"bench file {source}: " if source else "bench file: "
    return BenchFileError(f"{prefix}{where}: {problem}")


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(map(str, choices))}"


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str) -> BenchFileError:
        return _fail(where, problem, self.source)

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"must be a mapping, got {type(value).__name__}")
        return value

    def keys(self, value: Mapping[str, Any], allowed, where: str) -> None:
        for key in value:
            if key not in allowed:
                raise self.fail(f"{where}.{key}" if where else str(key), f"unknown key {key!r}" + _suggest(key, allowed))

    def number(self, value: Any, where: str, lo: float | None = None, hi: float | None = None,
               integer: bool = False, lo_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, got {value!r}")
        if integer and int(value) != value:
            raise self.fail(where, f"must be a whole number, got {value!r}")
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise self.fail(where, f"{value!r} is out of range: must be {'>' if lo_open else '>='} {lo:g}")
        if hi is not None and value > hi:
            raise self.fail(where, f"{value!r} is out of range: must be <= {hi:g}")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, f"must be a non-empty string, got {value!r}")
        return value


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_bench_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> BenchSpec:
    """Read and validate a bench file; ``overrides`` are merged over its sections first."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise BenchFileError(f"bench file {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BenchFileError(f"bench file {path}: not valid YAML ({exc})") from None
    return parse_bench(data, source=path, overrides=overrides)


def parse_bench(data: Any, source: Path | str | None = None,
                overrides: Mapping[str, Any] | None = None) -> BenchSpec:
    """Validate a bench description (already parsed from YAML)."""
    src = str(source) if source is not None else ""
    c = _Checker(src)
    data = c.mapping(data, "top level")
    if overrides:
        data = _merge(data, overrides)
    c.keys(data, TOP_KEYS, "")
    for key in ("instruments", "wiring", "limits"):
        if key not in data:
            raise c.fail(key, "missing section")
    chip = _check_chip(c, data["chip"]) if data.get("chip") is not None else None
    instruments = _check_instruments(c, data["instruments"], simulated=chip is not None)
    wiring = _check_wiring(c, data["wiring"], instruments)
    limits = _check_limits(c, data["limits"], instruments, wiring)
    if chip is not None and "matrix" in wiring:
        first = chip["arrays"][0]
        shape = wiring["matrix"]["array"]
        if len(chip["arrays"]) != 1 or (first["rows"], first["cols"]) != (shape["rows"], shape["cols"]):
            raise c.fail("wiring.matrix.array",
                         f"{shape['rows']}x{shape['cols']} does not match the simulated chip's single array "
                         f"{first['rows']}x{first['cols']} (a switch-matrix bench addresses one array)")
    name = str(data.get("name") or (Path(src).stem if src else "bench"))
    return BenchSpec(name, instruments, wiring, limits, chip,
                     Path(source) if source is not None else None, data)


def _check_instruments(c: _Checker, section: Any, simulated: bool) -> dict[str, InstrumentSpec]:
    section = c.mapping(section, "instruments")
    if not section:
        raise c.fail("instruments", "no instruments listed")
    out = {}
    for name, entry in section.items():
        where = f"instruments.{name}"
        if not isinstance(name, str) or "." in name:
            raise c.fail(where, "instrument names are strings without dots")
        entry = c.mapping(entry, where)
        c.keys(entry, INSTRUMENT_KEYS, where)
        if "model" not in entry:
            raise c.fail(f"{where}.model", "missing instrument model" + _suggest("", MODELS))
        model = str(entry["model"]).lower()
        if model not in MODELS:
            raise c.fail(f"{where}.model", f"unknown instrument model {entry['model']!r}" + _suggest(model, MODELS))
        if "address" not in entry or entry["address"] in (None, ""):
            raise c.fail(f"{where}.address", "missing address")
        address = c.text(entry["address"], f"{where}.address")
        is_sim = address.startswith(SIM_SCHEMES)
        if simulated and not is_sim:
            raise c.fail(f"{where}.address", f"a simulated bench (one with a chip section) addresses its "
                                             f"instruments as sim://NAME or hilsim://NAME, got {address!r}")
        if not simulated and is_sim:
            raise c.fail(f"{where}.address", f"{address!r} names a simulated instrument but the bench "
                                             f"file has no chip section")
        timeout = c.number(entry.get("timeout", 2.0), f"{where}.timeout", 0.0, 600.0, lo_open=True)
        options = c.mapping(entry.get("options", {}), f"{where}.options")
        out[name] = InstrumentSpec(name, model, address, float(timeout), dict(options))
    return out


def _endpoint(c: _Checker, value: Any, where: str, instruments: Mapping[str, InstrumentSpec],
              role: str) -> str:
    text = c.text(value, where)
    inst, _, ch = text.partition(".")
    if inst not in instruments:
        raise c.fail(where, f"no instrument {inst!r} in the instruments section" + _suggest(inst, instruments))
    info = instruments[inst].info
    if role not in info.roles:
        raise c.fail(where, f"a {instruments[inst].model} cannot serve as {role}")
    if info.channels:
        if not ch:
            ch = info.channels[0]
        if ch not in info.channels:
            raise c.fail(where, f"{instruments[inst].model} has channels {', '.join(info.channels)}, not {ch!r}")
        return f"{inst}.{ch}"
    if ch:
        raise c.fail(where, f"{instruments[inst].model} has a single output; write {inst!r}")
    return inst


def _check_wiring(c: _Checker, section: Any, instruments: Mapping[str, InstrumentSpec]) -> dict[str, Any]:
    section = c.mapping(section, "wiring")
    c.keys(section, WIRING_KEYS, "wiring")
    for key in ("addresser", "read", "pulse"):
        if key not in section:
            raise c.fail(f"wiring.{key}", "missing")
    out: dict[str, Any] = {}
    out["addresser"] = _endpoint(c, section["addresser"], "wiring.addresser", instruments, "addresser")
    addresser_model = instruments[out["addresser"]].model
    out["read"] = _endpoint(c, section["read"], "wiring.read", instruments, "read")
    out["pulse"] = _endpoint(c, section["pulse"], "wiring.pulse", instruments, "pulse")
    default_gate = out["addresser"] if "gate" in MODELS[addresser_model].roles else None
    if "gate" not in section and default_gate is None:
        raise c.fail("wiring.gate", f"missing: a {addresser_model} has no word-line supply of its own")
    out["gate"] = _endpoint(c, section.get("gate", default_gate), "wiring.gate", instruments, "gate")
    sense = section.get("sense", out["addresser"] if "sense" in MODELS[addresser_model].roles else "read")
    if sense != "read":
        sense = _endpoint(c, sense, "wiring.sense", instruments, "sense")
    out["sense"] = sense
    if addresser_model == "keithley707b":
        out["matrix"] = _check_matrix(c, section.get("matrix"))
    elif "matrix" in section:
        raise c.fail("wiring.matrix", f"only a switch matrix addresser takes a matrix section, not {addresser_model}")
    used = {}
    for key in ("read", "pulse", "gate"):
        if out[key] in used:
            raise c.fail(f"wiring.{key}", f"{out[key]} already feeds the {used[out[key]]} input")
        used[out[key]] = key
    return out


def _check_matrix(c: _Checker, section: Any) -> dict[str, Any]:
    if section is None:
        raise c.fail("wiring.matrix", "missing: a switch matrix needs its rows (inputs) and lines")
    section = c.mapping(section, "wiring.matrix")
    c.keys(section, MATRIX_KEYS, "wiring.matrix")
    rows = c.mapping(section.get("rows"), "wiring.matrix.rows")
    for letter, inp in rows.items():
        if not (isinstance(letter, str) and len(letter) == 1 and letter.upper() in "ABCDEFGH"):
            raise c.fail(f"wiring.matrix.rows.{letter}", "matrix rows are the letters A to H")
        if inp not in ("read", "pulse", "gate", "gnd"):
            raise c.fail(f"wiring.matrix.rows.{letter}", f"unknown input {inp!r}" +
                         _suggest(inp, ("read", "pulse", "gate", "gnd")))
    inputs = set(rows.values())
    for needed in ("read", "pulse", "gate", "gnd"):
        if needed not in inputs:
            raise c.fail("wiring.matrix.rows", f"no matrix row carries the {needed} input")
    array = c.mapping(section.get("array"), "wiring.matrix.array")
    c.keys(array, ("rows", "cols"), "wiring.matrix.array")
    for key in ("rows", "cols"):
        if key not in array:
            raise c.fail(f"wiring.matrix.array.{key}", "missing")
        c.number(array[key], f"wiring.matrix.array.{key}", 1, MATRIX_LINES, integer=True)
    if array["cols"] + 2 * array["rows"] > MATRIX_LINES:
        raise c.fail("wiring.matrix.array", f"{array['rows']}x{array['cols']} needs {array['cols'] + 2 * array['rows']} "
                                            f"matrix columns (BL + SL + WL); a 707B has {MATRIX_LINES}")
    return {"rows": {k.upper(): v for k, v in rows.items()},
            "array": {"rows": int(array["rows"]), "cols": int(array["cols"])}}


def _check_limits(c: _Checker, section: Any, instruments: Mapping[str, InstrumentSpec],
                  wiring: Mapping[str, Any]) -> Limits:
    section = c.mapping(section, "limits")
    c.keys(section, LIMIT_RANGES, "limits")
    values = {}
    for key in REQUIRED_LIMITS:
        if key not in section:
            raise c.fail(f"limits.{key}", "missing hard limit")
    for key, value in section.items():
        lo, hi = LIMIT_RANGES[key]
        values[key] = float(c.number(value, f"limits.{key}", lo, hi, lo_open=True))
    pulser = instruments[wiring["pulse"].partition(".")[0]]
    shortest = pulser.info.pulse_width_min
    if shortest is not None:
        values.setdefault("pulse_width_min", shortest)
        if values["pulse_width_min"] < shortest:
            raise c.fail("limits.pulse_width_min", f"{values['pulse_width_min']:g} s is out of range: the "
                         f"{pulser.model} '{pulser.name}' makes no pulse shorter than {shortest:g} s")
    if values.get("pulse_width_min", 0.0) > values["pulse_width_max"]:
        raise c.fail("limits.pulse_width_min", "exceeds limits.pulse_width_max")
    return Limits(**values)


def _check_faults(c: _Checker, value: Any, where: str) -> dict[str, Any]:
    if value is None or value == "none":
        return {"kind": "none"}
    value = c.mapping(value, where)
    kind = value.get("kind")
    if kind not in FAULT_KEYS:
        raise c.fail(f"{where}.kind", f"unknown fault kind {kind!r}" + _suggest(kind, FAULT_KEYS))
    c.keys(value, FAULT_KEYS[kind], where)
    if kind == "random":
        for key in ("rate_off", "rate_on"):
            c.number(value.get(key, 0.0), f"{where}.{key}", 0.0, 1.0)
        if "seed" in value:
            c.number(value["seed"], f"{where}.seed", 0, integer=True)
    elif kind == "pattern":
        if value.get("pattern") not in PATTERNS:
            raise c.fail(f"{where}.pattern", f"unknown pattern {value.get('pattern')!r}" +
                         _suggest(value.get("pattern"), PATTERNS))
        if value.get("stuck", "off") not in ("off", "on"):
            raise c.fail(f"{where}.stuck", "must be 'off' or 'on'")
        if "size" in value:
            c.number(value["size"], f"{where}.size", 0.0)
    elif kind == "file":
        path = c.text(value.get("path"), f"{where}.path")
        if not path.endswith(".npy"):
            raise c.fail(f"{where}.path", f"fault maps are .npy files of codes 0-2, got {path!r}")
    return dict(value)


def _check_chip(c: _Checker, section: Any) -> dict[str, Any]:
    section = c.mapping(section, "chip")
    c.keys(section, CHIP_KEYS, "chip")
    out = dict(section)
    model = section.get("device_model", "stanford_gap")
    if model not in DEVICE_MODELS:
        raise c.fail("chip.device_model", f"unknown device model {model!r}" + _suggest(model, DEVICE_MODELS))
    out["device_model"] = model
    out["seed"] = int(c.number(section.get("seed", 0), "chip.seed", 0, integer=True))
    arrays = section.get("arrays")
    if not isinstance(arrays, list) or not arrays:
        raise c.fail("chip.arrays", "must be a non-empty list of {name, rows, cols}")
    names, checked = set(), []
    for k, entry in enumerate(arrays):
        where = f"chip.arrays[{k}]"
        entry = c.mapping(entry, where)
        c.keys(entry, ARRAY_KEYS, where)
        for key in ("name", "rows", "cols"):
            if key not in entry:
                raise c.fail(f"{where}.{key}", "missing")
        name = str(entry["name"])
        if name in names:
            raise c.fail(f"{where}.name", f"array name {name!r} used twice")
        names.add(name)
        for key in ("rows", "cols"):
            c.number(entry[key], f"{where}.{key}", 1, 4096, integer=True)
        if "faults" in entry:
            entry = {**entry, "faults": _check_faults(c, entry["faults"], f"{where}.faults")}
        if entry.get("initial_state", "off") not in ("off", "on"):
            raise c.fail(f"{where}.initial_state", "must be 'off' or 'on'")
        checked.append(dict(entry))
    out["arrays"] = checked
    out["faults"] = _check_faults(c, section.get("faults"), "chip.faults")
    variation = c.mapping(section.get("variation", {}), "chip.variation")
    c.keys(variation, VARIATION_KEYS, "chip.variation")
    for key, value in variation.items():
        c.number(value, f"chip.variation.{key}", 0.0, 10.0)
    out["variation"] = dict(variation)
    engine = section.get("engine", "numpy")
    if engine not in ENGINES:
        raise c.fail("chip.engine", f"unknown engine {engine!r}" + _suggest(str(engine), ENGINES))
    out["engine"] = engine
    if section.get("wires") is not None:
        wires = c.mapping(section["wires"], "chip.wires")
        c.keys(wires, WIRE_KEYS, "chip.wires")
        for key, value in wires.items():
            c.number(value, f"chip.wires.{key}", 0.0, 1e6)
        out["wires"] = dict(wires)
    if section.get("initial_state", "off") not in ("off", "on"):
        raise c.fail("chip.initial_state", "must be 'off' or 'on'")
    if section.get("aging") is not None:
        aging = c.mapping(section["aging"], "chip.aging")
        try:
            AgingParams.from_mapping(aging)
        except (TypeError, ValueError) as exc:
            raise c.fail("chip.aging", str(exc)) from None
        out["aging"] = dict(aging)
    return out
