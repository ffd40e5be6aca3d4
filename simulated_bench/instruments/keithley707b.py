"""Emulated Keithley 707B switching matrix mainframe (TSP ``channel`` functions).

Channels are named slot-row-column, ``1A01`` .. ``6H12`` (six 8x12 matrix cards).
``channel.close/open/exclusiveclose/getclose/reset`` take comma-separated channel lists,
``slotN`` or ``allslots``, and ranges ``1A01:1C12`` (a rectangle on one card). The
matrix rows carry the bench inputs (``rows``: letter -> ``read``/``pulse``/``gate``/
``gnd``); the matrix columns, counted across the cards (card 1 columns 1-12 are lines
0-11, card 2 lines 12-23, ...), are the chip's lines in the order bit lines, source
lines, word lines. A line with no closed crosspoint is grounded through the card; a
line closed to several rows takes the first row in letter order.
"""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np

from .tsp import TspEmulator
from .wiring import INPUT_CODE, Wiring

SLOTS, ROWS, COLS = 6, "ABCDEFGH", 12
CHANNEL_RE = re.compile(r"([1-6])([A-Ha-h])(\d{2})")
INVALID_CHANNEL = 1115  # the 707B's "Parameter error: invalid channel list"
TSPLINK_CALL_S = 100e-6  # s, one remote command from a TSP-Link master
RELAY_SETTLE_S = 3e-3  # s, reed-relay matrix card actuation + settling (7174A-class), charged per route change

CHANNEL_LUA = r"""
local hw = ...
channel = {
  close = function(list) hw.op("close", list) end,
  open = function(list) hw.op("open", list) end,
  exclusiveclose = function(list) hw.op("exclusiveclose", list) end,
  reset = function(list) hw.op("open", list or "allslots") end,
  getclose = function(list) return hw.getclose(list or "allslots") end,
}
"""


class Keithley707BEmulator(TspEmulator):
    idn = "Keithley Instruments Inc., Model 707B, 4455567, 1.4.0"
    model = "keithley707b"

    def __init__(self, wiring: Wiring, name: str, matrix: Mapping | None = None, lock=None,
                 relay_settle_s: float = RELAY_SETTLE_S):
        super().__init__(lock if lock is not None else wiring.lock)
        self.relay_settle_s = relay_settle_s
        self.wiring, self.name = wiring, name
        matrix = matrix or {"rows": {"A": "read", "B": "pulse", "C": "gate", "D": "gnd"}}
        self.row_input = np.full(len(ROWS), -1, int)
        for letter, inp in matrix["rows"].items():
            self.row_input[ROWS.index(letter.upper())] = INPUT_CODE[inp]
        self.closed = np.zeros((SLOTS, len(ROWS), COLS), bool)
        hooks = self.host_functions({"op": self._op, "getclose": self._getclose})
        self.lua_define(CHANNEL_LUA, hooks)

    def remote_channel(self, master) -> dict:
        """``channel`` functions for a TSP-Link master (``node[N].channel``); each call costs the master a
        TSP-Link transaction on the bench clock."""
        def remote(fn):
            def call(*args):
                master.busy(TSPLINK_CALL_S)
                return fn(*args)
            return call
        return {"close": remote(lambda spec: self._op("close", spec)),
                "open": remote(lambda spec: self._op("open", spec)),
                "exclusiveclose": remote(lambda spec: self._op("exclusiveclose", spec)),
                "reset": remote(lambda spec=None: self._op("open", spec or "allslots")),
                "getclose": remote(lambda spec=None: self._getclose(spec or "allslots"))}

    def reset(self) -> None:
        super().reset()
        self.closed[:] = False
        self._apply()

    def outputs_off(self) -> None:
        self.closed[:] = False
        self._apply()

    # channel lists ---------------------------------------------------------------------
    def _parse(self, spec) -> np.ndarray:
        if not isinstance(spec, str):
            raise RuntimeError(f"E{INVALID_CHANNEL}:Parameter error: channel list must be a string")
        mask = np.zeros_like(self.closed)
        for item in (s.strip() for s in spec.split(",")):
            low = item.lower()
            if low == "allslots":
                mask[:] = True
            elif re.fullmatch(r"slot[1-6]", low):
                mask[int(low[4]) - 1] = True
            elif ":" in item:
                a, _, b = item.partition(":")
                ma, mb = CHANNEL_RE.fullmatch(a.strip()), CHANNEL_RE.fullmatch(b.strip())
                if not (ma and mb) or ma.group(1) != mb.group(1):
                    raise RuntimeError(f"E{INVALID_CHANNEL}:Parameter error: invalid channel list {item!r}")
                s = int(ma.group(1)) - 1
                r0, r1 = sorted((ROWS.index(ma.group(2).upper()), ROWS.index(mb.group(2).upper())))
                c0, c1 = sorted((int(ma.group(3)), int(mb.group(3))))
                if not (1 <= c0 and c1 <= COLS):
                    raise RuntimeError(f"E{INVALID_CHANNEL}:Parameter error: invalid channel list {item!r}")
                mask[s, r0:r1 + 1, c0 - 1:c1] = True
            else:
                m = CHANNEL_RE.fullmatch(item)
                if not m or not 1 <= int(m.group(3)) <= COLS:
                    raise RuntimeError(f"E{INVALID_CHANNEL}:Parameter error: invalid channel list {item!r}")
                mask[int(m.group(1)) - 1, ROWS.index(m.group(2).upper()), int(m.group(3)) - 1] = True
        return mask

    def _op(self, op: str, spec) -> None:
        mask = self._parse(spec)
        before = self.closed.copy()
        if op == "close":
            self.closed |= mask
        elif op == "open":
            self.closed &= ~mask
        else:
            self.closed = mask
        if not np.array_equal(before, self.closed):
            self.busy(self.relay_settle_s)  # relays switch together: one settling time per operation
        self._apply()

    def _getclose(self, spec):
        mask = self._parse(spec) & self.closed
        names = [f"{s + 1}{ROWS[r]}{c + 1:02d}" for s, r, c in np.argwhere(mask)]
        return ";".join(names) if names else None

    # physics ---------------------------------------------------------------------------
    def _apply(self) -> None:
        a = self.wiring.array
        # columns across cards = chip lines: bit lines, then source lines, then word lines
        per_line = self.closed.transpose(0, 2, 1).reshape(SLOTS * COLS, len(ROWS))
        n_lines = a.cols + 2 * a.rows
        codes = np.zeros(SLOTS * COLS, np.int8)
        any_closed = per_line.any(axis=1)
        first_row = per_line.argmax(axis=1)
        inputs = self.row_input[first_row]
        codes[any_closed & (inputs >= 0)] = inputs[any_closed & (inputs >= 0)]
        codes = codes[:n_lines] if n_lines <= codes.size else np.concatenate(
            [codes, np.zeros(n_lines - codes.size, np.int8)])
        self.wiring.connect(codes[:a.cols], codes[a.cols:a.cols + a.rows], codes[a.cols + a.rows:])
