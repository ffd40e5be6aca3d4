"""Keithley 2600B System SourceMeter (TSP, channels ``smua`` and ``smub``), our driver.

pymeasure's Keithley2600 is a legacy driver; this one follows the TSP attribute model
directly: each channel is a :class:`Keithley2600BChannel` with declarative properties
(``source_voltage`` -> ``smuX.source.levelv``, ``compliance_current`` ->
``smuX.source.limiti``, ...). :meth:`Keithley2600B.pulse_read` runs a whole
pulse-then-read train as a TSP function on the instrument and reads the buffer back in
one transfer, so a train of N pulses costs two messages instead of N round trips.
"""
from __future__ import annotations

from typing import Sequence

from pymeasure.instruments import Channel, Instrument
from pymeasure.instruments.validators import strict_discrete_set, strict_range

from .errors import InstrumentError
from .tsp import TspInstrument

# ranges of the 2600B attributes the driver validates (2636B reference manual)
LEVEL_V_RANGE = [-200.0, 200.0]  # V, source.levelv
LEVEL_I_RANGE = [-1.5, 1.5]  # A, source.leveli
LIMIT_I_RANGE = [1e-9, 1.5]  # A, source.limiti
LIMIT_V_RANGE = [0.02, 200.0]  # V, source.limitv
NPLC_RANGE = [0.001, 25.0]  # measure.nplc

PULSE_READ_SCRIPT = "hilPulseRead"
#: runs on the instrument: pulse on ``src`` at each level for ``width`` s, then read the
#: current at ``vread`` on ``meas`` into its nvbuffer1; both rest at ``rest`` V afterwards
PULSE_READ_LINES = (
    "function hilPulseReadRun(src, meas, levels, width, vread, rest)",
    "  meas.nvbuffer1.clear()",
    "  for k = 1, #levels do",
    "    src.source.levelv = levels[k]",
    "    delay(width)",
    "    src.source.levelv = rest",
    "    meas.source.levelv = vread",
    "    meas.measure.i(meas.nvbuffer1)",
    "    meas.source.levelv = rest",
    "  end",
    "end",
)


TUNE_SCRIPT = "hilTune"
#: runs on the instrument: closed-loop tuning of devices one after another, each routed by a
#: switch matrix over TSP-Link (``node[mx].channel.exclusiveclose(route)``; mx = 0: no
#: matrix). ``src`` reads the current at ``vread`` with ``gate`` at ``rgate`` and pulses;
#: below the band it steps up the ``up`` ladder (positive pulses), above it the ``down``
#: ladder (negative pulses); a ladder restarts at rung 0 after a reversal, and its step
#: doubles (to 32 rungs) while a pulse moves the reading by less than 30 % of the remaining
#: log-distance and halves once it does. A device is done after two reads in the band or
#: ``maxp`` pulses. Prints ``reading, pulses, in_band`` per device.
TUNE_LINES = (
    "hilLadder = {}",
    "function hilTuneLadder(pol, amps, gates) hilLadder[pol] = {amps = amps, gates = gates} end",
    "function hilTuneRun(src, gate, mx, routes, targets, tol, vread, rgate, width, maxp)",
    "  local out = {}",
    "  for c = 1, #routes do",
    "    if mx > 0 then node[mx].channel.exclusiveclose(routes[c]) end",
    "    local t = targets[c]",
    "    local lo, hi = t * (1 - tol), t * (1 + tol)",
    "    local k, step, last, ok, n, prev, i = 0, 1, 0, 0, 0, nil, 0",
    "    while true do",
    "      gate.source.levelv = rgate",
    "      src.source.levelv = vread",
    "      i = src.measure.i()",
    "      if i >= lo and i <= hi then",
    "        ok = ok + 1",
    "        if ok >= 2 then break end",
    "      else",
    "        ok = 0",
    "        if n >= maxp then break end",
    "        local pol = 1",
    "        if i > hi then pol = -1 end",
    "        if pol ~= last then",
    "          k, step = 0, 1",
    "        else",
    "          local moved, rem = math.abs(math.log(i / prev)), math.abs(math.log(prev / t))",
    "          if moved < 0.3 * rem then step = math.min(step * 2, 32) else step = math.max(step / 2, 1) end",
    "          k = k + math.floor(step)",
    "        end",
    "        local L = hilLadder[pol]",
    "        if k > #L.amps - 1 then k = #L.amps - 1 end",
    "        gate.source.levelv = L.gates[k + 1]",
    "        src.source.levelv = pol * L.amps[k + 1]",
    "        delay(width)",
    "        src.source.levelv = 0",
    "        last, n = pol, n + 1",
    "      end",
    "      prev = i",
    "    end",
    "    local done = 0",
    "    if ok >= 2 then done = 1 end",
    "    out[#out + 1] = string.format('%.6e,%d,%d', i, n, done)",
    "  end",
    "  print(table.concat(out, ','))",
    "end",
    "function hilSweepRun(src, gate, mx, routes, steps, vread, rgate, width)",
    "  local out = {}",
    "  for c = 1, #routes do",
    "    if mx > 0 then node[mx].channel.exclusiveclose(routes[c]) end",
    "    for s = 0, #steps do",
    "      if s > 0 then",
    "        gate.source.levelv = steps[s][2]",
    "        src.source.levelv = steps[s][1]",
    "        delay(width)",
    "        src.source.levelv = 0",
    "      end",
    "      gate.source.levelv = rgate",
    "      src.source.levelv = vread",
    "      out[#out + 1] = string.format('%.6e', src.measure.i())",
    "    end",
    "  end",
    "  print(table.concat(out, ','))",
    "end",
)


def _lua_table(values: Sequence[float]) -> str:
    return "{" + ",".join(f"{float(x):.6g}" for x in values) + "}"


def _lua_strings(values: Sequence[str]) -> str:
    for v in values:
        if not all(ch.isalnum() or ch in ",:" for ch in v):
            raise ValueError(f"route {v!r} is not a channel list")
    return "{" + ",".join(f'"{v}"' for v in values) + "}"


class Keithley2600BChannel(Channel):
    """One SMU channel (``smua`` or ``smub``) of a 2600B."""

    source_function = Channel.control(
        "print(smu{ch}.source.func)", "smu{ch}.source.func = %d",
        """Control (str) the source function, 'voltage' or 'current'.""",
        validator=strict_discrete_set, values={"current": 0, "voltage": 1}, map_values=True)

    source_voltage = Channel.control(
        "print(smu{ch}.source.levelv)", "smu{ch}.source.levelv = %g",
        """Control (float) the source voltage in V, -200 to 200.""",
        validator=strict_range, values=LEVEL_V_RANGE)

    source_current = Channel.control(
        "print(smu{ch}.source.leveli)", "smu{ch}.source.leveli = %g",
        """Control (float) the source current in A, -1.5 to 1.5.""",
        validator=strict_range, values=LEVEL_I_RANGE)

    compliance_current = Channel.control(
        "print(smu{ch}.source.limiti)", "smu{ch}.source.limiti = %g",
        """Control (float) the current limit in A while sourcing voltage, 1 nA to 1.5 A.""",
        validator=strict_range, values=LIMIT_I_RANGE)

    compliance_voltage = Channel.control(
        "print(smu{ch}.source.limitv)", "smu{ch}.source.limitv = %g",
        """Control (float) the voltage limit in V while sourcing current, 20 mV to 200 V.""",
        validator=strict_range, values=LIMIT_V_RANGE)

    source_autorange_voltage = Channel.control(
        "print(smu{ch}.source.autorangev)", "smu{ch}.source.autorangev = %d",
        """Control (bool) source voltage autoranging.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    output_enabled = Channel.control(
        "print(smu{ch}.source.output)", "smu{ch}.source.output = %d",
        """Control (bool) the output state.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    measure_nplc = Channel.control(
        "print(smu{ch}.measure.nplc)", "smu{ch}.measure.nplc = %g",
        """Control (float) the integration time in power-line cycles, 0.001 to 25.""",
        validator=strict_range, values=NPLC_RANGE)

    measure_autorange_current = Channel.control(
        "print(smu{ch}.measure.autorangei)", "smu{ch}.measure.autorangei = %d",
        """Control (bool) current measurement autoranging.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True)

    current = Channel.measurement("print(smu{ch}.measure.i())", """Measure the current in A (float).""")

    voltage = Channel.measurement("print(smu{ch}.measure.v())", """Measure the voltage in V (float).""")

    buffer_count = Channel.measurement(
        "print(smu{ch}.nvbuffer1.n)", """Get (int) the number of readings in nvbuffer1.""",
        cast=lambda v: int(float(v)))

    def reset(self) -> None:
        """This channel to its power-on state (output off, 0 V)."""
        self.write("smu{ch}.reset()")

    def apply_voltage(self, compliance_current: float, nplc: float = 0.01) -> None:
        """Source volts with a current limit; autoranging; ``nplc`` integration."""
        self.source_function = "voltage"
        self.source_autorange_voltage = True
        self.compliance_current = compliance_current
        self.measure_autorange_current = True
        self.measure_nplc = nplc

    def pulse(self, level: float, width: float, rest: float = 0.0) -> None:
        """One pulse to ``level`` V for ``width`` s, timed on the instrument (one message)."""
        strict_range(level, LEVEL_V_RANGE)
        if not width > 0:
            raise ValueError(f"pulse width must be positive, got {width!r}")
        self.write(f"smu{{ch}}.source.levelv = {level:.6g} delay({width:.6g}) smu{{ch}}.source.levelv = {rest:.6g}")

    def buffer_readings(self) -> list[float]:
        """All readings of nvbuffer1 in one transfer."""
        n = self.buffer_count
        if n == 0:
            return []
        return self.values(f"printbuffer(1, {n}, smu{{ch}}.nvbuffer1.readings)")


class Keithley2600B(TspInstrument):
    """Keithley 2600B dual-channel SourceMeter (2602B / 2612B / 2636B).

    .. code-block:: python

        smu = Keithley2600B("TCPIP0::192.168.0.20::INSTR")
        smu.smua.apply_voltage(compliance_current=1e-3)
        smu.smua.source_voltage = 0.2
        smu.smua.output_enabled = True
        print(smu.smua.current)
        readings = smu.pulse_read([1.0, 1.1, 1.2], width=100e-6, v_read=0.2)
    """

    smua = Instrument.ChannelCreator(Keithley2600BChannel, "a")
    smub = Instrument.ChannelCreator(Keithley2600BChannel, "b")

    def __init__(self, adapter, name="Keithley 2600B SourceMeter", **kwargs):
        super().__init__(adapter, name, **kwargs)

    def shutdown(self) -> None:
        """Safe state: both channels at 0 V with outputs off, confirmed with ``*OPC?``."""
        self.write("smua.source.levelv = 0 smua.source.output = 0 smub.source.levelv = 0 smub.source.output = 0")
        self.ask("*OPC?")
        super().shutdown()

    def channel(self, ch: str) -> Keithley2600BChannel:
        if ch not in ("a", "b"):
            raise ValueError(f"2600B channels are 'a' and 'b', not {ch!r}")
        return self.smua if ch == "a" else self.smub

    def load_tuning(self, up: tuple[Sequence[float], Sequence[float]],
                    down: tuple[Sequence[float], Sequence[float]]) -> None:
        """Load the on-instrument tuning script (once) and its two ladders of (amplitudes V, gates V).

        Rung k of ``up`` pulses +amps[k] with the gate channel at gates[k]; ``down`` pulses -amps[k].
        """
        if TUNE_SCRIPT not in self._scripts:
            self.load_script(TUNE_SCRIPT, TUNE_LINES)
        for pol, (amps, gates) in ((1, up), (-1, down)):
            if len(amps) != len(gates) or not amps:
                raise ValueError("a ladder needs as many gates as amplitudes, at least one rung")
            for x in (*amps, *gates):
                strict_range(x, LEVEL_V_RANGE)
            self.write(f"hilTuneLadder({pol}, {_lua_table(amps)}, {_lua_table(gates)})")
        self.raise_errors()

    def tune(self, routes: Sequence[str], targets: Sequence[float], tol_rel: float, v_read: float,
             read_gate: float, width: float, max_pulses: int, source: str = "a", gate: str = "b",
             matrix_node: int = 0) -> list[tuple[float, int, bool]]:
        """Closed-loop tuning of devices in one message (after :meth:`load_tuning`).

        Device k is routed by ``exclusiveclose(routes[k])`` on TSP-Link node ``matrix_node``
        (0: no matrix) and tuned until its read current at ``v_read`` lies within
        ``tol_rel`` of ``targets[k]`` (A). Returns (final current A, pulses, in band) per device.
        """
        if len(routes) != len(targets):
            raise ValueError("one target per route")
        if not routes:
            return []
        if not (width > 0 and 0 < tol_rel < 1 and max_pulses >= 0):
            raise ValueError("need width > 0, 0 < tol_rel < 1 and max_pulses >= 0")
        self.channel(source), self.channel(gate)
        reply = self.ask(f"hilTuneRun(smu{source}, smu{gate}, {int(matrix_node)}, {_lua_strings(routes)}, "
                         f"{_lua_table(targets)}, {tol_rel:.6g}, {v_read:.6g}, {read_gate:.6g}, {width:.6g}, "
                         f"{int(max_pulses)})")
        fields = reply.strip().split(",")
        if len(fields) != 3 * len(routes):
            self.raise_errors()
            raise InstrumentError(self.name, f"tuning returned {len(fields)} fields for {len(routes)} devices")
        return [(float(fields[3 * k]), int(fields[3 * k + 1]), fields[3 * k + 2] == "1") for k in range(len(routes))]

    def sweep(self, routes: Sequence[str], steps: Sequence[tuple[float, float]], v_read: float, read_gate: float,
              width: float, source: str = "a", gate: str = "b", matrix_node: int = 0) -> list[list[float]]:
        """Per device (routed as in :meth:`tune`): read, then for each (amplitude V, gate V) step a
        pulse and a read; one message for all devices. Returns the reads (A), len(steps) + 1 per device."""
        if TUNE_SCRIPT not in self._scripts:
            self.load_script(TUNE_SCRIPT, TUNE_LINES)
        if not routes:
            return []
        table = "{" + ",".join(f"{{{a:.6g},{g:.6g}}}" for a, g in steps) + "}"
        values = self.values(f"hilSweepRun(smu{source}, smu{gate}, {int(matrix_node)}, {_lua_strings(routes)}, "
                             f"{table}, {v_read:.6g}, {read_gate:.6g}, {width:.6g})")
        per = len(steps) + 1
        if len(values) != per * len(routes):
            self.raise_errors()
            raise InstrumentError(self.name, f"sweep returned {len(values)} reads for {len(routes)} devices")
        return [values[k * per:(k + 1) * per] for k in range(len(routes))]

    def pulse_read(self, levels: Sequence[float], width: float, v_read: float, pulse_channel: str = "a",
                   read_channel: str | None = None, rest: float = 0.0) -> list[float]:
        """Pulse-then-read train run on the instrument; returns one current (A) per pulse.

        For each level: ``pulse_channel`` goes to the level for ``width`` s and back to
        ``rest``; then ``read_channel`` (default: the same channel) reads the current at
        ``v_read`` into its nvbuffer1. The buffer comes back in a single ``printbuffer``.
        """
        levels = [float(x) for x in levels]
        if not levels:
            return []
        for x in (*levels, v_read, rest):
            strict_range(x, LEVEL_V_RANGE)
        if not width > 0:
            raise ValueError(f"pulse width must be positive, got {width!r}")
        read_channel = read_channel or pulse_channel
        self.channel(pulse_channel), self.channel(read_channel)
        if PULSE_READ_SCRIPT not in self._scripts:
            self.load_script(PULSE_READ_SCRIPT, PULSE_READ_LINES)
        table = "{" + ",".join(f"{x:.6g}" for x in levels) + "}"
        self.write(f"hilPulseReadRun(smu{pulse_channel}, smu{read_channel}, {table}, {width:.6g}, "
                   f"{v_read:.6g}, {rest:.6g})")
        readings = self.channel(read_channel).buffer_readings()
        if len(readings) != len(levels):
            self.raise_errors()
            raise InstrumentError(self.name, f"pulse train returned {len(readings)} readings for "
                                             f"{len(levels)} pulses")
        return readings
