"""The bench clock: the time a protocol would take on the real bench, estimated by the emulators.

On a real bench a protocol's time is set by instrument round trips, integration times,
relay switching and pulse widths, not by the host's CPU. Each emulator charges its
:class:`BenchClock` for every message it receives and every reply it sends (the
transport's latency and byte time, :class:`Transport`) and for what the instrument then
does (integration, source settling, relay switching, pulses: :meth:`BenchClock.busy`).
The host talks to one instrument at a time and waits for each, so the estimate is the
sum of those costs; instrument work that overlaps the host's next message is not
credited (the estimate is an upper bound for scripts that overlap).

A *round trip* is one write from the host (a setting or a query, maybe several lines a
driver batched into one transfer): on USB-TMC, GPIB, VXI-11 and a serial line every
transfer is a confirmed bus transaction, and the replies it asks for belong to it (their
bytes and one bus turn-around are charged).

.. code-block:: python

    sim = SimulatedInstruments(chip, instruments, inputs)
    ...  # run a protocol against the emulators
    sim.clock.snapshot()  # {"round_trips": 812, "bench_time_s": 1.93, "instruments": {...}}
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Transport:
    """Host <-> instrument link costs (typical published figures; override per bench).

    ``message_latency_s``: one message's fixed cost (driver stack, bus arbitration,
    instrument input parser); ``reply_latency_s``: turning the bus round for a reply;
    ``byte_time_s``: per byte moved.
    """

    name: str
    message_latency_s: float
    reply_latency_s: float
    byte_time_s: float


#: USB 2.0 high-speed USBTMC bulk transfers (~0.3 ms per transfer, ~8 MB/s sustained)
USBTMC = Transport("usbtmc", 0.3e-3, 0.3e-3, 1 / 8e6)
#: IEEE-488.1 GPIB (~1 ms addressing and handshake per message, ~1 MB/s)
GPIB = Transport("gpib", 1.0e-3, 1.0e-3, 1 / 1e6)
#: raw SCPI socket (port 5025) on a lab LAN (~0.5 ms per message incl. the TCP ACK, ~10 MB/s)
LAN = Transport("lan", 0.5e-3, 0.5e-3, 1 / 10e6)
#: 115200 baud 8N1 through a USB-serial bridge with a 1 ms latency timer (10 bits per byte)
SERIAL = Transport("serial", 1.0e-3, 1.0e-3, 10 / 115200)
TRANSPORTS = {t.name: t for t in (USBTMC, GPIB, LAN, SERIAL)}


def transport_for(spec: "Transport | str | dict") -> Transport:
    """A :class:`Transport` from its name (``usbtmc``, ``gpib``, ``lan``, ``serial``) or field mapping."""
    if isinstance(spec, Transport):
        return spec
    if isinstance(spec, str):
        if spec not in TRANSPORTS:
            raise ValueError(f"unknown transport {spec!r}; known: {', '.join(TRANSPORTS)}")
        return TRANSPORTS[spec]
    base = transport_for(spec.get("name", "lan"))
    fields = {**asdict(base), **dict(spec)}
    return Transport(**{k: (str(v) if k == "name" else float(v)) for k, v in fields.items()})


@dataclass(frozen=True)
class SmuTiming:
    """Execution times of a source-measure unit (typical figures; configurable per bench).

    A reading integrates for NPLC / line frequency and adds ``reading_overhead_s`` (ADC,
    auto-zero reference, range check); a level change settles for ``source_settle_s``.
    """

    line_frequency_hz: float = 50.0
    reading_overhead_s: float = 100e-6
    source_settle_s: float = 50e-6

    def reading_s(self, nplc: float) -> float:
        return nplc / self.line_frequency_hz + self.reading_overhead_s


@dataclass
class InstrumentTime:
    """What one instrument has cost so far."""

    round_trips: int = 0
    replies: int = 0
    bytes: int = 0
    transport_s: float = 0.0
    busy_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.transport_s + self.busy_s


class BenchClock:
    """Round trips and estimated bench time, summed over every emulator that shares it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.instruments: dict[str, InstrumentTime] = {}

    def _of(self, name: str) -> InstrumentTime:
        t = self.instruments.get(name)
        if t is None:
            t = self.instruments[name] = InstrumentTime()
        return t

    def message(self, name: str, transport: Transport, n_bytes: int) -> None:
        """The host sent one message of ``n_bytes`` to instrument ``name``."""
        with self._lock:
            t = self._of(name)
            t.round_trips += 1
            t.bytes += n_bytes
            t.transport_s += transport.message_latency_s + n_bytes * transport.byte_time_s

    def reply(self, name: str, transport: Transport, n_bytes: int) -> None:
        """Instrument ``name`` answered with ``n_bytes``."""
        with self._lock:
            t = self._of(name)
            t.replies += 1
            t.bytes += n_bytes
            t.transport_s += transport.reply_latency_s + n_bytes * transport.byte_time_s

    def busy(self, name: str, seconds: float) -> None:
        """Instrument ``name`` spends ``seconds`` executing (integrating, settling, switching, pulsing)."""
        if seconds > 0:
            with self._lock:
                self._of(name).busy_s += float(seconds)

    @property
    def round_trips(self) -> int:
        return sum(t.round_trips for t in self.instruments.values())

    @property
    def bench_time_s(self) -> float:
        return sum(t.total_s for t in self.instruments.values())

    def reset(self) -> None:
        with self._lock:
            self.instruments.clear()

    def snapshot(self) -> dict:
        """``{"round_trips", "bench_time_s", "instruments": {name: {round_trips, replies, bytes,
        transport_s, busy_s}}}`` -- plain data for a run file or a printout."""
        with self._lock:
            per = {n: {**asdict(t), "total_s": t.total_s} for n, t in self.instruments.items()}
        return {"round_trips": sum(p["round_trips"] for p in per.values()),
                "bench_time_s": sum(p["total_s"] for p in per.values()), "instruments": per}

    def since(self, before: dict) -> dict:
        """Round trips and bench time spent after an earlier :meth:`snapshot`."""
        now = self.snapshot()
        return {"round_trips": now["round_trips"] - before["round_trips"],
                "bench_time_s": now["bench_time_s"] - before["bench_time_s"]}
