"""Bench files: YAML descriptions of a bench, validated into typed models whose errors name the field.

A bench file names the device under test, the instruments (model and address), how
their outputs reach the addresser's inputs (``wiring``), the hard limits, and, for a
simulated bench only, the simulated chip behind the instruments (``chip``). Layout::

    name: my-bench
    device:                 # the chip on the probe station: chooses the protocol presets
      model: cute_multilevel          # stanford_gap | cute_multilevel
      chip_id: CUTE-W3-D17
      arrays: [{name: A, rows: 64, cols: 64}]   # optional: checked against the addresser on open
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
arguments for its driver, e.g. ``visa_library: "@py"``). The instrument models, their
channels, roles and ranges come from the plug-ins in ``hil/instruments/``; an addresser may read a wiring sub-section of its own (the
707B's ``wiring.matrix``, see ``examples/benches/simulated_matrix.yaml``).

A simulated bench has a ``chip`` section instead of (or as well as) ``device``; its
``id``, ``device_model`` and ``arrays`` are the device, the rest (seed, faults,
variation, engine, wires) the simulation. Its addresses are ``sim://NAME`` (VISA-style
instruments) and ``hilsim://NAME`` (serial instruments); see ``hil/benches/simulated.yaml``.

Refused on load, with the file and the field named: unknown or misspelt keys (with the
close match), duplicate keys, non-numbers, NaN and infinities, values out of range,
limits beyond what the wired instruments can do (a 9 V gate limit on the board's 0-5 V
DAC), wiring an instrument cannot serve, and fault-map files that are missing or hold
codes other than those of :mod:`hil.faultmap`.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional, Union

import numpy as np
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from simulated_bench.aging import AgingParams
from simulated_bench.array import DEVICE_MODELS
from simulated_bench.faults import PATTERNS, STUCK_OFF, STUCK_ON

from .faultmap import CODE_NAMES
from .instruments import InstrumentPlugin, models, plugin_for
from .roles import Limits


class BenchFileError(ValueError):
    """A bench file that cannot describe a bench; the message names the file and the field."""


SIM_SCHEMES = ("sim://", "hilsim://")
ENGINES = ("numpy", "spice")  # the simulated chip's physics: vectorised numpy, or ngspice (small arrays)
INPUTS = ("read", "pulse", "gate")  # the addresser's inputs a source feeds


# ----------------------------------------------------------------------------------------
# the schema
# ----------------------------------------------------------------------------------------
def _suggest(word: Any, choices) -> str:
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if not close and isinstance(word, str) and len(word) >= 3:
        close = [c for c in choices if c.startswith(word)][:1]
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(choices)}"


def _choice(label: str, choices) -> Any:
    """A string that must be one of ``choices`` (read at validation time, so registries may grow)."""

    def check(value: Any) -> str:
        options = tuple(choices() if callable(choices) else choices)
        if not isinstance(value, str) or value not in options:
            raise PydanticCustomError("choice", "unknown {label} {value}{hint}",
                                      {"label": label, "value": repr(value), "hint": _suggest(value, options)})
        return value

    return Annotated[str, BeforeValidator(check)]


def _number(gt: float | None = None, ge: float | None = None, le: float | None = None) -> Any:
    return Annotated[float, Field(strict=True, allow_inf_nan=False, gt=gt, ge=ge, le=le)]


def _whole(ge: float | None = None, le: float | None = None) -> Any:
    return Annotated[int, Field(strict=True, ge=ge, le=le)]


Text = Annotated[str, Field(strict=True, min_length=1)]
State = _choice("state", ("off", "on"))


class Section(BaseModel):
    """A mapping whose keys are exactly its fields: an unknown key names its close match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = list(cls.model_fields)
            for key in data:
                if key not in known:
                    raise PydanticCustomError("unknown_key", "unknown key {key}{hint}",
                                              {"key": repr(key), "hint": _suggest(key, known), "where": key})
        return data


class NoFaults(Section):
    kind: Literal["none"]


class RandomFaults(Section):
    kind: Literal["random"]
    rate_off: _number(ge=0.0, le=1.0) = 0.0
    rate_on: _number(ge=0.0, le=1.0) = 0.0
    seed: Optional[_whole(ge=0)] = None


class PatternFaults(Section):
    kind: Literal["pattern"]
    pattern: _choice("pattern", PATTERNS)
    size: Optional[_number(ge=0.0)] = None
    stuck: State = "off"


class FileFaults(Section):
    """Codes of :mod:`hil.faultmap` in a ``.npy`` file (relative paths: from the bench file)."""

    kind: Literal["file"]
    path: Text

    @field_validator("path")
    @classmethod
    def _npy(cls, path: str) -> str:
        if not path.endswith(".npy"):
            raise ValueError(f"fault maps are .npy files of fault codes, got {path!r}")
        return path


Faults = Annotated[Union[NoFaults, RandomFaults, PatternFaults, FileFaults], Field(discriminator="kind")]


def _faults_before(value: Any) -> Any:
    return {"kind": "none"} if value is None or value == "none" else value


class ArrayShape(Section):
    name: Annotated[str, Field(min_length=1)]
    rows: _whole(ge=1, le=4096)
    cols: _whole(ge=1, le=4096)

    @field_validator("name", mode="before")
    @classmethod
    def _name_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class SimArray(ArrayShape):
    faults: Optional[Faults] = None
    seed: Optional[_whole(ge=0)] = None
    initial_state: Optional[State] = None

    @field_validator("faults", mode="before")
    @classmethod
    def _faults(cls, v: Any) -> Any:
        return v if v is None else _faults_before(v)


class Variation(Section):
    d2d_rate_sigma: _number(ge=0.0, le=10.0) = None  # type: ignore[assignment]
    d2d_bound_sigma: _number(ge=0.0, le=10.0) = None  # type: ignore[assignment]
    c2c_rate_sigma: _number(ge=0.0, le=10.0) = None  # type: ignore[assignment]
    read_noise_scale: _number(ge=0.0, le=10.0) = None  # type: ignore[assignment]


class Wires(Section):
    r_wl: _number(ge=0.0, le=1e6) = None  # type: ignore[assignment]  # ohm per line segment
    r_bl: _number(ge=0.0, le=1e6) = None  # type: ignore[assignment]
    r_sl: _number(ge=0.0, le=1e6) = None  # type: ignore[assignment]


class Chip(Section):
    """The simulated chip (simulated benches only)."""

    id: str = ""
    device_model: _choice("device model", DEVICE_MODELS) = "stanford_gap"
    seed: _whole(ge=0) = 0
    arrays: Annotated[list[SimArray], Field(min_length=1)]
    faults: Faults = NoFaults(kind="none")
    variation: Variation = Variation()
    initial_state: State = "off"
    engine: _choice("engine", ENGINES) = "numpy"
    wires: Optional[Wires] = None
    aging: Optional[dict[str, Any]] = None  # simulated_bench.aging sections: stuck, drift, read_disturb

    @field_validator("aging")
    @classmethod
    def _aging(cls, v: Any) -> Any:
        if v is not None:
            AgingParams.from_mapping(v)  # names the section and key of a bad value
        return v

    @field_validator("faults", mode="before")
    @classmethod
    def _faults(cls, v: Any) -> Any:
        return _faults_before(v)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return "" if v is None else str(v)


class Device(Section):
    """The device under test: its model chooses the protocol presets."""

    model: _choice("device model", DEVICE_MODELS)
    chip_id: Annotated[str, Field(min_length=1)]
    arrays: Optional[Annotated[list[ArrayShape], Field(min_length=1)]] = None

    @field_validator("chip_id", mode="before")
    @classmethod
    def _id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class Instrument(Section):
    model: _choice("instrument model", lambda: models())
    address: Text
    timeout: _number(gt=0.0, le=600.0) = 2.0  # s, per reply
    options: dict[str, Any] = {}

    @field_validator("model", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class Wiring(Section):
    addresser: Text
    read: Text
    pulse: Text
    gate: Optional[Text] = None
    sense: Optional[Text] = None
    # the addresser's trigger output is cabled to the pulser's trigger input (AB64 TRIG OUT ->
    # 81160A TRIG IN, or a B2900's digital I/O pin 1): a row's pulses then run as one board sequence
    pulse_trigger: bool = False
    # an addresser's own sub-sections (validated by its plug-in's wiring_schema)
    matrix: Optional[dict[str, Any]] = None


class LimitsSection(Section):
    v_line_max: _number(gt=0.0, le=10.0)  # V, any bit or source line
    v_gate_max: _number(gt=0.0, le=10.0)  # V, word lines
    i_compliance: _number(gt=0.0, le=0.1)  # A, read-source compliance
    pulse_width_max: _number(gt=0.0, le=1.0)  # s
    pulse_width_min: Optional[_number(gt=0.0, le=1.0)] = None  # s; default: the pulser's shortest


class BenchFile(Section):
    name: Optional[str] = None
    description: Optional[str] = None
    device: Optional[Device] = None
    chip: Optional[Chip] = None
    instruments: Annotated[dict[Annotated[str, Field(strict=True, pattern=r"^[^.]+$")], Instrument],
                           Field(min_length=1)]
    wiring: Wiring
    limits: LimitsSection


#: what "missing" means, by field name
MISSING = {"address": "missing address", "model": "missing model", "instruments": "missing section",
           "wiring": "missing section", "limits": "missing section",
           **{k: "missing hard limit" for k in ("v_line_max", "v_gate_max", "i_compliance", "pulse_width_max")}}


FAULT_KINDS = ("none", "random", "pattern", "file")


def _key(part: Any) -> str:
    """A key as written in a field path: plain names bare, anything odd quoted."""
    text = str(part)
    return text if isinstance(part, str) and re.fullmatch(r"[\w+\-]+", text) else repr(part)


def _where(loc: tuple) -> str:
    out, previous = "", None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) and "(" in str(part):
            pass  # pydantic's validator frames
        elif part in FAULT_KINDS and previous == "faults":
            pass  # the discriminated union's branch
        else:
            out += f".{_key(part)}" if out else _key(part)
        previous = part
    return out or "top level"


def _message(err: Mapping[str, Any]) -> tuple[str, str]:
    """(where, problem) for one pydantic error, in the bench file's words."""
    loc, kind, ctx, value = tuple(err["loc"]), err["type"], err.get("ctx") or {}, err.get("input")
    where = _where(loc)
    if kind == "unknown_key":
        return (f"{where}.{_key(ctx['where'])}" if loc else _key(ctx["where"])), err["msg"]
    if kind == "missing":
        return where, MISSING.get(str(loc[-1]) if loc else "", "missing")
    if kind in ("float_type", "float_parsing", "int_parsing"):
        return where, f"must be a number, got {value!r}"
    if kind == "int_type":
        return where, (f"must be a whole number, got {value!r}" if isinstance(value, float) else
                       f"must be a number, got {value!r}")
    if kind == "finite_number":
        return where, f"must be a finite number, got {value!r}"
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        bound = next(iter(ctx.values()))
        return where, f"{value!r} is out of range: must be {bounds[kind]} {bound:g}"
    if kind == "string_too_short" and loc and str(loc[-1]) in MISSING:
        return where, MISSING[str(loc[-1])]
    if kind in ("string_type", "string_too_short"):
        return where, f"must be a non-empty string, got {value!r}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return where, f"must be a mapping (key: value), got {value!r}"
    if kind == "list_type":
        return where, f"must be a list, got {value!r}"
    if kind == "too_short":
        return where, "must not be empty"
    if kind == "union_tag_invalid":
        return f"{where}.kind", f"unknown fault kind {ctx.get('tag')!r}" + _suggest(ctx.get("tag"), FAULT_KINDS)
    if kind == "union_tag_not_found":
        return f"{where}.kind", "missing fault kind" + _suggest("", FAULT_KINDS)
    if kind == "literal_error":
        return where, f"{value!r} is not one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        return where, "instrument names are strings without dots"
    if kind == "value_error":
        return where, str(ctx.get("error", err["msg"]))
    return where, err["msg"]


# ----------------------------------------------------------------------------------------
# the validated bench
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InstrumentSpec:
    name: str
    model: str
    address: str
    timeout: float = 2.0
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def plugin(self) -> type[InstrumentPlugin]:
        return plugin_for(self.model)

    info = plugin  # older name


@dataclass(frozen=True)
class DeviceSpec:
    """The device under test: model (chooses presets), chip id, and the arrays if declared."""

    model: str
    chip_id: str
    arrays: tuple[tuple[str, int, int], ...] = ()

    def array_shapes(self) -> dict[str, tuple[int, int]]:
        return {n: (r, c) for n, r, c in self.arrays}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "chip_id": self.chip_id}
        if self.arrays:
            out["arrays"] = [{"name": n, "rows": r, "cols": c} for n, r, c in self.arrays]
        return out


@dataclass(frozen=True)
class BenchSpec:
    """A validated bench file."""

    name: str
    instruments: Mapping[str, InstrumentSpec]
    wiring: Mapping[str, Any]
    limits: Limits
    device: DeviceSpec
    chip: Mapping[str, Any] | None = None
    source: Path | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: array name -> fault codes loaded from a ``kind: file`` fault map (simulated benches)
    fault_files: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return self.chip is not None

    def to_yaml(self) -> str:
        """The bench file as YAML (for run records)."""
        return yaml.safe_dump(dict(self.raw), sort_keys=False)

    @property
    def sha256(self) -> str:
        """Hash of the bench description (key order and comments do not count)."""
        return hashlib.sha256(yaml.safe_dump(dict(self.raw), sort_keys=True).encode()).hexdigest()

    def sim_chip(self) -> dict[str, Any]:
        """The chip section for the simulated bench, fault-map files already loaded (see fault_files)."""
        chip = copy.deepcopy(dict(self.chip or {}))
        if chip.get("faults", {}).get("kind") == "file":
            chip["faults"] = {"kind": "none"}
        for entry in chip.get("arrays", []):
            if (entry.get("faults") or {}).get("kind") == "file":
                entry["faults"] = {"kind": "none"}
        return chip


def _fail(source: str, where: str, problem: str) -> BenchFileError:
    prefix = f"bench file {source}: " if source else "bench file: "
    return BenchFileError(f"{prefix}{where}: {problem}")


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} appears twice (lines {seen[key] + 1} and "
                                    f"{key_node.start_mark.line + 1}); keep one", key_node.start_mark)
                seen[key] = key_node.start_mark.line
            except TypeError:  # unhashable key: let PyYAML report it
                pass
        return super().construct_mapping(node, deep)


def load_bench_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> BenchSpec:
    """Read and validate a bench file; ``overrides`` are merged over its sections first."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BenchFileError(f"bench file {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BenchFileError(f"bench file {path}: not a text file (byte {exc.start} is not UTF-8); "
                             f"a bench file is YAML") from None
    if "\x00" in text:
        raise BenchFileError(f"bench file {path}: not a text file (it holds NUL bytes); a bench file is YAML")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        problem = str(exc).replace("\n", " ")
        raise BenchFileError(f"bench file {path}: not valid YAML ({problem})") from None
    return parse_bench(data, source=path, overrides=overrides)


def parse_bench(data: Any, source: Path | str | None = None,
                overrides: Mapping[str, Any] | None = None) -> BenchSpec:
    """Validate a bench description (already parsed from YAML)."""
    src = str(source) if source is not None else ""
    if not isinstance(data, Mapping):
        raise _fail(src, "top level", f"must be a mapping of sections (instruments, wiring, limits, ...), "
                                      f"got {type(data).__name__}")
    if overrides:
        data = _merge(data, overrides)
    try:
        model = BenchFile.model_validate(data)
    except ValidationError as exc:
        where, problem = _message(exc.errors(include_url=False)[0])
        raise _fail(src, where, problem) from None
    except (TypeError, ValueError, RecursionError) as exc:  # keys pydantic cannot compare (unhashable, ...)
        raise _fail(src, "top level", f"unreadable structure ({exc})") from None
    return _Checks(src, source, model, data).spec()


class _Checks:
    """What one field cannot say alone: references between sections and instruments' ranges."""

    def __init__(self, src: str, source, model: BenchFile, raw: Mapping[str, Any]):
        self.src, self.source, self.m, self.raw = src, source, model, raw

    def fail(self, where: str, problem: str) -> BenchFileError:
        return _fail(self.src, where, problem)

    def spec(self) -> BenchSpec:
        m = self.m
        simulated = m.chip is not None
        instruments = self.instruments(simulated)
        wiring = self.wiring(instruments)
        limits = self.limits(instruments, wiring)
        device = self.device()
        fault_files = self.fault_files() if simulated else {}
        if simulated and "matrix" in wiring:
            shape = wiring["matrix"].array
            arrays = m.chip.arrays
            if len(arrays) != 1 or (arrays[0].rows, arrays[0].cols) != (shape.rows, shape.cols):
                raise self.fail("wiring.matrix.array",
                                f"{shape.rows}x{shape.cols} does not match the simulated chip's single array "
                                f"{arrays[0].rows}x{arrays[0].cols} (a switch-matrix bench addresses one array)")
        chip = m.chip.model_dump(exclude_none=True) if simulated else None
        if chip is not None:
            chip["id"] = device.chip_id
        name = str(m.name or (Path(self.src).stem if self.src else "bench"))
        return BenchSpec(name, instruments, wiring, limits, device, chip,
                         Path(self.source) if self.source is not None else None, dict(self.raw), fault_files)

    def instruments(self, simulated: bool) -> dict[str, InstrumentSpec]:
        out = {}
        for name, entry in self.m.instruments.items():
            where = f"instruments.{name}.address"
            is_sim = entry.address.startswith(SIM_SCHEMES)
            if simulated and not is_sim:
                raise self.fail(where, f"a simulated bench (one with a chip section) addresses its instruments as "
                                       f"sim://NAME or hilsim://NAME, got {entry.address!r}")
            if not simulated and is_sim:
                raise self.fail(where, f"{entry.address!r} names a simulated instrument but the bench file has no "
                                       f"chip section")
            if simulated:
                try:
                    plugin_for(entry.model).emulator_class()
                except (LookupError, ImportError, AttributeError):
                    raise self.fail(f"instruments.{name}.model",
                                    f"a {entry.model} has no emulator: it cannot be on a simulated bench") from None
            schema = plugin_for(entry.model).options_schema
            try:
                options = schema.model_validate(entry.options).model_dump(exclude_none=True)
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                where = f"instruments.{name}.options.{_where(tuple(err['loc']))}"
                if err["type"] == "extra_forbidden":
                    key = err["loc"][-1]
                    known = list(schema.model_fields)
                    raise self.fail(where, f"unknown option {key!r} for a {entry.model}" +
                                    (_suggest(key, known) if known else "; it takes no options")) from None
                raise self.fail(where, _message(err)[1]) from None
            out[name] = InstrumentSpec(name, entry.model, entry.address, float(entry.timeout), options)
        return out

    def endpoint(self, value: str, where: str, instruments: Mapping[str, InstrumentSpec], role: str) -> str:
        inst, _, ch = value.partition(".")
        if inst not in instruments:
            raise self.fail(where, f"no instrument {inst!r} in the instruments section" + _suggest(inst, instruments))
        spec = instruments[inst]
        plugin = spec.plugin
        if role not in plugin.roles:
            can = ", ".join(sorted(plugin.roles)) or "nothing"
            raise self.fail(where, f"a {spec.model} cannot serve as {role} (it serves: {can})")
        if plugin.channels:
            ch = ch or plugin.channels[0]
            if ch not in plugin.channels:
                raise self.fail(where, f"{spec.model} has channels {', '.join(plugin.channels)}, not {ch!r}")
            return f"{inst}.{ch}"
        if ch:
            raise self.fail(where, f"{spec.model} has a single output; write {inst!r}")
        return inst

    def wiring(self, instruments: Mapping[str, InstrumentSpec]) -> dict[str, Any]:
        w = self.m.wiring
        out: dict[str, Any] = {"addresser": self.endpoint(w.addresser, "wiring.addresser", instruments, "addresser")}
        addresser = instruments[out["addresser"]].plugin
        out["read"] = self.endpoint(w.read, "wiring.read", instruments, "read")
        out["pulse"] = self.endpoint(w.pulse, "wiring.pulse", instruments, "pulse")
        gate = w.gate
        if gate is None:
            if "gate" not in addresser.roles:
                raise self.fail("wiring.gate", f"missing: a {addresser.model} has no word-line supply of its own")
            gate = out["addresser"]
        out["gate"] = self.endpoint(gate, "wiring.gate", instruments, "gate")
        sense = w.sense if w.sense is not None else (out["addresser"] if "sense" in addresser.roles else "read")
        out["sense"] = sense if sense == "read" else self.endpoint(sense, "wiring.sense", instruments, "sense")
        out["pulse_trigger"] = bool(w.pulse_trigger)
        section = addresser.wiring_section
        for key in ("matrix",):
            given = getattr(w, key)
            if given is not None and key != section:
                raise self.fail(f"wiring.{key}", f"only a switch matrix addresser takes a {key} section, "
                                                 f"not {addresser.model}")
        if section is not None:
            given = getattr(w, section)
            if given is None:
                raise self.fail(f"wiring.{section}", f"missing: a {addresser.model} needs its {section} section")
            try:
                out[section] = addresser.wiring_schema.model_validate(given)
            except ValidationError as exc:
                where, problem = _message(exc.errors(include_url=False)[0])
                raise self.fail(f"wiring.{section}.{where}" if where != "top level" else f"wiring.{section}",
                                problem) from None
        used: dict[str, str] = {}
        for key in INPUTS:
            if out[key] in used:
                raise self.fail(f"wiring.{key}", f"{out[key]} already feeds the {used[out[key]]} input")
            used[out[key]] = key
        return out

    def limits(self, instruments: Mapping[str, InstrumentSpec], wiring: Mapping[str, Any]) -> Limits:
        values = self.m.limits.model_dump(exclude_none=True)

        def owner(key: str) -> tuple[InstrumentSpec, type[InstrumentPlugin]]:
            spec = instruments[wiring[key].partition(".")[0]]
            return spec, spec.plugin

        pulser, pulse_plugin = owner("pulse")
        width_range = pulse_plugin.pulse_width_range
        if width_range is not None:
            shortest, longest = width_range
            values.setdefault("pulse_width_min", shortest)
            if values["pulse_width_min"] < shortest:
                raise self.fail("limits.pulse_width_min", f"{values['pulse_width_min']:g} s is out of range: the "
                                f"{pulser.model} '{pulser.name}' makes no pulse shorter than {shortest:g} s")
            if values["pulse_width_max"] > longest:
                raise self.fail("limits.pulse_width_max", f"{values['pulse_width_max']:g} s is out of range: the "
                                f"{pulser.model} '{pulser.name}' makes no pulse longer than {longest:g} s")
        if values.get("pulse_width_min", 0.0) > values["pulse_width_max"]:
            raise self.fail("limits.pulse_width_min", "exceeds limits.pulse_width_max")
        for key, inputs in (("v_gate_max", ("gate",)), ("v_line_max", ("read", "pulse"))):
            for inp in inputs:
                spec, plugin = owner(inp)
                if plugin.v_range is None:
                    continue
                reach = max(abs(v) for v in plugin.v_range)
                if values[key] > reach:
                    lo, hi = plugin.v_range
                    raise self.fail(f"limits.{key}", f"{values[key]:g} V is beyond what '{spec.name}' ({spec.model}, "
                                    f"on the {inp} input) can source ({lo:g} to {hi:g} V); lower the limit")
        spec, plugin = owner("read")
        if plugin.i_compliance_range is not None:
            lo, hi = plugin.i_compliance_range
            if not lo <= values["i_compliance"] <= hi:
                raise self.fail("limits.i_compliance", f"{values['i_compliance']:g} A is out of range: the "
                                f"{spec.model} '{spec.name}' limits current between {lo:g} and {hi:g} A")
        return Limits(**values)

    def device(self) -> DeviceSpec:
        m = self.m
        if m.chip is None:
            if m.device is None:
                raise self.fail("device", "missing section: say which chip is on the bench, e.g. "
                                          "device: {model: stanford_gap, chip_id: W1-D3}")
            d = m.device
            return DeviceSpec(d.model, d.chip_id, tuple((a.name, a.rows, a.cols) for a in d.arrays or ()))
        chip = m.chip
        names: set[str] = set()
        for k, entry in enumerate(chip.arrays):
            if entry.name in names:
                raise self.fail(f"chip.arrays[{k}].name", f"array name {entry.name!r} used twice")
            names.add(entry.name)
        arrays = tuple((a.name, a.rows, a.cols) for a in chip.arrays)
        if m.device is None:
            return DeviceSpec(chip.device_model, chip.id or "", arrays)
        d = m.device
        if d.model != chip.device_model:
            raise self.fail("device.model", f"{d.model} but the simulated chip is {chip.device_model} "
                                            f"(chip.device_model); make them agree")
        if d.arrays is not None and tuple((a.name, a.rows, a.cols) for a in d.arrays) != arrays:
            raise self.fail("device.arrays", "differ from the simulated chip's arrays (chip.arrays)")
        if chip.id and chip.id != d.chip_id:
            raise self.fail("device.chip_id", f"{d.chip_id!r} but chip.id is {chip.id!r}; make them agree")
        return DeviceSpec(d.model, d.chip_id, arrays)

    def fault_files(self) -> dict[str, np.ndarray]:
        chip = self.m.chip
        base = Path(self.source).parent if self.source is not None else Path(".")
        out = {}
        for k, entry in enumerate(chip.arrays):
            faults, where = (entry.faults, f"chip.arrays[{k}].faults") if entry.faults is not None else \
                (chip.faults, "chip.faults")
            if isinstance(faults, FileFaults):
                out[entry.name] = self.load_codes(base, faults.path, f"{where}.path", (entry.rows, entry.cols))
        return out

    def load_codes(self, base: Path, name: str, where: str, shape: tuple[int, int]) -> np.ndarray:
        path = Path(name) if Path(name).is_absolute() else base / name
        try:
            codes = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise self.fail(where, f"fault-map file {str(path)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise self.fail(where, f"fault-map file {str(path)!r} is not a .npy array ({exc})") from None
        if codes.shape != shape:
            raise self.fail(where, f"fault map {str(path)!r} has shape {codes.shape}, the array is {shape}")
        if not (np.issubdtype(codes.dtype, np.integer) or
                (np.issubdtype(codes.dtype, np.floating) and np.all(np.isfinite(codes)) and
                 np.all(np.mod(codes, 1) == 0))):
            raise self.fail(where, f"fault map {str(path)!r} must hold whole-number codes, got {codes.dtype}")
        bad = ~np.isin(codes, list(CODE_NAMES))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            known = ", ".join(f"{k} {v}" for k, v in CODE_NAMES.items())
            raise self.fail(where, f"fault map {str(path)!r} holds code {codes[r, c]} at ({r}, {c}); codes: {known}")
        # the simulated chip has stuck devices only: unreliable (3) and not-scanned (-1) cells are live devices
        return np.where(np.isin(codes, (STUCK_OFF, STUCK_ON)), codes, 0).astype(np.int8)


__all__ = ["BenchFileError", "BenchSpec", "InstrumentSpec", "DeviceSpec", "load_bench_file", "parse_bench",
           "BenchFile", "SIM_SCHEMES"]
