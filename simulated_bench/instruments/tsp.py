"""A TSP (Lua) command interpreter for the emulated Keithley instruments, built on lupa.

Every received line is a TSP chunk and is executed as Lua, as on the instrument;
``loadscript NAME`` ... ``endscript`` stores a named script (callable as ``NAME()`` or
``NAME.run()``), ``loadandrunscript`` also runs it. ``print`` and ``printbuffer`` answer
the host with the instrument's number format (``format.asciiprecision`` significant
digits). Lua syntax errors land in ``errorqueue`` as -285 "TSP Syntax error", run-time
errors (an attribute the instrument lacks, a bad parameter) as -286 "TSP Runtime
error" or the instrument's parameter codes, just as the real firmware reports them.
The sandbox has no ``io``, ``os``, ``require`` or Python bridge, and a run-away script is
stopped after a fixed instruction budget.
"""
from __future__ import annotations

import re
from collections import deque

from lupa import LuaError, LuaRuntime, LuaSyntaxError

from .base import Emulator

INSTRUCTION_BUDGET = 200_000_000  # Lua VM instructions per chunk before the emulator aborts it
QUEUE_SIZE = 100
_LOCATION = re.compile(r"^.*?:\d+: ")

PRELUDE = r"""
local hw, sethook, load_, ENV = ...
format = {asciiprecision = 6, data = 1}

local function fmt(x)
  local t = type(x)
  if t == "number" then
    local p = math.max(1, math.min(16, math.floor(format.asciiprecision)))
    return string.format("%." .. (p - 1) .. "e", x)
  elseif t == "nil" then return "nil"
  elseif t == "boolean" then return tostring(x)
  elseif t == "string" then return x end
  return t
end

print = function(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = fmt((select(i, ...))) end
  hw.out(table.concat(parts, "\t"))
end

printbuffer = function(first, last, ...)
  local parts = {}
  local bufs = {...}
  for i = first, last do
    for _, b in ipairs(bufs) do
      local r = rawget(b, "readings") or b
      local v = r[i]
      if v == nil then error("E-286:printbuffer index " .. i .. " beyond the buffer", 2) end
      parts[#parts + 1] = fmt(v)
    end
  end
  hw.out(table.concat(parts, ", "))
end

delay = function(t)
  if type(t) ~= "number" or t < 0 then error("E-222:delay needs a time >= 0 s", 2) end
  hw.delay(t)
end

waitcomplete = function() end

errorqueue = setmetatable({
  clear = function() hw.errclear() end,
  next = function() return hw.errnext() end,
}, {__index = function(_, k) if k == "count" then return hw.errcount() end end,
    __newindex = function(_, k) error("E-286:errorqueue." .. tostring(k) .. " is read-only", 2) end})

-- attribute tables that accept only the instrument's own attributes and values
function __hil_attributes(path, spec)
  local store = {}
  for k, s in pairs(spec) do store[k] = s[1] end
  local proxy = setmetatable({}, {
    __index = function(_, k) return store[k] end,
    __newindex = function(_, k, v)
      local s = spec[k]
      if s == nil then error("E-286:" .. path .. "." .. tostring(k) .. " is not an attribute", 2) end
      store[k] = s[2](v, path .. "." .. k)
    end,
  })
  return proxy, store
end

function __hil_range(lo, hi)
  return function(v, name)
    if type(v) ~= "number" then error("E-286:" .. name .. " needs a number", 3) end
    if v < lo or v > hi then error(string.format("E-222:%s %g outside %g to %g", name, v, lo, hi), 3) end
    return v
  end
end

function __hil_oneof(...)
  local ok = {}
  for _, v in ipairs({...}) do ok[v] = true end
  return function(v, name)
    if not ok[v] then error("E-222:" .. name .. " does not take " .. tostring(v), 3) end
    return v
  end
end

function __hil_script(fn)
  return setmetatable({run = fn}, {__call = function(_, ...) return fn(...) end})
end

function __hil_exec(src)
  local fn, err = load_(src, "=TSP", "t", ENV)
  if not fn then return "syntax", err end
  sethook(function() error("E-286:script aborted by the emulator's instruction budget", 2) end, "", hw.budget)
  local ok, e = pcall(fn)
  sethook()
  if not ok then return "runtime", tostring(e) end
  return nil
end
"""


class TspEmulator(Emulator):
    """Lua-backed TSP instrument; subclasses add their objects with :meth:`lua_define`."""

    def __init__(self, lock=None):
        super().__init__(lock)
        self.errors: deque[tuple[int, str]] = deque()
        self._out: list[str] = []
        self._script: tuple[str, list[str], bool] | None = None
        self.lua = LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True)
        g = self.lua.globals()
        hooks = self.lua.table_from({
            "out": self._out.append,
            "delay": self.on_delay,
            "errclear": self.errors.clear,
            "errnext": self._errnext,
            "errcount": lambda: len(self.errors),
            "budget": INSTRUCTION_BUDGET,
        })
        sethook, load_ = g.debug.sethook, g.load
        self.lua.execute(PRELUDE, hooks, sethook, load_, g)
        for name in ("python", "io", "os", "require", "dofile", "loadfile", "package", "debug", "load",
                     "collectgarbage"):
            g[name] = None
        self._exec = g["__hil_exec"]

    # hooks ------------------------------------------------------------------------------
    def on_delay(self, seconds: float) -> None:
        """Time passes on the instrument with its outputs as they are (subclasses act on the chip)."""

    def _errnext(self):
        if not self.errors:
            return 0, "Queue Is Empty", 0, 1
        code, text = self.errors.popleft()
        return code, text, 30 if code < 0 else 20, 1

    def input_error(self, code: int, text: str) -> None:
        self.push_error(code, text)

    def push_error(self, code: int, text: str) -> None:
        if len(self.errors) < QUEUE_SIZE:
            self.errors.append((code, text))

    def lua_define(self, source: str, *args):
        """Run trusted set-up Lua (defines the instrument's objects)."""
        return self.lua.execute(source, *args)

    def reset(self) -> None:
        """``*RST`` / ``reset()``: subclasses restore their objects."""
        self.errors.clear()

    # message handling --------------------------------------------------------------------
    def run_chunk(self, src: str) -> None:
        kind, msg = (None, None)
        try:
            result = self._exec(src)
            if result is not None:
                kind, msg = result if isinstance(result, tuple) else (result, "")
        except (LuaError, LuaSyntaxError) as exc:  # raised inside a Python hook
            kind, msg = "runtime", str(exc)
        if kind is None:
            return
        msg = str(msg)
        line = re.search(r"TSP\]?:(\d+):", msg)
        where = f" at line {line.group(1)}" if line else ""
        coded = re.search(r"E(-?\d+):(.*)", msg)
        if coded:
            self.push_error(int(coded.group(1)), coded.group(2).strip())
        else:
            detail = _LOCATION.sub("", msg).splitlines()[0]
            if kind == "syntax":
                self.push_error(-285, f"TSP Syntax error{where}: {detail}")
            else:
                self.push_error(-286, f"TSP Runtime error{where}: {detail}")

    def common_command(self, line: str) -> str | None:
        head = line.split()[0].upper()
        if head == "*IDN?":
            return self.idn
        if head == "*RST":
            self.reset()
        elif head == "*CLS":
            self.errors.clear()
        elif head == "*OPC?":
            return "1"
        elif head not in ("*WAI", "*OPC", "*TRG"):
            self.push_error(-113, f"Undefined header {head}")
        return None

    def handle_line(self, line: str) -> str | None:
        text = line.strip()
        if self._script is not None:
            name, body, run = self._script
            if text.lower() == "endscript":
                self._script = None
                self.run_chunk(f"{name} = __hil_script(function(...)\n" + "\n".join(body) + "\nend)")
                if run:
                    self.run_chunk(f"{name}()")
            else:
                body.append(line)
            return self._flush()
        if not text:
            return None
        if text.startswith("*"):
            return self.common_command(text)
        words = text.split()
        if words[0] in ("loadscript", "loadandrunscript"):
            if len(words) != 2 or not re.fullmatch(r"[A-Za-z_]\w*", words[1]):
                self.push_error(-285, "TSP Syntax error: loadscript needs one script name")
                return None
            self._script = (words[1], [], words[0] == "loadandrunscript")
            return None
        self.run_chunk(text)
        return self._flush()

    def _flush(self) -> str | None:
        if not self._out:
            return None
        reply = "\n".join(self._out)
        self._out.clear()
        return reply
