"""Keithley 2600B System SourceMeter (TSP, channels ``smua`` and ``smub``), our driver.

pymeasure's Keithley2600 is a legacy driver; this one follows the TSP attribute model
directly: each channel is a :class:`Keithley2600BChannel` with declarative properties
(``source_voltage`` -> ``smuX.source.levelv``, ``compliance_current`` ->
``smuX.source.limiti``, ...). :meth:`Keithley2600B.pulse_read` runs a whole
pulse-then-read train as a TSP function on the instrument and reads the buffer back in
one transfer, so a train of N pulses costs two messages instead of N round trips.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

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
#: the keys of a tuning rule (:meth:`Keithley2600B.tune_cells`), readings in A, times in s, voltages in V
TUNE_RULE_KEYS = ("tol_rel", "tol_abs", "accept_fraction", "n_read", "v_read", "read_gate", "width_up",
                  "width_down", "step_growth", "max_step_rungs", "slow_fraction", "stall_pulses", "stall_rel",
                  "response_rel", "read_noise_rel", "confirm_z", "max_verify_reads")
#: pulses one device may be given in one tuning call (the instrument's script refuses more)
MAX_TUNE_PULSES = 10_000
#: s, allowance per source change + reading and per relay switch when a script's reply is awaited
STEP_ALLOWANCE_S, ROUTE_ALLOWANCE_S = 5e-3, 20e-3
#: runs on the instrument: closed-loop write-and-verify of devices one after another, each
#: routed by a switch matrix over TSP-Link (``node[mx].channel.exclusiveclose(route)``; mx =
#: 0: no matrix). ``src`` reads the current (mean of ``n_read`` readings at ``v_read``, gate
#: channel at ``read_gate``) and pulses; the gate channel drives the word line. The rule is
#: the per-cell state machine of rram-hil's ISPP (``protocols.ispp_machine.CellProgrammer``),
#: for one device at a time:
#:
#: * accept band: target +- accept_fraction * max(tol_rel * target, tol_abs); a device is
#:   done (status 1) once two or more reads of one state (no pulse between them) lie in the
#:   band, their mean too, by ``confirm_z`` standard errors when ``read_noise_rel`` > 0;
#: * in the band (or pooling toward it) but not yet sure: read again, up to
#:   ``max_verify_reads`` reads of one state; otherwise pulse: up (ladder 1, +amps[k]) when
#:   below the band (or the mean below the target), down (ladder -1) when above;
#: * a ladder restarts at the device's start rung after a reversal; while it continues, its
#:   step grows by ``step_growth`` (to ``max_step_rungs``) while a pulse moves the reading by
#:   less than ``slow_fraction`` of the remaining log-distance and shrinks back once it does;
#: * ``budget`` pulses spent: status 2; ``stall_pulses`` pulses at the top rung each moving
#:   the reading by less than ``stall_rel``: status 2 if the device ever responded (reads
#:   spread by ``response_rel``), else 3.
#:
#: A down pulse drives the bit line to -amp with the word line at gate - amp: the voltages on
#: the cell are those of a source-line pulse of +amp at gate (its source line is grounded).
#: Prints per device ``reading,pulses,status,reversals,min,max|`` then its log, one entry per
#: read ``rung:reading`` (rung +k+1 / -(k+1): the pulse that followed; 0: none followed).
TUNE_LINES = (
    "hilLadder = {}",
    "function hilTuneLadder(pol, amps, gates) hilLadder[pol] = {amps = amps, gates = gates} end",
    "local function fin(x) return x == x and x ~= math.huge and x ~= -math.huge end",
    "local function need(ok, what) if not ok then error('E-222:hilTuneRun ' .. what, 3) end end",
    "local function check(r, n, budgets, targets, su, sd)",
    "  for _, k in ipairs({'tol_rel', 'tol_abs', 'accept_fraction', 'n_read', 'v_read', 'read_gate', 'width_up',",
    "      'width_down', 'step_growth', 'max_step_rungs', 'slow_fraction', 'stall_pulses', 'stall_rel',",
    "      'response_rel', 'read_noise_rel', 'confirm_z', 'max_verify_reads'}) do",
    "    need(type(r[k]) == 'number' and fin(r[k]), k .. ' must be a finite number')",
    "  end",
    "  need(r.tol_rel >= 0 and r.tol_rel < 1 and r.tol_abs >= 0 and r.tol_rel + r.tol_abs > 0, 'needs a tolerance')",
    "  need(r.accept_fraction > 0 and r.accept_fraction <= 1, 'accept_fraction outside (0, 1]')",
    "  need(r.n_read >= 1 and r.n_read <= 100 and r.max_verify_reads >= 2 and r.stall_pulses >= 1, 'counts')",
    "  need(r.width_up > 0 and r.width_up <= 1 and r.width_down > 0 and r.width_down <= 1, 'pulse width')",
    "  need(r.step_growth >= 1 and r.max_step_rungs >= 1, 'step growth')",
    "  need(hilLadder[1] ~= nil and hilLadder[-1] ~= nil, 'needs both ladders (hilTuneLadder)')",
    "  for c = 1, n do",
    "    need(type(targets[c]) == 'number' and fin(targets[c]) and targets[c] > 0, 'targets must be > 0')",
    "    need(type(budgets[c]) == 'number' and budgets[c] >= 0 and budgets[c] <= " + str(MAX_TUNE_PULSES)
    + ", 'pulse budget outside 0 to " + str(MAX_TUNE_PULSES) + "')",
    "    need(su[c] >= 0 and su[c] < #hilLadder[1].amps and sd[c] >= 0 and sd[c] < #hilLadder[-1].amps, 'start rung')",
    "  end",
    "end",
    "function hilTuneRun(src, gate, mx, routes, targets, budgets, su, sd, lo0, hi0, r)",
    "  check(r, #routes, budgets, targets, su, sd)",
    "  local out = {}",
    "  for c = 1, #routes do",
    "    if mx > 0 then node[mx].channel.exclusiveclose(routes[c]) end",
    "    local t = targets[c]",
    "    local h = r.accept_fraction * math.max(r.tol_rel * t, r.tol_abs)",
    "    local lo, hi = t - h, t + h",
    "    local half = 0.5 * (hi - lo)",
    "    local start = {[1] = su[c], [-1] = sd[c]}",
    "    local status, n, nrev, last, pulsed, streak, ssum = 0, 0, 0, 0, false, 0, 0",
    "    local rung, step, stall, prev, i = 0, 1, 0, 0 / 0, 0",
    "    local imin, imax, log = lo0[c], hi0[c], {}",
    "    while true do",
    "      gate.source.levelv = r.read_gate",
    "      src.source.levelv = r.v_read",
    "      local s = 0",
    "      for _ = 1, r.n_read do s = s + src.measure.i() end",
    "      i = s / r.n_read",
    "      if i < imin then imin = i end",
    "      if i > imax then imax = i end",
    "      local moved, rem = math.abs(math.log(i / prev)), math.abs(math.log(prev / t))",
    "      local had = pulsed and fin(moved)",
    "      if pulsed then streak, ssum = 0, 0 end",
    "      streak, ssum = streak + 1, ssum + i",
    "      local mean = ssum / streak",
    "      local dev = math.abs(mean - t)",
    "      local sem = t * r.read_noise_rel / math.sqrt(r.n_read * streak)",
    "      local inband, mean_in = i >= lo and i <= hi, dev <= half",
    "      if inband and streak >= 2 and mean_in and dev + r.confirm_z * sem <= half then",
    "        status = 1",
    "      else",
    "        local pooling = mean_in and streak >= 2 and r.read_noise_rel > 0",
    "        local wait = (inband or pooling) and streak < r.max_verify_reads",
    "        local below = i < lo",
    "        if inband or pooling then below = mean < t end",
    "        local pol = below and 1 or -1",
    "        if not wait then",
    "          if n >= budgets[c] then status = 2 end",
    "          local L = hilLadder[pol]",
    "          if status == 0 and pol == last then",
    "            if had then",
    "              if moved < r.slow_fraction * math.max(rem, 1e-12) then",
    "                step = math.min(step * r.step_growth, r.max_step_rungs)",
    "              else",
    "                step = math.max(step / r.step_growth, 1)",
    "              end",
    "            end",
    "            if rung >= #L.amps - 1 and had and moved < r.stall_rel then stall = stall + 1 else stall = 0 end",
    "            if stall >= r.stall_pulses then",
    "              status = 3",
    "              if imax / math.max(imin, 1e-300) > 1 + r.response_rel then status = 2 end",
    "            end",
    "            rung = rung + math.floor(step)",
    "          elseif status == 0 then",
    "            if last ~= 0 then nrev = nrev + 1 end",
    "            rung, step, stall = start[pol], 1, 0",
    "          end",
    "          if status == 0 then",
    "            if rung > #L.amps - 1 then rung = #L.amps - 1 end",
    "            local amp, g = L.amps[rung + 1], L.gates[rung + 1]",
    "            log[#log + 1] = string.format('%d:%.9e', pol * (rung + 1), i)",
    "            if pol > 0 then gate.source.levelv = g else gate.source.levelv = g - amp end",
    "            src.source.levelv = pol * amp",
    "            delay(pol > 0 and r.width_up or r.width_down)",
    "            src.source.levelv = 0",
    "            last, n = pol, n + 1",
    "          end",
    "        end",
    "        pulsed = not wait",
    "        prev = i",
    "      end",
    "      if status ~= 0 then break end",
    "      if not pulsed then log[#log + 1] = string.format('0:%.9e', i) end",
    "    end",
    "    log[#log + 1] = string.format('0:%.9e', i)",
    "    out[#out + 1] = string.format('%.9e,%d,%d,%d,%.9e,%.9e|', i, n, status, nrev, imin, imax) .. table.concat(log, ';')",
    "  end",
    "  src.source.levelv = 0",
    "  gate.source.levelv = 0",
    "  print(table.concat(out, '/'))",
    "end",
    "function hilSweepRun(src, gate, mx, routes, steps, vread, rgate, width, nread, trips)",
    "  nread = nread or 1",
    "  local out = {}",
    "  for c = 1, #routes do",
    "    if mx > 0 then node[mx].channel.exclusiveclose(routes[c]) end",
    "    for s = 0, #steps do",
    "      if s > 0 then",
    "        local amp, g = steps[s][1], steps[s][2]",
    "        if amp < 0 then g = g + amp end",
    "        gate.source.levelv = g",
    "        src.source.levelv = amp",
    "        delay(steps[s][3] or width)",
    "        src.source.levelv = 0",
    "      end",
    "      gate.source.levelv = rgate",
    "      src.source.levelv = vread",
    "      local sum = 0",
    "      for _ = 1, nread do sum = sum + src.measure.i() end",
    "      out[#out + 1] = string.format('%.9e', sum / nread)",
    "      if trips then out[#out + 1] = src.source.compliance and '1' or '0' end",
    "    end",
    "  end",
    "  src.source.levelv = 0",
    "  gate.source.levelv = 0",
    "  print(table.concat(out, ','))",
    "end",
)


#: the plain rule of :meth:`Keithley2600B.tune`: two reads in the band, step doubling to 32 rungs
PLAIN_TUNE_RULE = {"tol_rel": 0.03, "tol_abs": 0.0, "accept_fraction": 1.0, "n_read": 1, "v_read": 0.2,
                   "read_gate": 3.0, "width_up": 1e-4, "width_down": 1e-4, "step_growth": 2.0, "max_step_rungs": 32,
                   "slow_fraction": 0.3, "stall_pulses": 3, "stall_rel": 0.05, "response_rel": 0.5,
                   "read_noise_rel": 0.0, "confirm_z": 2.0, "max_verify_reads": 2}


@dataclass(frozen=True)
class TunedDevice:
    """One device's outcome of :meth:`Keithley2600B.tune_cells` (readings in A)."""

    reading: float  # the last reading
    pulses: int
    status: int  # 1 in band, 2 budget spent or stalled after responding, 3 never responded
    reversals: int
    lowest: float  # lowest and highest reading so far (the spread passed in included)
    highest: float
    #: per read: the signed rung (+k+1 up, -(k+1) down) of the pulse that followed it (0: none) and the reading
    log: tuple[tuple[int, float], ...]

    @classmethod
    def parse(cls, text: str) -> "TunedDevice":
        head, _, tail = text.partition("|")
        f = head.split(",")
        log = tuple((int(k), float(v)) for k, _, v in (e.partition(":") for e in tail.split(";") if e))
        return cls(float(f[0]), int(f[1]), int(f[2]), int(f[3]), float(f[4]), float(f[5]), log)


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

    def current_and_trip(self) -> tuple[float, bool]:
        """One current reading (A) and whether the source is in compliance (``source.compliance``),
        both in one transfer."""
        reading, _, status = self.ask("print(smu{ch}.measure.i(), smu{ch}.source.compliance)").strip().partition("\t")
        return float(reading), status.strip() == "true"

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

    def reaches_node(self, number: int) -> bool:
        """True when TSP-Link node ``number`` is there with a switch matrix channel (a 707B)."""
        return self.ask(f"print(node[{int(number)}] ~= nil and node[{int(number)}].channel ~= nil)").strip() == "true"

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
        """The plain rule of :meth:`tune_cells` (no start rungs, no stall or noise model): each device
        until two reads lie within ``tol_rel`` of its target (A) or ``max_pulses`` pulses.
        Returns (final current A, pulses, in band) per device."""
        rule = {**PLAIN_TUNE_RULE, "tol_rel": tol_rel, "v_read": v_read, "read_gate": read_gate,
                "width_up": width, "width_down": width, "stall_pulses": MAX_TUNE_PULSES + 1}
        out = self.tune_cells(routes, targets, rule, [max_pulses] * len(routes), source=source, gate=gate,
                              matrix_node=matrix_node)
        return [(d.reading, d.pulses, d.status == 1) for d in out]

    def tune_cells(self, routes: Sequence[str], targets: Sequence[float], rule: Mapping[str, float],
                   budgets: Sequence[int], start_up: Sequence[int] | None = None,
                   start_down: Sequence[int] | None = None, spread: Sequence[tuple[float, float]] | None = None,
                   source: str = "a", gate: str = "b", matrix_node: int = 0) -> list["TunedDevice"]:
        """Closed-loop write-and-verify of devices in one message (after :meth:`load_tuning`; the rule
        is documented at :data:`TUNE_LINES`).

        Device k is routed by ``exclusiveclose(routes[k])`` on TSP-Link node ``matrix_node`` (0:
        no matrix) and tuned toward ``targets[k]`` (A at ``rule["v_read"]``) with at most
        ``budgets[k]`` pulses, each ladder starting at ``start_up[k]`` / ``start_down[k]``
        (default rung 0); ``spread[k]`` = (lowest, highest) reading of the device so far (A)
        carries its "has it ever responded" evidence. Both channels rest at 0 V afterwards.
        """
        n = len(routes)
        if len(targets) != n or len(budgets) != n:
            raise ValueError("one target and one pulse budget per route")
        if not n:
            return []
        missing = [k for k in TUNE_RULE_KEYS if k not in rule]
        if missing or set(rule) - set(TUNE_RULE_KEYS):
            raise ValueError(f"a tuning rule has exactly the keys {', '.join(TUNE_RULE_KEYS)}")
        for k in TUNE_RULE_KEYS:
            if not math.isfinite(float(rule[k])):
                raise ValueError(f"tuning rule {k} must be a finite number, got {rule[k]!r}")
        strict_range(float(rule["v_read"]), LEVEL_V_RANGE)
        strict_range(float(rule["read_gate"]), LEVEL_V_RANGE)
        if not all(math.isfinite(float(t)) and float(t) > 0 for t in targets):
            raise ValueError("targets must be positive finite currents (A)")
        if not all(0 <= int(b) <= MAX_TUNE_PULSES for b in budgets):
            raise ValueError(f"pulse budgets must lie in 0 to {MAX_TUNE_PULSES}")
        start_up = [0] * n if start_up is None else [int(k) for k in start_up]
        start_down = [0] * n if start_down is None else [int(k) for k in start_down]
        spread = [(1e300, -1e300)] * n if spread is None else [(float(a), float(b)) for a, b in spread]
        if not (len(start_up) == len(start_down) == len(spread) == n):
            raise ValueError("one start rung per ladder and one spread per route")
        self.channel(source), self.channel(gate)
        table = "{" + ",".join(f"{k}={float(rule[k])!r}" for k in TUNE_RULE_KEYS) + "}"
        exact = lambda xs: "{" + ",".join(repr(float(x)) for x in xs) + "}"  # noqa: E731
        ints = lambda xs: "{" + ",".join(str(int(x)) for x in xs) + "}"  # noqa: E731
        # the reply comes when the last device is done: wait for the worst case of the budgets
        per_read = float(rule["n_read"]) * STEP_ALLOWANCE_S
        worst = sum(budgets) * (max(float(rule["width_up"]), float(rule["width_down"])) + STEP_ALLOWANCE_S + per_read) \
            + n * (ROUTE_ALLOWANCE_S + float(rule["max_verify_reads"]) * per_read)
        with self.reply_within(2.0 + worst):
            reply = self.ask(f"hilTuneRun(smu{source}, smu{gate}, {int(matrix_node)}, {_lua_strings(routes)}, "
                             f"{exact(targets)}, {ints(budgets)}, {ints(start_up)}, {ints(start_down)}, "
                             f"{exact(a for a, _ in spread)}, {exact(b for _, b in spread)}, {table})")
        try:
            devices = [TunedDevice.parse(part) for part in reply.strip().split("/")]
        except (ValueError, IndexError):
            devices = []
        if len(devices) != n:
            self.raise_errors()
            raise InstrumentError(self.name, f"tuning returned {len(devices)} results for {n} devices")
        return devices

    def sweep(self, routes: Sequence[str], steps: Sequence[Sequence[float]], v_read: float, read_gate: float,
              width: float, source: str = "a", gate: str = "b", matrix_node: int = 0,
              n_read: int = 1, trips: bool = False) -> list[list[float]] | tuple[list[list[float]], list[list[bool]]]:
        """Per device (routed as in :meth:`tune_cells`): read, then for each (amplitude V, gate V[,
        width s]) step a pulse and a read; one message for all devices. A negative step drives
        the bit line to the amplitude with the word line at gate + amplitude (the cell sees a
        source-line pulse of |amplitude| at gate). Reads are means of ``n_read`` readings.
        Returns the reads (A), len(steps) + 1 per device; both channels rest at 0 V afterwards.
        With ``trips`` the script also reads ``source.compliance`` after each read and the call
        returns (reads, in compliance per read): the status comes in the same transfer."""
        if TUNE_SCRIPT not in self._scripts:
            self.load_script(TUNE_SCRIPT, TUNE_LINES)
        if not routes:
            return []
        for step in steps:
            if len(step) not in (2, 3):
                raise ValueError("a sweep step is (amplitude V, gate V) or (amplitude V, gate V, width s)")
            strict_range(float(step[0]), LEVEL_V_RANGE)
            strict_range(float(step[1]), LEVEL_V_RANGE)
            if not 0 < float(step[2] if len(step) == 3 else width) <= 1:
                raise ValueError("sweep pulse widths must lie in (0, 1] s")
        if not 1 <= int(n_read) <= 100:
            raise ValueError("n_read must lie in 1 to 100")
        table = "{" + ",".join("{" + ",".join(f"{float(x):.6g}" for x in step) + "}" for step in steps) + "}"
        per_device = ROUTE_ALLOWANCE_S + (len(steps) + 1) * int(n_read) * STEP_ALLOWANCE_S + sum(
            STEP_ALLOWANCE_S + float(step[2] if len(step) == 3 else width) for step in steps)
        with self.reply_within(2.0 + len(routes) * per_device):
            values = self.values(f"hilSweepRun(smu{source}, smu{gate}, {int(matrix_node)}, {_lua_strings(routes)}, "
                                 f"{table}, {v_read:.6g}, {read_gate:.6g}, {width:.6g}, {int(n_read)}"
                                 + (", true)" if trips else ")"))
        per = (len(steps) + 1) * (2 if trips else 1)
        if len(values) != per * len(routes):
            self.raise_errors()
            raise InstrumentError(self.name, f"sweep returned {len(values)} values for {len(routes)} devices")
        per_device = [values[k * per:(k + 1) * per] for k in range(len(routes))]
        if not trips:
            return per_device
        return [v[0::2] for v in per_device], [[flag == 1 for flag in v[1::2]] for v in per_device]

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
