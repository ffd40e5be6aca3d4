"""Emulated Keithley 2450 SourceMeter (SCPI command set, one channel).

Understands the commands a 2450 driver sends for voltage sourcing with current
compliance and current measurement (``:SOUR:FUNC``, ``:SOUR:VOLT[:LEV]``,
``:SOUR:VOLT:ILIM``, ranges, ``:SENS:FUNC``, NPLC, ``OUTP``, ``:READ?``,
``:MEAS:CURR?``, the reading buffer ``:TRAC:DATA?`` after ``:COUN`` readings) and answers
anything else with -113 Undefined header, as the instrument does. Its output drives the
addresser input it is wired to; a reading is the current the chip draws there.
"""
from __future__ import annotations

from .clock import SmuTiming
from .scpi import ScpiEmulator, ScpiError, parse_bool, parse_float, unquote
from .wiring import MAX_READINGS_PER_COMMAND, Wiring

V_MAX = 210.0  # V, source range of the 2450
I_MAX = 1.05  # A
NPLC_RANGE = (0.01, 10.0)


class Keithley2450Emulator(ScpiEmulator):
    idn = "KEITHLEY INSTRUMENTS,MODEL 2450,04455011,1.7.12b"
    model = "keithley2450"
    default_transport = "usbtmc"

    def __init__(self, wiring: Wiring, endpoint: str, lock=None, timing: SmuTiming | None = None):
        super().__init__(lock if lock is not None else wiring.lock)
        #: bench-clock costs: the 2450 adds ~0.2 ms per reading to its integration time
        self.timing = timing or SmuTiming(reading_overhead_s=200e-6, source_settle_s=100e-6)
        self.wiring, self.endpoint = wiring, endpoint
        self.reset()
        wiring.attach(endpoint, self.output_level, lambda: self.i_limit)
        a = self.add
        a(":SOURce:FUNCtion[:MODE]", self._source_function)
        a("[:SOURce]:VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._volt_level)
        a("[:SOURce]:VOLTage:ILIMit[:LEVel]", self._ilimit)
        a("[:SOURce]:VOLTage:ILIMit[:LEVel]:TRIPped?", self._ilimit_tripped)
        a("[:SOURce]:VOLTage:RANGe", self._setting("src_volt_range", 0.0, V_MAX))
        a("[:SOURce]:VOLTage:RANGe:AUTO", self._flag("src_volt_auto"))
        a("[:SOURce]:VOLTage:DELay", self._setting("src_volt_delay", 0.0, 10e3))
        a("[:SOURce]:VOLTage:DELay:AUTO", self._flag("src_volt_delay_auto"))
        a("[:SOURce]:CURRent[:LEVel][:IMMediate][:AMPLitude]", self._curr_level)
        a("[:SOURce]:CURRent:VLIMit[:LEVel]", self._setting("src_vlim", 0.02, V_MAX))
        a("[:SOURce]:CURRent:RANGe", self._setting("src_curr_range", 0.0, I_MAX))
        a("[:SOURce]:CURRent:RANGe:AUTO", self._flag("src_curr_auto"))
        a("[:SENSe]:FUNCtion[:ON]", self._sense_function)
        for func, top in (("CURRent", I_MAX), ("VOLTage", V_MAX), ("RESistance", 210e6)):
            key = func[:4].lower()
            a(f"[:SENSe]:{func}[:DC]:NPLCycles", self._nplc)
            a(f"[:SENSe]:{func}[:DC]:RANGe[:UPPer]", self._setting(f"sense_{key}_range", 0.0, top))
            a(f"[:SENSe]:{func}[:DC]:RANGe:AUTO", self._flag(f"sense_{key}_auto"))
        a("[:SENSe]:COUNt", self._count)
        a(":COUNt", self._count)
        a("OUTPut[:STATe]", self._output)
        a(":READ?", self._read)
        a(":MEASure[:CURRent][:DC]?", self._measure_current)
        a(":MEASure:VOLTage[:DC]?", lambda s, args: f"{self.output_level():.6e}")
        a(":TRACe:CLEar", lambda s, args: self.buffer.clear())
        a(":TRACe:ACTual?", lambda s, args: str(len(self.buffer)))
        a(":TRACe:DATA?", self._trace_data)
        a(":INITiate[:IMMediate]", self._initiate)
        a(":STATus:PRESet", lambda s, args: None)

    # state ------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.output = False
        self.source_func = "VOLT"
        self.sense_func = "CURR"
        self.v_level = 0.0
        self.i_level = 0.0
        self.i_limit = 105e-6  # A, the 2450's power-on current limit
        self.nplc = 1.0
        self.count = 1
        self.settings: dict[str, float] = {}
        self.buffer: list[float] = []

    def output_level(self) -> float:
        return self.v_level if (self.output and self.source_func == "VOLT") else 0.0

    def outputs_off(self) -> None:
        self.output = False

    # handlers ----------------------------------------------------------------------------
    def _flag(self, key: str):
        def handler(s, args):
            if self.query:
                return "1" if self.settings.get(key, 1.0) else "0"
            self._need(args)
            self.settings[key] = float(parse_bool(args[0]))
            return None
        return handler

    @staticmethod
    def _need(args: list[str]) -> None:
        if not args:
            raise ScpiError(-109)

    def _source_function(self, s, args):
        if self.query:
            return self.source_func
        self._need(args)
        func = args[0].upper()
        if func in ("VOLT", "VOLTAGE"):
            self.source_func = "VOLT"
        elif func in ("CURR", "CURRENT"):
            self.source_func = "CURR"
        else:
            raise ScpiError(-224, args[0])
        return None

    def _volt_level(self, s, args):
        if self.query:
            return f"{self.v_level:.6e}"
        self._need(args)
        v = parse_float(args[0], -V_MAX, V_MAX)
        if self.output and v != self.v_level:
            self.busy(self.timing.source_settle_s)
        self.v_level = v
        return None

    def _curr_level(self, s, args):
        if self.query:
            return f"{self.i_level:.6e}"
        self._need(args)
        self.i_level = parse_float(args[0], -I_MAX, I_MAX)
        return None

    def _ilimit(self, s, args):
        if self.query:
            return f"{self.i_limit:.6e}"
        self._need(args)
        # the 2450 takes the magnitude; its smallest limit is 1 nA
        self.i_limit = max(abs(parse_float(args[0], -I_MAX, I_MAX)), 1e-9)
        return None

    def _setting(self, key: str, lo: float, hi: float):
        """A numeric setting the simulated measurement does not depend on (ranges, delays)."""
        def handler(s, args):
            if self.query:
                return f"{self.settings.get(key, 0.0):.6e}"
            self._need(args)
            self.settings[key] = parse_float(args[0], lo, hi)
            return None
        return handler

    def _sense_function(self, s, args):
        if self.query:
            return f'"{self.sense_func}:DC"' if self.sense_func != "RES" else '"RES"'
        self._need(args)
        func = unquote(args[0]).upper().split(":")[0]
        names = {"CURR": "CURR", "CURRENT": "CURR", "VOLT": "VOLT", "VOLTAGE": "VOLT", "RES": "RES",
                 "RESISTANCE": "RES"}
        if func not in names:
            raise ScpiError(-224, args[0])
        self.sense_func = names[func]
        return None

    def _nplc(self, s, args):
        if self.query:
            return f"{self.nplc:g}"
        self._need(args)
        self.nplc = parse_float(args[0], *NPLC_RANGE)
        return None

    def _count(self, s, args):
        if self.query:
            return str(self.count)
        self._need(args)
        self.count = int(parse_float(args[0], 1, 300000))
        return None

    def _output(self, s, args):
        if self.query:
            return "1" if self.output else "0"
        self._need(args)
        self.output = parse_bool(args[0])
        self.busy(self.timing.source_settle_s)
        return None

    def _ilimit_tripped(self, s, args):
        """1 while the voltage source is held at its current limit."""
        if not self.output or self.source_func != "VOLT":
            return "0"
        current = self.wiring.terminal_current(self.endpoint, self.v_level)
        return "1" if abs(current) >= self.i_limit * (1 - 1e-3) else "0"

    def _one_reading(self) -> float:
        if self.source_func != "VOLT":
            raise ScpiError(-221, "the simulated bench sources voltage only")
        if not self.output:
            # output relay open: no current flows, the meter reads its offset
            current = 0.0
        else:
            current = self.wiring.terminal_current(self.endpoint, self.v_level)
            if abs(current) > self.i_limit:
                current = self.i_limit if current > 0 else -self.i_limit
        if self.sense_func == "CURR":
            return current
        if self.sense_func == "VOLT":
            return self.output_level()
        return self.output_level() / current if current else float("inf")

    def _take(self) -> list[float]:
        if self.count > MAX_READINGS_PER_COMMAND:
            raise ScpiError(-221, f"the emulator takes at most {MAX_READINGS_PER_COMMAND} readings per command")
        readings = [self._one_reading() for _ in range(self.count)]
        self.busy(self.count * self.timing.reading_s(self.nplc))
        self.buffer.extend(readings)
        return readings

    def _read(self, s, args):
        return ",".join(f"{r:.6e}" for r in self._take())

    def _measure_current(self, s, args):
        self.sense_func = "CURR"
        return self._read(s, args)

    def _initiate(self, s, args):
        self._take()
        return None

    def _trace_data(self, s, args):
        if len(args) < 2:
            raise ScpiError(-109, "start and end index required")
        start, end = int(parse_float(args[0], 1)), int(parse_float(args[1], 1))
        if end > len(self.buffer) or start > end:
            raise ScpiError(-222, f"buffer holds {len(self.buffer)} readings")
        return ",".join(f"{r:.6e}" for r in self.buffer[start - 1:end])
