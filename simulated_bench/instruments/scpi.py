"""A small SCPI-1999 command interpreter for the emulated instruments.

Commands are declared with their SCPI header pattern (``[:SOURce#]:VOLTage[:LEVel]``:
upper-case letters are the short form, brackets optional nodes, ``#`` a numeric
suffix) and a handler. The interpreter implements what real instruments do with a
program message: ``;``-separated units with the SCPI relative-path rule, short and long
forms in any case, common commands, and an error queue with the standard codes
(-113 Undefined header, -109 Missing parameter, -222 Data out of range, ...).
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .base import Emulator

ERROR_TEXT = {
    -100: "Command error",
    -102: "Syntax error",
    -104: "Data type error",
    -108: "Parameter not allowed",
    -109: "Missing parameter",
    -113: "Undefined header",
    -200: "Execution error",
    -221: "Settings conflict",
    -222: "Data out of range",
    -224: "Illegal parameter value",
    -350: "Queue overflow",
    -101: "Invalid character",
    -223: "Too much data",
    -230: "Data corrupt or stale",
    -363: "Input buffer overrun",
}
# standard event status register bits (IEEE 488.2)
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME, ESR_PON = 1, 4, 8, 16, 32, 128
# status byte bits (SCPI-99): error queue, questionable, message available, event summary, RQS, operation
STB_EAV, STB_QUES, STB_MAV, STB_ESB, STB_RQS, STB_OPER = 4, 8, 16, 32, 64, 128
QUEUE_SIZE = 10


class ScpiError(Exception):
    """Raised by a handler; lands in the instrument's error queue."""

    def __init__(self, code: int, detail: str = ""):
        super().__init__(code, detail)
        self.code, self.detail = code, detail

    @property
    def entry(self) -> str:
        text = ERROR_TEXT.get(self.code, "Device-specific error")
        if self.detail:
            text = f"{text}; {self.detail}"
        return f'{self.code},"{text}"'


def _node_regex(node: str) -> str:
    suffix = node.endswith("#")
    name = node.rstrip("#")
    short = "".join(ch for ch in name if ch.isupper() or ch.isdigit() or ch == "*")
    long = name.upper()
    alts = re.escape(long) if short == long else f"{re.escape(long)}|{re.escape(short)}"
    return f":(?:{alts})" + (r"(\d*)" if suffix else "")


def compile_header(pattern: str) -> re.Pattern[str]:
    """Regex for an SCPI header pattern; it matches a header upper-cased with one leading colon."""
    out = []
    for optional, node in re.findall(r"(\[)?:?([A-Za-z*][A-Za-z0-9*]*#?)\]?", pattern):
        rx = _node_regex(node)
        out.append(f"(?:{rx})?" if optional else rx)
    query = r"(\?)?" if not pattern.endswith("?") else r"(\?)"
    return re.compile("".join(out) + query)


@dataclass
class Command:
    regex: re.Pattern[str]
    handler: Callable[..., str | None]
    query_only: bool


def split_units(message: str) -> list[str]:
    """Split a program message on semicolons outside quoted strings."""
    units, cur, quote = [], [], ""
    for ch in message:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch == ";":
            units.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    units.append("".join(cur))
    return [u.strip() for u in units]


def split_args(text: str) -> list[str]:
    """Comma-separated parameters (quoted strings keep their commas)."""
    if not text.strip():
        return []
    return [a.strip() for a in re.findall(r'(?:"[^"]*"|\'[^\']*\'|[^,])+', text)]


def parse_bool(arg: str) -> bool:
    a = arg.strip().upper()
    if a in ("1", "ON"):
        return True
    if a in ("0", "OFF"):
        return False
    raise ScpiError(-224, f"expected ON/OFF/1/0, got {arg!r}")


def parse_float(arg: str, lo: float | None = None, hi: float | None = None) -> float:
    """A numeric parameter; MINimum/MAXimum map to the range ends, values outside raise -222."""
    a = arg.strip().upper()
    if a in ("MIN", "MINIMUM") and lo is not None:
        return lo
    if a in ("MAX", "MAXIMUM") and hi is not None:
        return hi
    try:
        value = float(a)
    except ValueError:
        raise ScpiError(-104, f"expected a number, got {arg!r}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ScpiError(-222, f"{value:g} outside [{lo:g}, {hi:g}]")
    return value


def unquote(arg: str) -> str:
    a = arg.strip()
    if len(a) >= 2 and a[0] == a[-1] and a[0] in "\"'":
        return a[1:-1]
    return a


class ScpiEmulator(Emulator):
    """SCPI instrument: subclasses call :meth:`add` for each command they understand."""

    def __init__(self, lock=None):
        super().__init__(lock)
        self.errors: deque[str] = deque()
        self._commands: list[Command] = []
        self._cache: dict[str, tuple[Command, tuple[str, ...], bool] | None] = {}
        self.esr, self.ese, self.sre = ESR_PON, 0, 0
        self.status_enable = {"OPER": 0, "QUES": 0}
        self.add("*IDN?", lambda s, a: self.idn)
        self.add("*RST", lambda s, a: self.reset())
        self.add("*CLS", lambda s, a: self.clear_status())
        self.add("*OPC?", lambda s, a: "1")  # every operation completes before the next message is read
        self.add("*OPC", lambda s, a: self._set_esr(ESR_OPC))
        self.add("*WAI", lambda s, a: None)
        self.add("*ESR?", lambda s, a: self._read_esr())
        self.add("*ESE", self._register("ese"))
        self.add("*SRE", self._register("sre"))
        self.add("*STB?", lambda s, a: str(self.status_byte()))
        self.add("*TST?", lambda s, a: "0")
        self.add("*OPT?", lambda s, a: self.options)
        self.add("SYSTem:ERRor[:NEXT]?", lambda s, a: self.errors.popleft() if self.errors else '0,"No error"')
        self.add("SYSTem:ERRor:ALL?", lambda s, a: self._all_errors())
        self.add("SYSTem:ERRor:COUNt?", lambda s, a: str(len(self.errors)))
        self.add("SYSTem:VERSion?", lambda s, a: "1999.0")
        for reg in ("OPERation", "QUEStionable"):
            key = reg[:4].upper()
            # no operation or questionable condition is modelled as pending: the registers read 0
            self.add(f"STATus:{reg}[:EVENt]?", lambda s, a: "0")
            self.add(f"STATus:{reg}:CONDition?", lambda s, a: "0")
            self.add(f"STATus:{reg}:ENABle", self._status_enable(key))
        self.add("STATus:PRESet", lambda s, a: self.status_enable.update(OPER=0, QUES=0))

    def add(self, pattern: str, handler: Callable[[tuple[str, ...], list[str]], str | None]) -> None:
        """Declare a command: ``handler(suffixes, args)`` returns the reply for queries.

        A pattern ending in ``?`` is query-only; otherwise the handler serves both forms
        and learns which through ``self.query``.
        """
        self._commands.append(Command(compile_header(pattern), handler, pattern.endswith("?")))
        self._cache.clear()

    #: ``*OPT?`` answer (installed options; "0" for none)
    options: str = "0"

    def reset(self) -> None:
        """``*RST``: subclasses restore their power-on state (the error queue and status stay, as on the instrument)."""

    def clear_status(self) -> None:
        """``*CLS``: error queue and event registers cleared."""
        self.errors.clear()
        self.esr = 0

    def status_byte(self) -> int:
        stb = (STB_EAV if self.errors else 0) | (STB_ESB if self.esr & self.ese else 0)
        return stb | (STB_RQS if stb & self.sre else 0)

    def _set_esr(self, bits: int) -> None:
        self.esr |= bits

    def _read_esr(self) -> str:
        value, self.esr = self.esr, 0
        return str(value)

    def _all_errors(self) -> str:
        if not self.errors:
            return '0,"No error"'
        out = ",".join(self.errors)
        self.errors.clear()
        return out

    def _register(self, attr: str):
        def handler(s, args):
            if self.query:
                return str(getattr(self, attr))
            if not args:
                raise ScpiError(-109)
            setattr(self, attr, int(parse_float(args[0], 0, 255)))
            return None
        return handler

    def _status_enable(self, key: str):
        def handler(s, args):
            if self.query:
                return str(self.status_enable[key])
            if not args:
                raise ScpiError(-109)
            self.status_enable[key] = int(parse_float(args[0], 0, 65535))
            return None
        return handler

    def input_error(self, code: int, text: str) -> None:
        self.push_error(ScpiError(code, text.partition("; ")[2]))

    def push_error(self, err: ScpiError) -> None:
        code = err.code
        self.esr |= (ESR_CME if -199 <= code <= -100 else ESR_EXE if -299 <= code <= -200
                     else ESR_QYE if -499 <= code <= -400 else ESR_DDE)
        if len(self.errors) >= QUEUE_SIZE - 1:
            if len(self.errors) == QUEUE_SIZE - 1:
                self.errors.append(ScpiError(-350).entry)
            return
        self.errors.append(err.entry)

    def _lookup(self, header: str) -> tuple[Command, tuple[str, ...], bool] | None:
        key = header.upper()
        if key in self._cache:
            return self._cache[key]
        norm = key if key.startswith(":") or key.startswith("*") else ":" + key
        norm = norm if not norm.startswith("*") else ":" + norm
        found = None
        for cmd in self._commands:
            m = cmd.regex.fullmatch(norm)
            if m:
                groups = m.groups()
                is_query = groups[-1] == "?"
                if cmd.query_only and not is_query:
                    continue
                found = (cmd, tuple(g or "" for g in groups[:-1]), is_query)
                break
        self._cache[key] = found
        return found

    def handle_line(self, line: str) -> str | None:
        replies = []
        prefix = ""
        for unit in split_units(line):
            if not unit:
                continue
            header, _, rest = unit.partition(" ")
            if prefix and not header.startswith((":", "*")):
                header = prefix + header  # SCPI relative path after ';'
            if not header.startswith("*"):
                prefix = header[: header.rfind(":") + 1] if ":" in header.lstrip(":") else ""
            found = self._lookup(header)
            if found is None:
                self.push_error(ScpiError(-113, header))
                continue
            cmd, suffixes, self.query = found
            try:
                reply = cmd.handler(suffixes, split_args(rest))
            except ScpiError as err:
                self.push_error(err)
                continue
            if self.query and reply is not None:
                replies.append(str(reply))
        return ";".join(replies) if replies else None


def channel(suffixes: tuple[str, ...], index: int = 0, default: int = 1) -> int:
    """Numeric suffix of the ``index``-th ``#`` node (``OUTP2`` -> 2), default when absent."""
    s = suffixes[index] if index < len(suffixes) else ""
    return int(s) if s else default
