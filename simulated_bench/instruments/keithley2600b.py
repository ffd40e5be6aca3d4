"""Emulated Keithley 2600B System SourceMeter (TSP, channels smua and smub).

The received TSP runs as Lua against emulated ``smua`` / ``smub`` objects with the
instrument's attributes (``source.func/levelv/leveli/limiti/limitv/output/rangev/
autorangev``, ``measure.nplc/autorangei/rangei/count``, ``measure.i/v/iv()``,
``nvbuffer1/2``, ``reset()``); an attribute the firmware lacks gives a TSP run-time
error, a value out of range -222, exactly as the real instrument reports them. Each
channel drives the addresser input it is wired to; ``delay(t)`` lets ``t`` seconds pass
with every output as it is, which is how an on-instrument script makes a pulse.
"""
from __future__ import annotations

from .clock import SmuTiming
from .tsp import TspEmulator
from .wiring import Wiring

SMU_LUA = r"""
local id, hw = ...
local R, E = __hil_range, __hil_oneof
local smu = {OUTPUT_DCAMPS = 0, OUTPUT_DCVOLTS = 1, OUTPUT_OFF = 0, OUTPUT_ON = 1, OUTPUT_HIGH_Z = 2,
             AUTORANGE_OFF = 0, AUTORANGE_ON = 1, AUTOZERO_OFF = 0, AUTOZERO_ONCE = 1, AUTOZERO_AUTO = 2,
             ENABLE = 1, DISABLE = 0}
local src_spec = {
  func = {1, E(0, 1)}, levelv = {0, R(-200, 200)}, leveli = {0, R(-1.5, 1.5)},
  limiti = {0.1, R(1e-9, 1.5)}, limitv = {20, R(0.02, 200)}, output = {0, E(0, 1, 2)},
  rangev = {0.2, R(0.2, 200)}, rangei = {1e-6, R(1e-9, 1.5)}, autorangev = {1, E(0, 1)},
  autorangei = {1, E(0, 1)}, offmode = {0, E(0, 1, 2)}, settling = {0, R(0, 128)},
}
local meas_spec = {
  nplc = {1, R(0.001, 25)}, autorangei = {1, E(0, 1)}, autorangev = {1, E(0, 1)},
  rangei = {1e-6, R(1e-12, 1.5)}, rangev = {0.2, R(0.2, 200)}, autozero = {2, E(0, 1, 2)},
  count = {1, R(1, 2147483647)}, delay = {0, R(-1, 1e3)}, filter = {0, E(0, 1)},
}
local source, sstore = __hil_attributes("smu" .. id .. ".source", src_spec)
local measure, mstore = __hil_attributes("smu" .. id .. ".measure", meas_spec)
-- source.compliance (read-only): true while the output is limited by limiti or limitv
local src_meta = getmetatable(source)
local src_index = src_meta.__index
src_meta.__index = function(t, k)
  if k == "compliance" then return hw.compliance(id) end
  return src_index(t, k)
end

local function buffer()
  local b = {n = 0, readings = {}, appendmode = 0, collecttimestamps = 0, collectsourcevalues = 0}
  b.clear = function() b.readings = {}; b.n = 0 end
  return setmetatable(b, {__index = function(t, k) if type(k) == "number" then return rawget(t, "readings")[k] end end})
end
local function store(buf, value)
  if buf ~= nil then
    local r = rawget(buf, "readings")
    r[#r + 1] = value
    rawset(buf, "n", #r)
  end
  return value
end
mstore.i = (function(buf)
  local last
  for _ = 1, mstore.count do last = store(buf, hw.measure(id, "i")) end
  return last
end)
mstore.v = (function(buf)
  local last
  for _ = 1, mstore.count do last = store(buf, hw.measure(id, "v")) end
  return last
end)
mstore.iv = (function(ibuf, vbuf)
  return store(ibuf, hw.measure(id, "i")), store(vbuf, hw.measure(id, "v"))
end)
smu.source, smu.measure = source, measure
smu.nvbuffer1, smu.nvbuffer2 = buffer(), buffer()
smu.reset = function()
  for k, s in pairs(src_spec) do sstore[k] = s[1] end
  for k, s in pairs(meas_spec) do mstore[k] = s[1] end
  smu.nvbuffer1.clear(); smu.nvbuffer2.clear()
end
smu.abort = function() end
_G["smu" .. id] = setmetatable(smu, {__newindex = function(_, k)
  error("E-286:smu" .. id .. "." .. tostring(k) .. " is not an attribute", 2) end})
return sstore, mstore
"""


class Keithley2600BEmulator(TspEmulator):
    idn = "Keithley Instruments Inc., Model 2636B, 4469971, 4.0.4"
    model = "keithley2600b"

    def __init__(self, wiring: Wiring, name: str, lock=None, timing: SmuTiming | None = None):
        super().__init__(lock if lock is not None else wiring.lock)
        self.timing = timing or SmuTiming()
        self.wiring, self.name = wiring, name
        hooks = self.host_functions({"measure": self._measure, "compliance": self._compliance})
        self.state = {}
        self.meas_state = {}
        for ch in ("a", "b"):
            src, meas = self.lua_define(SMU_LUA, ch, hooks)
            self.state[ch] = src
            self.meas_state[ch] = meas
            wiring.attach(f"{name}.{ch}", lambda ch=ch: self.level(ch), lambda ch=ch: self.state[ch].limiti)
        self.lua_define("reset = function() smua.reset(); smub.reset(); errorqueue.clear() end")

    def level(self, ch: str) -> float:
        """Voltage (V) channel ``ch`` drives now: its level when on and sourcing volts, else 0."""
        s = self.state[ch]
        return float(s.levelv) if (s.output == 1 and s.func == 1) else 0.0

    def reset(self) -> None:
        super().reset()
        self.lua.globals().reset()

    def outputs_off(self) -> None:
        for s in self.state.values():
            s.output = 0

    def on_delay(self, seconds: float) -> None:
        self.busy(seconds)
        if seconds > 0:
            self.wiring.hold(seconds)

    def _compliance(self, ch: str) -> bool:
        s = self.state[ch]
        if s.output != 1 or s.func != 1:
            return False
        i = self.wiring.terminal_current(f"{self.name}.{ch}", float(s.levelv))
        return abs(i) >= float(s.limiti) * (1 - 1e-3)

    def _measure(self, ch: str, kind: str) -> float:
        s = self.state[ch]
        self.busy(self.timing.reading_s(float(self.meas_state[ch].nplc)))
        endpoint = f"{self.name}.{ch}"
        if kind == "v":
            return self.level(ch)
        if s.output != 1:
            return 0.0
        if s.func != 1:
            raise RuntimeError("E-221:the simulated bench sources voltage only (source.func = OUTPUT_DCVOLTS)")
        i = self.wiring.terminal_current(endpoint, float(s.levelv))
        limit = float(s.limiti)
        return max(-limit, min(limit, i))
