"""Keithley 707B switching matrix mainframe (TSP ``channel`` functions), our driver.

Channels are slot-row-column strings (``1A01`` .. ``6H12``); lists are comma separated.
:meth:`Keithley707B.exclusive_close` opens everything else and closes the given
crosspoints in one message, which is how an addresser changes its whole route at once.
"""
from __future__ import annotations

import re
from typing import Iterable

from .tsp import TspInstrument

CHANNEL_RE = re.compile(r"[1-6][A-H](0[1-9]|1[0-2])")


def channel_list(channels: Iterable[str] | str) -> str:
    """Validated comma-separated channel list (``allslots`` and ``slotN`` pass through)."""
    items = [channels] if isinstance(channels, str) else list(channels)
    out = []
    for item in items:
        for part in str(item).split(","):
            p = part.strip()
            low = p.lower()
            if low == "allslots" or re.fullmatch(r"slot[1-6]", low) or CHANNEL_RE.fullmatch(p.upper()):
                out.append(p.upper() if CHANNEL_RE.fullmatch(p.upper()) else low)
            else:
                raise ValueError(f"invalid 707B channel {p!r}: use slot-row-column like 1A01")
    if not out:
        raise ValueError("empty channel list")
    return ",".join(out)


class Keithley707B(TspInstrument):
    """Keithley 707B six-slot switching matrix.

    .. code-block:: python

        mx = Keithley707B("TCPIP0::192.168.0.30::INSTR")
        mx.exclusive_close(["1A01", "1C05"])
        print(mx.closed_channels())
        mx.open_all()
    """

    def __init__(self, adapter, name="Keithley 707B switching matrix", **kwargs):
        super().__init__(adapter, name, **kwargs)

    def close_channels(self, channels: Iterable[str] | str) -> None:
        """Close crosspoints (others unchanged)."""
        self.write(f'channel.close("{channel_list(channels)}")')

    def open_channels(self, channels: Iterable[str] | str) -> None:
        """Open crosspoints."""
        self.write(f'channel.open("{channel_list(channels)}")')

    def exclusive_close(self, channels: Iterable[str] | str) -> None:
        """Open every other crosspoint and close these, in one message."""
        self.write(f'channel.exclusiveclose("{channel_list(channels)}")')

    def open_all(self) -> None:
        self.write('channel.open("allslots")')

    def shutdown(self) -> None:
        """Safe state: every crosspoint open, confirmed with ``*OPC?``."""
        self.open_all()
        self.ask("*OPC?")
        super().shutdown()

    def closed_channels(self, channels: str = "allslots") -> list[str]:
        """Closed crosspoints among ``channels`` (default: all)."""
        reply = self.ask(f'print(channel.getclose("{channel_list(channels)}"))').strip()
        return [] if reply == "nil" else reply.split(";")
