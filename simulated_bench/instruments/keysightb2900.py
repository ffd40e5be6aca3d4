"""Emulated Keysight B2900 series SMU (B2901A/B2902A/B2911A/B2912A; SCPI, one or two channels).

Modelled, per channel ``c`` (the numeric suffix of ``:SOURce``, ``:SENSe``, ``:OUTPut``,
``:TRIGger``, ``:ARM``; channel lists ``(@1)``, ``(@1,2)``, ``(@1:2)`` for measurements):

* source: ``:SOUR:FUNC:MODE VOLT|CURR``, ``:SOUR:FUNC[:SHAP] DC|PULS``, immediate and
  triggered levels (``:SOUR:VOLT``, ``:SOUR:VOLT:TRIG``), ``:SOUR:VOLT:MODE FIX|LIST|SWE``
  with ``:SOUR:LIST:VOLT`` (up to 2500 points) and ``:SOUR:VOLT:STAR/STOP/POIN``,
  ranges, pulse width and delay; the same for current (settable and queryable; the
  simulated chip is driven in voltage only, so sourcing current gives -221);
* measure: ``:SENS:FUNC`` on/off, NPLC and aperture (coupled through ``:SYST:LFR``),
  ranges, compliance (``:SENS:CURR:PROT``) and its trip state (``...:PROT:TRIP?``);
* output on/off, off mode, protection; ``:FORM[:DATA] ASC`` and ``:FORM:ELEM:SENS``;
* trigger system: ``:TRIG:COUN/SOUR/TIM/ACQ:DEL/TRAN:DEL``, ``:ARM:COUN``,
  ``:INIT``, ``:ABOR``, ``:FETC``/``:READ``/``:MEAS`` (scalar and array);
* common commands, status registers and the error queue (:class:`~.scpi.ScpiEmulator`).

A trigger step sources the next level; with shape PULS it pulses from the base
(immediate) level to that level for the pulse width (the chip sees the pulse) and
measures ``ACQ:DEL`` after the trigger: during the pulse, or at the base level once it
has ended. A DC step moves the output and measures there. Trigger sources other than
AINT and TIM (BUS, LAN, external lines) and binary data formats are not emulated:
``:INIT`` / ``:FORM`` with them gives -221 Settings conflict.

Bench clock: each measurement costs settling + aperture + ADC overhead, each trigger step
max(timer period, its delays + pulse width + aperture), a level change with the output
on its settling time (:class:`~.clock.SmuTiming`; the line frequency is the instrument's
own ``:SYST:LFR``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .clock import SmuTiming
from .scpi import ScpiEmulator, ScpiError, parse_bool, parse_float, split_args, unquote
from .wiring import MAX_READINGS_PER_COMMAND, MAX_STEPS_PER_COMMAND, Wiring

V_MAX, I_MAX = 210.0, 3.03
NPLC_RANGE = (4e-4, 100.0)
APERTURE_RANGE = (8e-6, 2.0)
PULSE_WIDTH_RANGE = (50e-6, 100.0)
PULSE_DELAY_RANGE = (0.0, 99999.9)
TIMER_RANGE = (10e-6, 100000.0)
DELAY_RANGE = (0.0, 100000.0)
COUNT_RANGE = (1, 100000)
LIST_MAX = 2500
TRIGGER_SOURCES = {"AINT": "AINT", "BUS": "BUS", "TIM": "TIM", "TIMER": "TIM", "INT1": "INT1", "INT2": "INT2",
                   "LAN": "LAN", **{f"EXT{k}": f"EXT{k}" for k in range(1, 15)}}
EMULATED_TRIGGERS = ("AINT", "TIM")
#: trigger inputs wired to the addressing board's TRIG OUT (the digital I/O pins): an INIT with
#: one of them arms the channel, and each edge from the board runs its next step
EXTERNAL_TRIGGERS = tuple(f"EXT{k}" for k in range(1, 15))
ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT", "SOUR")
MODELS = {"B2901A": 1, "B2902A": 2, "B2911A": 1, "B2912A": 2}
STATUS_COMPLIANCE = 1 << 1  # bit of the STAT element: the reading was taken in compliance


@dataclass
class B2900Channel:
    func: str = "VOLT"
    shape: str = "DC"
    level: dict = field(default_factory=lambda: {"VOLT": 0.0, "CURR": 0.0})
    trig: dict = field(default_factory=lambda: {"VOLT": 0.0, "CURR": 0.0})
    mode: dict = field(default_factory=lambda: {"VOLT": "FIX", "CURR": "FIX"})
    lists: dict = field(default_factory=lambda: {"VOLT": [0.0], "CURR": [0.0]})
    sweep: dict = field(default_factory=lambda: {"VOLT": [0.0, 0.0, 1], "CURR": [0.0, 0.0, 1]})
    src_range: dict = field(default_factory=lambda: {"VOLT": 2.0, "CURR": 1e-4})
    src_auto: dict = field(default_factory=lambda: {"VOLT": True, "CURR": True})
    prot: dict = field(default_factory=lambda: {"CURR": 1e-4, "VOLT": 2.0})
    sens_range: dict = field(default_factory=lambda: {"CURR": 1e-4, "VOLT": 2.0})
    sens_auto: dict = field(default_factory=lambda: {"CURR": True, "VOLT": True})
    sense: list = field(default_factory=lambda: ["VOLT", "CURR"])
    nplc: float = 1.0
    output: bool = False
    off_mode: str = "NORM"
    protection: bool = False
    pulse_width: float = 1e-4
    pulse_delay: float = 0.0
    count: int = 1
    arm_count: int = 1
    trig_source: str = "AINT"
    timer: float = 1e-3
    acq_delay: float = 0.0
    tran_delay: float = 0.0
    v_now: float = 0.0  # what the output drives this instant (V)
    tripped: bool = False
    readings: list = field(default_factory=list)  # (v, i, t, status, source) per measurement
    armed: int = 0  # steps still waiting for an external trigger edge


class KeysightB2900Emulator(ScpiEmulator):
    model = "keysightb2900"
    default_transport = "usbtmc"

    def __init__(self, wiring: Wiring, name: str, lock=None, instrument_model: str = "B2902A",
                 timing: SmuTiming | None = None):
        super().__init__(lock if lock is not None else wiring.lock)
        if instrument_model not in MODELS:
            raise ValueError(f"unknown B2900 model {instrument_model!r}; known: {', '.join(MODELS)}")
        self.instrument_model = instrument_model
        self.idn = f"Keysight Technologies,{instrument_model},MY51141234,3.4.2011.5100"
        self.wiring, self.name = wiring, name
        self.timing = timing or SmuTiming(reading_overhead_s=50e-6, source_settle_s=20e-6)
        self.n_channels = MODELS[instrument_model]
        self.line_frequency = 50
        self.elements = list(ELEMENTS)
        self.t_elapsed = 0.0  # the TIME element: seconds since power-on/*RST as the instrument counts them
        self.channels: dict[int, B2900Channel] = {}
        self.reset()
        for n in range(1, self.n_channels + 1):
            wiring.attach(f"{name}.{n}", lambda n=n: self.drive_level(n), lambda n=n: self.channels[n].prot["CURR"])
            wiring.on_trigger(f"{name}.{n}", lambda n=n: self._external_trigger(n))
        wiring.attach(name, lambda: self.drive_level(1), lambda: self.channels[1].prot["CURR"])
        self._declare()

    # state -------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.channels = {n: B2900Channel() for n in range(1, self.n_channels + 1)}
        self.line_frequency = 50
        self.elements = list(ELEMENTS)
        self.t_elapsed = 0.0

    def drive_level(self, n: int) -> float:
        ch = self.channels[n]
        return ch.v_now if (ch.output and ch.func == "VOLT") else 0.0

    def outputs_off(self) -> None:
        for ch in self.channels.values():
            ch.output = False
            ch.v_now = 0.0

    def _ch(self, s, index: int = 0) -> B2900Channel:
        txt = s[index] if index < len(s) else ""
        n = int(txt) if txt else 1
        if n not in self.channels:
            raise ScpiError(-113, f"{self.instrument_model} has no channel {n}")
        return self.channels[n]

    def _spend(self, seconds: float) -> None:
        self.t_elapsed += seconds
        self.busy(seconds)

    # declarations ------------------------------------------------------------------------
    def _declare(self) -> None:
        a = self.add
        a("[:SOURce#]:FUNCtion:MODE", self._src_func)
        a("[:SOURce#]:FUNCtion[:SHAPe]", self._choice("shape", {"DC": "DC", "PULS": "PULS", "PULSE": "PULS"}))
        for f, top in (("VOLTage", V_MAX), ("CURRent", I_MAX)):
            key = f[:4].upper()
            a(f"[:SOURce#]:{f}[:LEVel][:IMMediate][:AMPLitude]", self._level(key, top))
            a(f"[:SOURce#]:{f}[:LEVel]:TRIGgered[:AMPLitude]", self._keyed("trig", key, -top, top))
            a(f"[:SOURce#]:{f}:MODE", self._src_mode(key))
            a(f"[:SOURce#]:{f}:RANGe[:UPPer]", self._keyed("src_range", key, -top, top, magnitude=True))
            a(f"[:SOURce#]:{f}:RANGe:AUTO", self._keyed_flag("src_auto", key))
            a(f"[:SOURce#]:{f}:STARt", self._sweep(key, 0, top))
            a(f"[:SOURce#]:{f}:STOP", self._sweep(key, 1, top))
            a(f"[:SOURce#]:{f}:POINts", self._sweep(key, 2, top))
            a(f"[:SOURce#]:LIST:{f}[:DATA]", self._list(key, top))
            a(f"[:SOURce#]:LIST:{f}:POINts?", lambda s, args, key=key: str(len(self._ch(s).lists[key])))
            a(f"[:SENSe#]:{f}[:DC]:PROTection[:LEVel]", self._keyed("prot", key, -top, top, magnitude=True))
            a(f"[:SENSe#]:{f}[:DC]:RANGe[:UPPer]", self._keyed("sens_range", key, -top, top, magnitude=True))
            a(f"[:SENSe#]:{f}[:DC]:RANGe:AUTO", self._keyed_flag("sens_auto", key))
            a(f"[:SENSe#]:{f}[:DC]:NPLCycles", self._nplc)
            a(f"[:SENSe#]:{f}[:DC]:APERture", self._aperture)
        a("[:SENSe#]:CURRent[:DC]:PROTection:TRIPped?", lambda s, args: "1" if self._ch(s).tripped else "0")
        a("[:SENSe#]:VOLTage[:DC]:PROTection:TRIPped?", lambda s, args: "0")
        a("[:SOURce#]:PULSe:WIDTh", self._number("pulse_width", *PULSE_WIDTH_RANGE))
        a("[:SOURce#]:PULSe:DELay", self._number("pulse_delay", *PULSE_DELAY_RANGE))
        a("[:SENSe#]:FUNCtion[:ON]", self._sense_on)
        a("[:SENSe#]:FUNCtion:OFF", self._sense_off)
        a("[:SENSe#]:FUNCtion:ALL", lambda s, args: self._ch(s).__setattr__("sense", ["VOLT", "CURR", "RES"]))
        a("OUTPut#[:STATe]", self._output)
        a("OUTPut#:OFF:MODE", self._choice("off_mode", {"ZERO": "ZERO", "HIZ": "HIZ", "NORM": "NORM",
                                                         "NORMAL": "NORM"}))
        a("OUTPut#:PROTection[:STATe]", self._flag("protection"))
        for sub in ("[:ALL]", ":ACQuire", ":TRANsient"):
            a(f":TRIGger#{sub}:COUNt", self._number("count", *COUNT_RANGE, integer=True))
            a(f":TRIGger#{sub}:SOURce", self._choice("trig_source", TRIGGER_SOURCES))
            a(f":TRIGger#{sub}:TIMer", self._number("timer", *TIMER_RANGE))
            a(f":ARM#{sub}:COUNt", self._number("arm_count", *COUNT_RANGE, integer=True))
        a(":TRIGger#:ACQuire:DELay", self._number("acq_delay", *DELAY_RANGE))
        a(":TRIGger#:TRANsient:DELay", self._number("tran_delay", *DELAY_RANGE))
        a(":TRIGger#[:ALL]:DELay", self._both_delays)
        a(":INITiate[:IMMediate][:ALL]", lambda s, args: self._initiate(args))
        a(":INITiate[:IMMediate]:ACQuire", lambda s, args: self._initiate(args))
        a(":INITiate[:IMMediate]:TRANsient", lambda s, args: self._initiate(args))
        a(":ABORt[:ALL]", lambda s, args: None)  # every run completes before the next message
        for f in ("CURRent", "VOLTage", "RESistance", "SOURce", "TIME", "STATus"):
            key = f[:4].upper()
            a(f":FETCh:ARRay:{f}?", lambda s, args, key=key: self._fetch(args, key, all_points=True))
            a(f":FETCh[:SCALar]:{f}?", lambda s, args, key=key: self._fetch(args, key, all_points=False))
            a(f":READ:ARRay:{f}?", lambda s, args, key=key: self._read(args, key, True))
            a(f":READ[:SCALar]:{f}?", lambda s, args, key=key: self._read(args, key, False))
        a(":FETCh:ARRay?", lambda s, args: self._fetch(args, None, all_points=True))
        a(":FETCh[:SCALar]?", lambda s, args: self._fetch(args, None, all_points=False))
        a(":READ:ARRay?", lambda s, args: self._read(args, None, True))
        a(":READ[:SCALar]?", lambda s, args: self._read(args, None, False))
        a(":MEASure:CURRent[:DC]?", lambda s, args: self._measure(args, "CURR"))
        a(":MEASure:VOLTage[:DC]?", lambda s, args: self._measure(args, "VOLT"))
        a(":MEASure:RESistance?", lambda s, args: self._measure(args, "RES"))
        a(":MEASure?", lambda s, args: self._measure(args, None))
        a(":FORMat[:DATA]", self._format)
        a(":FORMat:ELEMents:SENSe", self._elements)
        a(":SYSTem:LFRequency", self._lfr)
        a(":SYSTem:BEEPer[:STATe]", lambda s, args: "0" if self.query else None)
        a(":SYSTem:TIME:TIMer:COUNt:RESet[:AUTO]", lambda s, args: "0" if self.query else None)

    # generic handlers ---------------------------------------------------------------------
    @staticmethod
    def _need(args):
        if not args:
            raise ScpiError(-109)
        return args[0]

    def _number(self, attr: str, lo: float, hi: float, integer: bool = False):
        def handler(s, args):
            ch = self._ch(s)
            if self.query:
                v = getattr(ch, attr)
                return str(int(v)) if integer else f"{v:+.6E}"
            v = parse_float(self._need(args), lo, hi)
            setattr(ch, attr, int(round(v)) if integer else v)
            return None
        return handler

    def _flag(self, attr: str):
        def handler(s, args):
            ch = self._ch(s)
            if self.query:
                return "1" if getattr(ch, attr) else "0"
            setattr(ch, attr, parse_bool(self._need(args)))
            return None
        return handler

    def _choice(self, attr: str, names: dict):
        def handler(s, args):
            ch = self._ch(s)
            if self.query:
                return getattr(ch, attr)
            value = names.get(self._need(args).upper())
            if value is None:
                raise ScpiError(-224, args[0])
            setattr(ch, attr, value)
            return None
        return handler

    def _keyed(self, attr: str, key: str, lo: float, hi: float, magnitude: bool = False):
        def handler(s, args):
            ch = self._ch(s)
            table = getattr(ch, attr)
            if self.query:
                return f"{table[key]:+.6E}"
            v = parse_float(self._need(args), lo, hi)
            table[key] = abs(v) if magnitude else v
            return None
        return handler

    def _keyed_flag(self, attr: str, key: str):
        def handler(s, args):
            table = getattr(self._ch(s), attr)
            if self.query:
                return "1" if table[key] else "0"
            table[key] = parse_bool(self._need(args))
            return None
        return handler

    # source ----------------------------------------------------------------------------
    def _src_func(self, s, args):
        ch = self._ch(s)
        if self.query:
            return ch.func
        func = {"VOLT": "VOLT", "VOLTAGE": "VOLT", "CURR": "CURR", "CURRENT": "CURR"}.get(self._need(args).upper())
        if func is None:
            raise ScpiError(-224, args[0])
        ch.func = func
        return None

    def _level(self, key: str, top: float):
        def handler(s, args):
            ch = self._ch(s)
            if self.query:
                return f"{ch.level[key]:+.6E}"
            ch.level[key] = parse_float(self._need(args), -top, top)
            if key == "VOLT":
                if ch.output and ch.v_now != ch.level[key]:
                    self._spend(self.timing.source_settle_s)
                ch.v_now = ch.level[key]
            return None
        return handler

    def _src_mode(self, key: str):
        def handler(s, args):
            ch = self._ch(s)
            if self.query:
                return ch.mode[key]
            mode = {"FIX": "FIX", "FIXED": "FIX", "LIST": "LIST", "SWE": "SWE", "SWEEP": "SWE"}.get(
                self._need(args).upper())
            if mode is None:
                raise ScpiError(-224, args[0])
            ch.mode[key] = mode
            return None
        return handler

    def _list(self, key: str, top: float):
        def handler(s, args):
            ch = self._ch(s)
            if self.query:
                return ",".join(f"{v:+.6E}" for v in ch.lists[key])
            if not args:
                raise ScpiError(-109)
            if len(args) > LIST_MAX:
                raise ScpiError(-223, f"a list holds at most {LIST_MAX} points")
            ch.lists[key] = [parse_float(a, -top, top) for a in args]
            return None
        return handler

    def _sweep(self, key: str, index: int, top: float):
        def handler(s, args):
            sw = self._ch(s).sweep[key]
            if self.query:
                return str(sw[2]) if index == 2 else f"{sw[index]:+.6E}"
            if index == 2:
                sw[2] = int(parse_float(self._need(args), 1, LIST_MAX))
            else:
                sw[index] = parse_float(self._need(args), -top, top)
            return None
        return handler

    def _output(self, s, args):
        ch = self._ch(s)
        if self.query:
            return "1" if ch.output else "0"
        on = parse_bool(self._need(args))
        if on and ch.func != "VOLT":
            raise ScpiError(-221, "the simulated chip is driven in voltage only (:SOUR:FUNC:MODE VOLT)")
        ch.output = on
        ch.v_now = ch.level["VOLT"] if on else 0.0
        self._spend(self.timing.source_settle_s)
        return None

    # measurement settings ----------------------------------------------------------------
    def _nplc(self, s, args):
        ch = self._ch(s)
        if self.query:
            return f"{ch.nplc:+.6E}"
        ch.nplc = parse_float(self._need(args), *NPLC_RANGE)
        return None

    def _aperture(self, s, args):
        ch = self._ch(s)
        if self.query:
            return f"{ch.nplc / self.line_frequency:+.6E}"
        ch.nplc = parse_float(self._need(args), *APERTURE_RANGE) * self.line_frequency
        return None

    def _sense_on(self, s, args):
        ch = self._ch(s)
        if self.query:
            return ",".join(f'"{f}"' for f in ch.sense)
        funcs = [unquote(a).upper()[:4] for a in args]
        if not funcs or any(f not in ("VOLT", "CURR", "RES") for f in funcs):
            raise ScpiError(-224, ",".join(args))
        ch.sense = sorted(set(ch.sense) | set(funcs), key=["VOLT", "CURR", "RES"].index)
        return None

    def _sense_off(self, s, args):
        ch = self._ch(s)
        if self.query:
            return ",".join(f'"{f}"' for f in ("VOLT", "CURR", "RES") if f not in ch.sense)
        funcs = {unquote(a).upper()[:4] for a in args}
        ch.sense = [f for f in ch.sense if f not in funcs]
        return None

    def _both_delays(self, s, args):
        ch = self._ch(s)
        if self.query:
            return f"{ch.acq_delay:+.6E}"
        ch.acq_delay = ch.tran_delay = parse_float(self._need(args), *DELAY_RANGE)
        return None

    def _format(self, s, args):
        if self.query:
            return "ASC"
        fmt = self._need(args).upper()
        if fmt not in ("ASC", "ASCII"):
            raise ScpiError(-221, f"data format {','.join(args)} is not emulated; use ASCii")
        return None

    def _elements(self, s, args):
        if self.query:
            return ",".join(self.elements)
        names = [a.upper()[:4] for a in args]
        if not names or any(n not in ELEMENTS for n in names):
            raise ScpiError(-224, ",".join(args))
        self.elements = [e for e in ELEMENTS if e in names]
        return None

    def _lfr(self, s, args):
        if self.query:
            return str(self.line_frequency)
        f = int(parse_float(self._need(args)))
        if f not in (50, 60):
            raise ScpiError(-224, f"line frequency {f} Hz; 50 or 60")
        self.line_frequency = f
        return None

    # measurement --------------------------------------------------------------------------
    def _channels_of(self, args) -> list[int]:
        text = ",".join(args).replace(" ", "")
        if not text:
            return [1]
        m = re.fullmatch(r"\(@([\d,:]+)\)", text)
        if not m:
            raise ScpiError(-224, f"channel list {text!r}")
        out: list[int] = []
        for part in m.group(1).split(","):
            lo, _, hi = part.partition(":")
            out.extend(range(int(lo), int(hi or lo) + 1))
        for n in out:
            if n not in self.channels:
                raise ScpiError(-224, f"{self.instrument_model} has no channel {n}")
        return out

    def _aperture_s(self, ch: B2900Channel) -> float:
        return ch.nplc / self.line_frequency

    def _take(self, n: int) -> tuple[float, float, float, int, float]:
        """One measurement at what channel ``n`` drives now: (V, A, s, status, source)."""
        ch = self.channels[n]
        if not ch.output:
            v, i = 0.0, 0.0  # output relay open: the meter reads its offset
            ch.tripped = False
        else:
            v = ch.v_now
            i = self.wiring.terminal_current(f"{self.name}.{n}" if self.wiring.input_of(f"{self.name}.{n}")
                                             is not None else self.name, v)
            limit = ch.prot["CURR"]
            # the wiring settles a limited READ bus just below the limit: count that as in compliance
            ch.tripped = abs(i) >= limit * (1 - 1e-3)
            if ch.tripped:
                i = limit if i > 0 else -limit
        self._spend(self._aperture_s(ch) + self.timing.reading_overhead_s)
        status = STATUS_COMPLIANCE if ch.tripped else 0
        return v, i, self.t_elapsed, status, ch.v_now

    def _element(self, reading, key: str) -> float:
        v, i, t, status, source = reading
        if key == "VOLT":
            return v
        if key == "CURR":
            return i
        if key == "RES":
            return v / i if i else 9.91e37  # SCPI NaN
        if key == "TIME":
            return t
        if key == "STAT":
            return float(status)
        return source

    def _format_readings(self, readings, key: str | None) -> str:
        keys = [key] if key else self.elements
        return ",".join(f"{self._element(r, k):+.6E}" for r in readings for k in keys)

    def _measure(self, args, key: str | None) -> str:
        out = []
        for n in self._channels_of(args):
            ch = self.channels[n]
            if ch.output and ch.func != "VOLT":
                raise ScpiError(-221, "the simulated chip is driven in voltage only")
            self._spend(self.timing.source_settle_s)
            reading = self._take(n)
            ch.readings = [reading]
            out.append(self._format_readings([reading], key))
        return ",".join(out)

    def _step_level(self, ch: B2900Channel, k: int) -> float:
        mode = ch.mode["VOLT"]
        if mode == "FIX":
            return ch.trig["VOLT"]
        if mode == "LIST":
            return ch.lists["VOLT"][k % len(ch.lists["VOLT"])]
        start, stop, points = ch.sweep["VOLT"]
        j = k % points
        return start if points == 1 else start + j * (stop - start) / (points - 1)

    def _initiate(self, args) -> None:
        for n in self._channels_of(args):
            ch = self.channels[n]
            if ch.trig_source not in EMULATED_TRIGGERS + EXTERNAL_TRIGGERS:
                raise ScpiError(-221, f"trigger source {ch.trig_source} is not emulated; use AINT, TIM or EXTn")
            if ch.output and ch.func != "VOLT":
                raise ScpiError(-221, "the simulated chip is driven in voltage only")
            steps = ch.count * ch.arm_count
            if steps > MAX_READINGS_PER_COMMAND or \
                    steps * (1 + (ch.pulse_width if ch.shape == "PULS" else 0.0) / 1e-2) > MAX_STEPS_PER_COMMAND:
                raise ScpiError(-221, f"{steps} trigger steps of this length are beyond what the emulator runs "
                                      "in one command")
            ch.readings = []
            if ch.trig_source in EXTERNAL_TRIGGERS:
                ch.armed = steps  # the steps run on the board's trigger edges
                continue
            ch.armed = 0
            for k in range(steps):
                ch.readings.append(self._step(n, ch, k))
            if ch.shape == "DC" and ch.mode["VOLT"] == "FIX":
                ch.level["VOLT"] = ch.trig["VOLT"]  # a fixed-mode trigger moves the immediate level
            ch.v_now = ch.level["VOLT"] if ch.output else 0.0

    def _external_trigger(self, n: int) -> float | None:
        """An edge on the channel's trigger input: its next armed step (the time is charged here,
        so the board adds none); None when the channel waits for no edge."""
        ch = self.channels.get(n)
        if ch is None or ch.armed <= 0:
            return None
        k = ch.count * ch.arm_count - ch.armed
        ch.armed -= 1
        ch.readings.append(self._step(n, ch, k))
        if ch.armed == 0 and ch.shape == "DC" and ch.mode["VOLT"] == "FIX":
            ch.level["VOLT"] = ch.trig["VOLT"]
        ch.v_now = ch.level["VOLT"] if ch.output else 0.0
        return 0.0

    def _step(self, n: int, ch: B2900Channel, k: int):
        level = self._step_level(ch, k)
        aperture = self._aperture_s(ch) + self.timing.reading_overhead_s
        if ch.shape == "PULS":
            ch.v_now = level if ch.output else 0.0
            pulse_end = ch.tran_delay + ch.pulse_delay + ch.pulse_width
            if ch.output and ch.acq_delay < pulse_end:
                reading = self._take(n)  # measured during the pulse
                self.wiring.hold(ch.pulse_width)
            else:
                if ch.output:
                    self.wiring.hold(ch.pulse_width)
                ch.v_now = ch.level["VOLT"] if ch.output else 0.0
                reading = self._take(n)
            ch.v_now = ch.level["VOLT"] if ch.output else 0.0
            busy = max(pulse_end, ch.acq_delay + aperture)
        else:
            ch.v_now = level if ch.output else 0.0
            reading = self._take(n)
            busy = max(ch.tran_delay + self.timing.source_settle_s, ch.acq_delay + aperture)
        # _take charged the aperture; the rest of the step (or the timer period) passes too
        step = max(busy, ch.timer) if ch.trig_source == "TIM" else busy
        self._spend(max(0.0, step - aperture))
        return reading

    def _fetch(self, args, key: str | None, all_points: bool) -> str:
        out = []
        for n in self._channels_of(args):
            readings = self.channels[n].readings
            if not readings:
                raise ScpiError(-230, "no readings; measure or :INIT first")
            out.append(self._format_readings(readings if all_points else readings[-1:], key))
        return ",".join(out)

    def _read(self, args, key: str | None, all_points: bool) -> str:
        self._initiate(args)
        return self._fetch(args, key, all_points)
