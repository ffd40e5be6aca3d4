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
from .keithley2450 import Keithley2450Emulator
from .keithley2600b import Keithley2600BEmulator
from .keithley707b import Keithley707BEmulator
from .keysight81160a import Keysight81160AEmulator
from .wiring import Wiring, WiringError

#: instrument model name (as in bench files) -> emulator class
EMULATORS: dict[str, type[Emulator]] = {
    "keithley2450": Keithley2450Emulator,
    "keysight81160a": Keysight81160AEmulator,
    "rram-hil-ab64": AddressingBoardEmulator,
    "keithley2600b": Keithley2600BEmulator,
    "keithley707b": Keithley707BEmulator,
}


class SimulatedInstruments:
    """The simulated chip, its wiring and an emulator per instrument of a bench file.

    Parameters
    ----------
    chip : the bench file's ``chip`` section (see :func:`build_arrays`), or ready arrays.
    instruments : instrument name -> model name.
    inputs : addresser input (``read``, ``pulse``, ``gate``) -> endpoint (``"smu"``, ``"pulser.1"``).
    options : instrument name -> extra keyword arguments of its emulator (a matrix's row map).
    base_dir : directory that relative paths in ``chip`` (fault-map files) are resolved against.
    """

    def __init__(self, chip: Mapping[str, Any] | Mapping[str, SimulatedArray], instruments: Mapping[str, str],
                 inputs: Mapping[str, str], base_dir: Path | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None):
        if chip and all(isinstance(v, SimulatedArray) for v in chip.values()):
            self.arrays = dict(chip)
        else:
            self.arrays = build_arrays(chip, base_dir)
        self.wiring = Wiring(self.arrays, inputs)
        self.emulators: dict[str, Emulator] = {}
        for name, model in instruments.items():
            cls = EMULATORS.get(model)
            if cls is None:
                raise WiringError(f"no emulator for instrument model {model!r}; known: {', '.join(EMULATORS)}")
            self.emulators[name] = cls(self.wiring, name, **dict((options or {}).get(name, {})))

    def outputs_off(self) -> None:
        for emu in self.emulators.values():
            emu.outputs_off()

    def advance(self, hours: float) -> dict[str, list]:
        """Fast-forward the chip by ``hours`` of idle time (every array); the stuck devices that appeared."""
        return {name: arr.advance(hours) for name, arr in self.arrays.items()}


__all__ = ["SimulatedInstruments", "EMULATORS", "Emulator", "Wiring", "WiringError", "build_arrays",
           "AddressingBoardEmulator", "Keithley2450Emulator", "Keysight81160AEmulator", "Keithley2600BEmulator",
           "Keithley707BEmulator"]
