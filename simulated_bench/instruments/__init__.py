"""Simulated bench instruments: emulators that answer the drivers' bytes and act on the chip.

:class:`SimulatedInstruments` builds the chip of a simulated bench file, the wiring
between instrument endpoints and the chip's lines, and one emulator per instrument.
Transports (in-process adapters, TCP servers, the pyserial URL handler) only move bytes
to and from :meth:`Emulator.feed`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..array import SimulatedArray
from .base import Emulator
from .board import AddressingBoardEmulator
from .chip import build_arrays
from .clock import GPIB, LAN, SERIAL, TRANSPORTS, USBTMC, BenchClock, SmuTiming, Transport, transport_for
from .keithley2450 import Keithley2450Emulator
from .keithley2600b import Keithley2600BEmulator
from .keithley707b import Keithley707BEmulator
from .keysight81160a import Keysight81160AEmulator
from .keysightb2900 import KeysightB2900Emulator
from .wiring import Wiring, WiringError

#: instrument model name (as in bench files) -> emulator class
EMULATORS: dict[str, type[Emulator]] = {
    "keithley2450": Keithley2450Emulator,
    "keysight81160a": Keysight81160AEmulator,
    "rram-hil-ab64": AddressingBoardEmulator,
    "keithley2600b": Keithley2600BEmulator,
    "keithley707b": Keithley707BEmulator,
    "keysightb2900": KeysightB2900Emulator,
}


class SimulatedInstruments:
    """The simulated chip, its wiring and an emulator per instrument of a bench file.

    Parameters
    ----------
    chip : the bench file's ``chip`` section (see :func:`build_arrays`), or ready arrays.
    instruments : instrument name -> model name, or the emulator class itself.
    inputs : addresser input (``read``, ``pulse``, ``gate``) -> endpoint (``"smu"``, ``"pulser.1"``).
    options : instrument name -> extra keyword arguments of its emulator (a matrix's row map);
        ``transport`` (a name in :data:`~.clock.TRANSPORTS` or a mapping of
        :class:`~.clock.Transport` fields) sets the link its bench-clock charges use;
        ``tsplink_node`` (int) puts a TSP instrument on the bench's TSP-Link: a 2600B
        script then reaches a 707B with node number N as ``node[N].channel``.
    base_dir : directory that relative paths in ``chip`` (fault-map files) are resolved against.

    ``clock`` is the :class:`~.clock.BenchClock` every emulator charges: round trips and
    estimated bench time (:meth:`bench_time`).
    """

    def __init__(self, chip: Mapping[str, Any] | Mapping[str, SimulatedArray],
                 instruments: Mapping[str, str | type[Emulator]],
                 inputs: Mapping[str, str], base_dir: Path | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None):
        if chip and all(isinstance(v, SimulatedArray) for v in chip.values()):
            self.arrays = dict(chip)
        else:
            self.arrays = build_arrays(chip, base_dir)
        self.wiring = Wiring(self.arrays, inputs)
        self.emulators: dict[str, Emulator] = {}
        self.clock = BenchClock()
        nodes: dict[str, int] = {}
        for name, model in instruments.items():
            cls = model if isinstance(model, type) else EMULATORS.get(model)
            if cls is None:
                raise WiringError(f"no emulator for instrument model {model!r}; known: {', '.join(EMULATORS)}")
            kwargs = dict((options or {}).get(name, {}))
            transport = kwargs.pop("transport", None)
            if kwargs.get("tsplink_node") is not None:
                nodes[name] = int(kwargs.pop("tsplink_node"))
            emu = cls(self.wiring, name, **kwargs)
            emu.clock, emu.clock_name = self.clock, name
            if transport is not None:
                emu.transport = transport_for(transport)
            self.emulators[name] = emu
        self._link(nodes)

    def _link(self, nodes: Mapping[str, int]) -> None:
        """Simulated TSP-Link: every linked SourceMeter reaches every linked switch matrix by its node number."""
        if len(set(nodes.values())) != len(nodes):
            raise WiringError(f"TSP-Link node numbers must be unique, got {dict(nodes)}")
        for master, _ in nodes.items():
            for slave, number in nodes.items():
                emu = self.emulators[slave]
                if slave != master and isinstance(emu, Keithley707BEmulator):
                    self.emulators[master].link_node(number, emu.remote_channel(self.emulators[master]))

    def bench_time(self) -> dict:
        """Round trips and estimated bench time so far: see :meth:`BenchClock.snapshot`."""
        return self.clock.snapshot()

    def outputs_off(self) -> None:
        for emu in self.emulators.values():
            emu.outputs_off()

    def advance(self, hours: float) -> dict[str, list]:
        """Fast-forward the chip by ``hours`` of idle time (every array); the stuck devices that appeared."""
        return {name: arr.advance(hours) for name, arr in self.arrays.items()}


__all__ = ["SimulatedInstruments", "EMULATORS", "BenchClock", "Transport", "TRANSPORTS", "transport_for", "SmuTiming",
           "GPIB", "LAN", "SERIAL", "USBTMC", "Emulator", "Wiring", "WiringError", "build_arrays",
           "AddressingBoardEmulator", "Keithley2450Emulator", "Keysight81160AEmulator", "Keithley2600BEmulator",
           "Keithley707BEmulator", "KeysightB2900Emulator"]
