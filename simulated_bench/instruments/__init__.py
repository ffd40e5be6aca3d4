"""Simulated bench instruments: emulators that answer the drivers' bytes and act on the chip.

:class:`SimulatedInstruments` builds the chip of a simulated bench file, the wiring
between instrument endpoints and the chip's lines, and one emulator per instrument.
Transports (in-process adapters, TCP servers, the pyserial URL handler) only move bytes
to and from :meth:`Emulator.feed`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

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

#: model name (as in bench files) -> emulator class. The registry of instrument models is
#: ``hil.instruments.PLUGINS`` (each plug-in names its emulator); this layer may not import
#: hil, so hil installs its look-up here when it is imported (:func:`set_model_resolver`).
_resolve_model: Callable[[str], type[Emulator]] | None = None


def set_model_resolver(resolve: Callable[[str], type[Emulator]] | None) -> None:
    """Install the function that turns a model name into its emulator class (hil's plug-in registry)."""
    global _resolve_model
    _resolve_model = resolve


def emulator_class(model: str | type[Emulator]) -> type[Emulator]:
    """The emulator class of ``model`` (a class is returned as it is)."""
    if isinstance(model, type):
        return model
    if _resolve_model is None:
        raise WiringError(f"no instrument registry to look {model!r} up in: pass the emulator class, or import "
                          "hil (its instrument plug-ins name their emulators)")
    try:
        return _resolve_model(model)
    except (KeyError, LookupError) as exc:
        raise WiringError(f"no emulator for instrument model {model!r}: {exc}") from None


class SimulatedInstruments:
    """The simulated chip, its wiring and an emulator per instrument of a bench file.

    Parameters
    ----------
    chip : the bench file's ``chip`` section (see :func:`build_arrays`), or ready arrays.
    instruments : instrument name -> emulator class, or model name (looked up in hil's plug-in
        registry, :func:`emulator_class`).
    inputs : addresser input (``read``, ``pulse``, ``gate``) -> endpoint (``"smu"``, ``"pulser.1"``).
    options : instrument name -> extra keyword arguments of its emulator (a matrix's row map);
        ``transport`` (a name in :data:`~.clock.TRANSPORTS` or a mapping of
        :class:`~.clock.Transport` fields) sets the link its bench-clock charges use;
        ``tsplink_node`` (int) puts a TSP instrument on the bench's TSP-Link: every TSP
        SourceMeter's script then reaches a 707B with node number N as ``node[N].channel``.
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
            cls = emulator_class(model)
            kwargs = dict((options or {}).get(name, {}))
            transport = kwargs.pop("transport", None)
            node = kwargs.pop("tsplink_node", None)
            if node is not None:
                nodes[name] = int(node)
            emu = cls(self.wiring, name, **kwargs)
            emu.clock, emu.clock_name = self.clock, name
            if transport is not None:
                emu.transport = transport_for(transport)
            self.emulators[name] = emu
        self._link(nodes)

    def _link(self, nodes: Mapping[str, int]) -> None:
        """Simulated TSP-Link: every TSP SourceMeter reaches every numbered switch matrix by its node
        number (a master without a number is node 1, as on the instrument)."""
        if len(set(nodes.values())) != len(nodes):
            raise WiringError(f"TSP-Link node numbers must be unique, got {dict(nodes)}")
        for master, emu_m in self.emulators.items():
            if not hasattr(emu_m, "link_node") or isinstance(emu_m, Keithley707BEmulator):
                continue
            for slave, number in nodes.items():
                emu = self.emulators[slave]
                if slave != master and isinstance(emu, Keithley707BEmulator):
                    emu_m.link_node(number, emu.remote_channel(emu_m))

    def bench_time(self) -> dict:
        """Round trips and estimated bench time so far: see :meth:`BenchClock.snapshot`."""
        return self.clock.snapshot()

    def outputs_off(self) -> None:
        for emu in self.emulators.values():
            emu.outputs_off()

    def advance(self, hours: float) -> dict[str, list]:
        """Fast-forward the chip by ``hours`` of idle time (every array); the stuck devices that appeared."""
        return {name: arr.advance(hours) for name, arr in self.arrays.items()}


__all__ = ["SimulatedInstruments", "emulator_class", "set_model_resolver", "BenchClock", "Transport", "TRANSPORTS", "transport_for", "SmuTiming",
           "GPIB", "LAN", "SERIAL", "USBTMC", "Emulator", "Wiring", "WiringError", "build_arrays",
           "AddressingBoardEmulator", "Keithley2450Emulator", "Keysight81160AEmulator", "Keithley2600BEmulator",
           "Keithley707BEmulator", "KeysightB2900Emulator"]
