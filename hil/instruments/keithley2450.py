"""Keithley 2450 SourceMeter: one output, reads and supplies word lines (SCPI, pymeasure's driver)."""
from __future__ import annotations

from drivers.keithley2450 import Keithley2450

from .base import InstrumentPlugin
from .smu import VoltageSource


class Keithley2450Source(VoltageSource):
    def _configure(self, v: float) -> None:
        d = self.driver
        d.apply_voltage(compliance_current=self.i_compliance)
        d.measure_current(nplc=0.01)
        d.source_voltage = v
        d.enable_source()
        d.raise_errors()

    def _set_level(self, v: float) -> None:
        self.driver.source_voltage = v
        self.driver.ask("*OPC?")

    def _measure_current(self) -> float:
        return self.driver.current

    def _tripped(self) -> bool:
        return bool(int(float(self.driver.ask(":SOUR:VOLT:ILIM:TRIP?"))))

    def _measure_current_and_trip(self) -> tuple[float, bool]:
        return self.driver.current_and_trip()


class Plugin(InstrumentPlugin):
    model = "keithley2450"
    description = "Keithley 2450 SourceMeter (SCPI), one output"
    roles = frozenset({"read", "gate"})
    idn_model = r"(MODEL )?2450"
    v_range = (-200.0, 200.0)
    i_compliance_range = (1e-9, 1.05)
    emulator = "simulated_bench.instruments.keithley2450:Keithley2450Emulator"

    @classmethod
    def driver_class(cls) -> type:
        return Keithley2450

    @classmethod
    def source(cls, station, name, channel, i_compliance):
        return Keithley2450Source(station, name, channel, i_compliance)
