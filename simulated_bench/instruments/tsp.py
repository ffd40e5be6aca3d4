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

Sandbox (a served emulator is a network service, and TSP is a whole language): Lua
never holds a Python object. The host functions the instrument objects call are guarded:
a Python error comes back as a Lua string, and Lua may not read any attribute of a
Python object. The instruction budget is shared by the chunk and every coroutine it
creates; once spent, every further instruction raises, so ``pcall`` cannot absorb it;
host calls and ``delay`` charge the budget too. Lua memory is capped
(:data:`MAX_MEMORY`), as are a script's size and a chunk's printed output.
"""
from __future__ import annotations

import re
import time
from collections import deque

from lupa import LuaError, LuaRuntime, LuaSyntaxError

from .base import Emulator

INSTRUCTION_BUDGET = 200_000_000  # Lua VM instructions per chunk before the emulator aborts it
HOST_CALL_COST = 1000  # instructions a call into the host (measure, switch, ...) is charged
MAX_MEMORY = 64 << 20  # bytes of Lua memory per instrument
MAX_OUTPUT = 1 << 20  # characters one chunk may print
MAX_SCRIPT = 1 << 20  # characters of one loadscript body
MAX_CHUNK_S = 30.0  # s of host time one chunk's host calls (chip physics) may take
QUEUE_SIZE = 100
_LOCATION = re.compile(r"^.*?:\d+: ")

PRELUDE = r"""
local hw, sethook, load_, ENV = ...
-- every library function the trusted code uses, captured before user code can replace the globals
local error, pcall, type, pairs, ipairs, select, rawget = error, pcall, type, pairs, ipairs, select, rawget
local pack, unpack, tostr, concat = table.pack, table.unpack, tostring, table.concat
local sfind = string.find
format = {asciiprecision = 6, data = 1}

-- the budget: a count hook every STEP instructions in every thread; once spent, every instruction raises
-- B (used, exhausted) is reset by the host between chunks without running Lua
local STEP, COST, LIMIT = 1000, hw.cost, hw.budget
local B = BUDGET
local function spent()
  B.exhausted = true
  error("E-286:script aborted by the emulator's " .. (B.reason or "instruction") .. " budget", 3)
end
local function hook()
  B.used = B.used + STEP
  B.instructions = B.instructions + STEP
  if B.exhausted or B.used > LIMIT then
    sethook(hook, "", 1)
    spent()
  end
end
local function charge(n)
  B.used = B.used + n
  if B.exhausted or B.used > LIMIT then spent() end
end
local co_create, co_resume = coroutine.create, coroutine.resume
coroutine.create = function(f)
  local co = co_create(f)
  sethook(co, hook, "", B.exhausted and 1 or STEP)
  return co
end
coroutine.wrap = function(f)
  local co = coroutine.create(f)
  return function(...)
    local r = pack(co_resume(co, ...))
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

-- text leaving the sandbox: printable ASCII only (library functions captured: user code may replace them)
local gsub, gmatch, sformat, byte = string.gsub, string.gmatch, string.format, string.byte
local function clean(x)
  return (gsub(tostr(x), "[^\t\32-\126]", function(c) return sformat("\\%03d", byte(c)) end))
end

-- Lua patterns backtrack in C, out of the budget's sight: refuse those that could run for minutes
local function quantifiers(p)
  local n = 0
  for _ in gmatch((gsub(p, "%%.", "")), "[%*%+%-%?]") do n = n + 1 end
  return n
end
local function bounded(f)
  return function(s, p, ...)
    if type(s) == "string" and type(p) == "string" and (#s + 1) ^ (quantifiers(p) + 1) > 1e8 then
      error("E-286:pattern too complex for a subject of " .. #s .. " characters", 2)
    end
    return f(s, p, ...)
  end
end
string.find, string.match = bounded(string.find), bounded(string.match)
string.gmatch, string.gsub = bounded(string.gmatch), bounded(string.gsub)

-- an error raised by the budget hook runs a message handler with hooks off: run handlers after unwinding
xpcall = function(f, handler, ...)
  local r = pack(pcall(f, ...))
  if r[1] then return unpack(r, 1, r.n) end
  return false, handler(r[2])
end

-- finalizers would run user code at any time, outside every chunk and its budget
local set_mt = setmetatable
setmetatable = function(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then error("E-286:__gc metamethods are not available", 2) end
  return set_mt(t, mt)
end

-- host functions: charged to the budget; a host error reaches Lua as a string, never as an object
function __hil_guard(fns)
  local out = {}
  for k, f in pairs(fns) do
    if type(f) ~= "number" then
      out[k] = function(...)
        charge(COST)
        local r = pack(pcall(f, ...))
        if not r[1] then error(clean(r[2]), 2) end
        if not r[2] then error(clean(r[3]), 2) end
        return unpack(r, 3, r.n)
      end
    else
      out[k] = f
    end
  end
  return out
end
hw = __hil_guard(hw)

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
  hw.out(clean(table.concat(parts, "\t")))
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
  hw.out(clean(table.concat(parts, ", ")))
end

delay = function(t)
  if type(t) ~= "number" or not (t >= 0 and t < math.huge) then error("E-222:delay needs a time >= 0 s", 2) end
  charge(COST * math.ceil(t / 1e-2))  -- the chip steps a long hold in 10 ms pieces
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
    if v ~= v or v < lo or v > hi then error(string.format("E-222:%s %g outside %g to %g", name, v, lo, hi), 3) end
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
  -- to-be-closed variables of a coroutine stopped by the budget would close with hooks off
  if sfind(src, "<%s*close%s*>") then return "syntax", "to-be-closed variables are not available" end
  local fn, err = load_(src, "=TSP", "t", ENV)
  if not fn then return "syntax", clean(err) end
  sethook(hook, "", STEP)
  local ok, e = pcall(fn)
  if ok then sethook() return nil end
  local has_text, text = pcall(tostr, e)  -- a __tostring of the user's runs inside the budget
  sethook()
  return "runtime", clean(has_text and text or "error object without a message")
end
"""


def _no_attributes(obj, name, is_setting):
    """lupa attribute filter: Lua may call the host functions it is given, never look inside them."""
    raise AttributeError(f"Python attribute {name!r} is not accessible from TSP")


def _host(fn, check=None):
    """Wrap a host function so that an exception reaches Lua as (false, message), never as an object;
    ``check()`` runs first (it raises once the chunk's host time is spent)."""
    def call(*args):
        try:
            if check is not None:
                check()
            result = fn(*args)
        except Exception as exc:  # noqa: BLE001 -- everything a host call raises becomes a TSP error
            return False, str(exc)
        return (True, *result) if isinstance(result, tuple) else (True, result)
    return call


#: ``localnode``, ``node`` and the ``status`` model a script reaches (TSP reference manual names)
SYSTEM_LUA = r"""
local hw, model, serial, revision = ...
local ro = function(t, name)
  return setmetatable({}, {__index = t, __newindex = function(_, k)
    error("E-286:" .. name .. "." .. tostring(k) .. " is read-only", 2) end})
end
localnode = ro({model = model, serialno = serial, revision = revision, description = "Keithley " .. model,
                linefreq = 50, autolinefreq = true, prompts = 0, showerrors = 0}, "localnode")
node = {}
local function register(t, bits)
  return setmetatable({enable = 0, ntr = 0, ptr = 65535}, {__index = function(_, k)
    if k == "condition" or k == "event" then return bits() end end})
end
status = {
  operation = register({}, function() return 0 end),
  questionable = register({}, function() return 0 end),
  measurement = register({}, function() return 0 end),
  standard = register({}, function() return hw.esr() end),
  request_enable = 0,
  reset = function() hw.statusreset() end,
}
setmetatable(status, {__index = function(_, k)
  if k == "condition" then return hw.stb() end end})
"""


class TspEmulator(Emulator):
    """Lua-backed TSP instrument; subclasses add their objects with :meth:`lua_define`."""

    #: seconds per Lua VM instruction on the instrument's processor (bench clock)
    tsp_instruction_s: float = 0.5e-6

    def __init__(self, lock=None):
        super().__init__(lock)
        self.errors: deque[tuple[int, str]] = deque()
        self._out: list[str] = []
        self._script: tuple[str, list[str], bool] | None = None
        self._out_chars = 0
        self._deadline = float("inf")
        self.lua = LuaRuntime(register_eval=False, register_builtins=False, unpack_returned_tuples=True,
                              max_memory=MAX_MEMORY, attribute_filter=_no_attributes)
        g = self.lua.globals()
        hooks = self._host_table({
            "out": self._print,
            "delay": self.on_delay,
            "errclear": self.errors.clear,
            "errnext": self._errnext,
            "errcount": lambda: len(self.errors),
            "budget": INSTRUCTION_BUDGET,
            "cost": HOST_CALL_COST,
        })
        self._sethook, load_ = g.debug.sethook, g.load
        self._budget = self.lua.table_from({"used": 0, "exhausted": False, "instructions": 0})
        g.BUDGET = self._budget
        self.lua.execute(PRELUDE, hooks, self._sethook, load_, g)
        for name in ("python", "io", "os", "require", "dofile", "loadfile", "package", "debug", "load",
                     "collectgarbage", "BUDGET"):
            g[name] = None
        self._exec = g["__hil_exec"]
        self._guard = g["__hil_guard"]
        self.esr, self.ese, self.sre = 128, 0, 0  # power-on bit set, as IEEE 488.2 status
        model, serial, revision = (self.idn.split(",") + ["", "", "", ""])[1:4]
        self.lua_define(SYSTEM_LUA, self.host_functions({
            "esr": lambda: self.esr, "stb": self.status_byte,
            "statusreset": self._status_reset}), model.strip().replace("Model ", ""), serial.strip(),
            revision.strip())

    def status_byte(self) -> int:
        """Status byte: bit 2 error available, bit 5 standard event summary, bit 6 request."""
        stb = (4 if self.errors else 0) | (32 if self.esr & self.ese else 0)
        return stb | (64 if stb & self.sre else 0)

    def _status_reset(self) -> None:
        self.esr = self.ese = self.sre = 0

    def link_node(self, number: int, functions: dict) -> None:
        """Make ``node[number].channel`` reach another instrument over the (simulated) TSP-Link."""
        self.lua_define("local n, channel = ... node[n] = {channel = channel}", number,
                        self.host_functions(functions))

    # host functions ---------------------------------------------------------------------
    def _host_table(self, fns: dict):
        """A Lua table of host functions: each returns (true, values...) or (false, message)."""
        return self.lua.table_from({k: _host(v, self._check_time) if callable(v) else v for k, v in fns.items()})

    def _check_time(self) -> None:
        if time.monotonic() > self._deadline:
            # spent for good: the hook now stops every further instruction, pcall or not
            self._budget.exhausted, self._budget.reason = True, "time"
            raise RuntimeError("E-286:script aborted by the emulator's time budget")

    def host_functions(self, fns: dict):
        """Host functions for an instrument's trusted Lua (:meth:`lua_define`), guarded for the sandbox:
        charged to the instruction budget, their errors reach Lua as strings."""
        return self._guard(self._host_table(fns))

    def _print(self, text: str) -> None:
        self._out_chars += len(text) + 1
        if self._out_chars > MAX_OUTPUT:
            raise RuntimeError(f"E-286:output queue full ({MAX_OUTPUT} characters per message)")
        self._out.append(text)

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
        self.esr |= 32 if -199 <= code <= -100 else 16 if -299 <= code <= -200 else 8
        if len(self.errors) < QUEUE_SIZE:
            self.errors.append((code, text[:200]))

    def lua_define(self, source: str, *args):
        """Run trusted set-up Lua (defines the instrument's objects)."""
        return self.lua.execute(source, *args)

    def reset(self) -> None:
        """``*RST`` / ``reset()``: subclasses restore their objects."""
        self.errors.clear()

    # message handling --------------------------------------------------------------------
    def run_chunk(self, src: str) -> None:
        kind, msg = (None, None)
        self._sethook()  # host-side reset: runs no Lua instruction, so a spent budget cannot block it
        self._budget.used, self._budget.exhausted, self._budget.instructions = 0, False, 0
        self._budget.reason = None
        self._out_chars = 0
        self._deadline = time.monotonic() + MAX_CHUNK_S
        try:
            result = self._exec(src)
            if result is not None:
                kind, msg = result if isinstance(result, tuple) else (result, "")
        except (LuaError, LuaSyntaxError, UnicodeError) as exc:  # the budget ran out in __hil_exec itself
            kind, msg = "runtime", str(exc)
        finally:
            self._sethook()
            # the instrument's processor runs the chunk: charged per instruction (granularity 1000)
            self.busy(self._budget.instructions * self.tsp_instruction_s)
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
        arg = line.split()[1] if len(line.split()) > 1 else ""
        if head == "*IDN?":
            return self.idn
        if head in ("*STB?", "*ESR?", "*ESE?", "*SRE?", "*TST?", "*OPT?"):
            if head == "*ESR?":
                value, self.esr = self.esr, 0
                return str(value)
            return str({"*STB?": self.status_byte(), "*ESE?": self.ese, "*SRE?": self.sre,
                        "*TST?": 0, "*OPT?": 0}[head])
        if head in ("*ESE", "*SRE"):
            if not arg.isdigit() or int(arg) > 255:
                self.push_error(-222, f"{head} takes 0 to 255")
            else:
                setattr(self, head[1:].lower(), int(arg))
        elif head == "*RST":
            self.reset()
        elif head == "*CLS":
            self.errors.clear()
            self.esr = 0
        elif head == "*OPC?":
            return "1"
        elif head == "*OPC":
            self.esr |= 1
        elif head not in ("*WAI", "*TRG"):
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
            elif sum(map(len, body)) + len(line) > MAX_SCRIPT:
                self._script = None
                self.push_error(-286, f"TSP Runtime error: script {name} exceeds {MAX_SCRIPT} characters; discarded")
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
