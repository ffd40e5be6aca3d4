"""Bench file -> instruments -> roles -> :class:`~hil.roles.Bench`.

``open_bench(path=None)`` reads a bench file (the embedded simulated bench when no path
is given), opens every instrument with its driver, and composes the roles the protocols
use. On a simulated bench the drivers talk to emulators of the same instruments, either
in this process (``transport="inprocess"``, fast) or over TCP sockets on 127.0.0.1
(``transport="socket"``); the bytes on the wire are the same either way.

The roles keep what they last sent (row, columns, route, gate, read voltage, pulse
settings) and send only what changes, so a row read is two commands and a pulse a few.
Any transport failure (timeout, dropped connection) switches every output off and
raises :class:`BenchConnectionError` naming the instrument.
"""
from __future__ import annotations

import atexit
import contextlib
import weakref
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import serial
from numpy.typing import NDArray
from pyvisa.errors import VisaIOError

from drivers.addressing_board import AddressingBoard
from drivers.errors import InstrumentError
from drivers.keithley2450 import Keithley2450
from drivers.keysight81160a import Keysight81160A

from .benchfile import BenchSpec, InstrumentSpec, load_bench_file, parse_bench
from .roles import Bench, GateSupply, Pulser, Reader, Route, Selector, VectorMultiplier
from .transport import EmulatorAdapter, register_serial_endpoint, unregister_serial_endpoint

#: transport errors that mean the instrument is gone or silent
TRANSPORT_ERRORS = (VisaIOError, serial.SerialException, OSError, EOFError, TimeoutError)

DRIVERS = {
    "keithley2450": Keithley2450,
    "keysight81160a": Keysight81160A,
    "rram-hil-ab64": AddressingBoard,
}


class BenchConnectionError(RuntimeError):
    """An instrument stopped answering (timeout, dropped connection); outputs were switched off."""


def simulated_bench_file() -> Path:
    """Path of the embedded simulated bench file."""
    return Path(str(resources.files("hil").joinpath("benches/simulated.yaml")))


# --------------------------------------------------------------------------------------
# the instruments of one bench
# --------------------------------------------------------------------------------------
class Station:
    """The open instruments of a bench: drivers by name, off actions, failure handling."""

    def __init__(self, spec: BenchSpec):
        self.spec = spec
        self.drivers: dict[str, Any] = {}
        self._cache_resets: list = []
        self._cleanup: list = []
        self._failing = False

    def add(self, name: str, driver: Any) -> None:
        self.drivers[name] = driver

    def on_cleanup(self, fn) -> None:
        self._cleanup.append(fn)

    def cached(self, reset) -> None:
        """Register a role's cache reset: called whenever the instruments' state is uncertain."""
        self._cache_resets.append(reset)

    def forget_state(self) -> None:
        for reset in self._cache_resets:
            reset()

    def describe(self, name: str) -> str:
        inst = self.spec.instruments[name]
        return f"{name} ({inst.model} at {inst.address})"

    @contextlib.contextmanager
    def guard(self, name: str) -> Iterator[None]:
        """Turn a transport failure on instrument ``name`` into outputs off + BenchConnectionError."""
        try:
            yield
        except TRANSPORT_ERRORS as exc:
            self.forget_state()
            if self._failing:
                raise
            self._failing = True
            try:
                problems = self._all_off()
            finally:
                self._failing = False
            also = f"; could not reach {', '.join(problems)} to switch them off" if problems else ""
            raise BenchConnectionError(f"{self.describe(name)} did not answer: {exc!s}. "
                                       f"Outputs were switched off{also}.") from exc
        except InstrumentError:
            self.forget_state()
            raise

    def _all_off(self) -> list[str]:
        failed = []
        for name, driver in self.drivers.items():
            try:
                _switch_off(self.spec.instruments[name].model, driver)
            except Exception:  # keep switching the others off
                failed.append(name)
        return failed

    def outputs_off(self) -> None:
        self.forget_state()
        failed = self._all_off()
        if failed:
            raise BenchConnectionError(f"could not switch off {', '.join(map(self.describe, failed))}")

    def close(self) -> None:
        for driver in self.drivers.values():
            with contextlib.suppress(Exception):
                driver.adapter.close()
        for fn in self._cleanup:
            with contextlib.suppress(Exception):
                fn()
        self._cleanup.clear()


def _switch_off(model: str, driver: Any) -> None:
    """Put one instrument in its safe state: sources at 0 and off, switches open."""
    if model == "keithley2450":
        driver.source_voltage = 0.0
        driver.disable_source()
    elif model == "keysight81160a":
        for ch in (1, 2):
            driver.channels[ch].output = False
    elif model == "rram-hil-ab64":
        driver.route = "OFF"
        driver.word_line_voltage = 0.0


# --------------------------------------------------------------------------------------
# roles over the drivers
# --------------------------------------------------------------------------------------
class BoardSelector(Selector):
    """The AB64 board as the selector: ROW / COL / ROUTE, each sent only when it changes."""

    ROUTES = {"read": "READ", "bl": "BL", "sl": "SL", "vmm": "VMM"}

    def __init__(self, station: Station, name: str):
        self.station, self.name = station, name
        self.board: AddressingBoard = station.drivers[name]
        self.row: int | None = None
        self.cols: tuple[int, ...] | None = None
        station.cached(self._forget)
        self._forget()

    def _forget(self) -> None:
        self._row = self._cols = self._route = None

    def select(self, row: int, cols: Sequence[int], route: Route) -> None:
        with self.station.guard(self.name):
            if route != "vmm":
                cols = tuple(cols)
                if row != self._row:
                    self.board.row = row
                    self._row = row
                if cols != self._cols:
                    self.board.columns = cols
                    self._cols = cols
                self.row, self.cols = row, cols
            if self.ROUTES[route] != self._route:
                self.board.route = self.ROUTES[route]
                self._route = self.ROUTES[route]

    def deselect(self) -> None:
        with self.station.guard(self.name):
            self.board.route = "OFF"
            self._route = "OFF"

    def use_array(self, name: str) -> None:
        with self.station.guard(self.name):
            self.board.array = name
        self._forget()
        self._route = "OFF"


class BoardGate(GateSupply):
    def __init__(self, station: Station, name: str):
        self.station, self.name = station, name
        self.board: AddressingBoard = station.drivers[name]
        self._v: float | None = None
        station.cached(self._forget)

    def _forget(self) -> None:
        self._v = None

    def set_gate(self, v_gate: float) -> None:
        if v_gate == self._v:
            return
        with self.station.guard(self.name):
            self.board.word_line_voltage = v_gate
        self._v = v_gate


class SmuSource:
    """A 2450 used as a voltage source with current compliance, configured on first use."""

    def __init__(self, station: Station, name: str, i_compliance: float):
        self.station, self.name = station, name
        self.smu: Keithley2450 = station.drivers[name]
        self.i_compliance = i_compliance
        self._ready = False
        self._v: float | None = None
        station.cached(self._forget)

    def _forget(self) -> None:
        self._ready = False
        self._v = None

    def source(self, v: float) -> None:
        with self.station.guard(self.name):
            if not self._ready:
                self.smu.apply_voltage(compliance_current=self.i_compliance)
                self.smu.measure_current(nplc=0.01)
                self.smu.source_voltage = v
                self.smu.enable_source()
                self.smu.raise_errors()
                self._ready, self._v = True, v
            elif v != self._v:
                self.smu.source_voltage = v
                self._v = v

    def current(self) -> float:
        with self.station.guard(self.name):
            return float(self.smu.current)


class BoardSenseReader(Reader):
    """Read voltage from the SMU on the READ input, one current per bit line from the board's sense."""

    def __init__(self, station: Station, source: SmuSource, board_name: str):
        self.station, self.source, self.name = station, source, board_name
        self.board: AddressingBoard = station.drivers[board_name]

    def read(self, v_read: float, n_cols: int) -> NDArray[np.float64]:
        self.source.source(v_read)
        with self.station.guard(self.name):
            currents = np.asarray(self.board.measure(), dtype=float)
        if currents.shape != (n_cols,):
            raise InstrumentError(self.station.describe(self.name),
                                  f"returned {currents.size} currents for {n_cols} selected columns")
        return currents


class ScanReader(Reader):
    """No per-line sense: the SMU reads the selected columns one at a time."""

    def __init__(self, source: SmuSource, selector: BoardSelector):
        self.source, self.selector = source, selector

    def read(self, v_read: float, n_cols: int) -> NDArray[np.float64]:
        row, cols = self.selector.row, self.selector.cols
        if row is None or cols is None or len(cols) != n_cols:
            raise RuntimeError("select the cells before reading them")
        self.source.source(v_read)
        out = np.empty(n_cols)
        for k, col in enumerate(cols):
            self.selector.select(row, [col], "read")
            out[k] = self.source.current()
        self.selector.select(row, cols, "read")
        return out


class GeneratorPulser(Pulser):
    """One channel of an 81160A: single manually-triggered pulses, levels and width cached."""

    def __init__(self, station: Station, name: str, channel: int):
        self.station, self.name, self.channel_no = station, name, channel
        self.gen: Keysight81160A = station.drivers[name]
        self.ch = self.gen.channels[channel]
        station.cached(self._forget)
        self._forget()

    def _forget(self) -> None:
        self._ready = False
        self._high = self._width = self._period = None

    def pulse(self, amplitude: float, width: float) -> None:
        if amplitude < 0.05:
            raise ValueError(f"pulse amplitude {amplitude:g} V is below the 81160A's 50 mV minimum")
        with self.station.guard(self.name):
            if not self._ready:
                self.gen.configure_single_pulse(self.channel_no)
                self.ch.output = True
                self.gen.raise_errors()
                self._ready = True
            period = max(2.0 * width, width + 100e-9)
            if width != self._width:
                # keep width < period at every step: lengthen the period first, shorten it last
                if self._period is None or period > self._period:
                    self.ch.pulse_period = period
                self.ch.pulse_width = width
                if self._period is not None and period < self._period:
                    self.ch.pulse_period = period
                self._width, self._period = width, period
            if amplitude != self._high:
                self.ch.voltage_high = amplitude
                self._high = amplitude
            self.gen.trigger()


class BoardVmm(VectorMultiplier):
    def __init__(self, station: Station, name: str):
        self.station, self.name = station, name
        self.board: AddressingBoard = station.drivers[name]

    def vmm(self, v_in: NDArray[np.float64]) -> NDArray[np.float64]:
        with self.station.guard(self.name):
            return np.asarray(self.board.vmm(v_in), dtype=float)


# --------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------
def _open_driver(inst: InstrumentSpec, adapter: Any) -> Any:
    cls = DRIVERS.get(inst.model)
    if cls is None:
        raise InstrumentError(inst.name, f"no driver for model {inst.model!r} on this bench path yet")
    if inst.model == "rram-hil-ab64":
        return cls(adapter, timeout=inst.timeout)
    if isinstance(adapter, str):
        return cls(adapter, timeout=int(inst.timeout * 1000), **inst.options)
    return cls(adapter)


def _simulated_instruments(spec: BenchSpec):
    from simulated_bench.instruments import SimulatedInstruments

    inputs = {k: spec.wiring[k] for k in ("read", "pulse", "gate")}
    base = spec.source.parent if spec.source is not None else None
    return SimulatedInstruments(spec.chip, {n: i.model for n, i in spec.instruments.items()}, inputs, base)


def _connect_simulated(spec: BenchSpec, station: Station, transport: str):
    sim = _simulated_instruments(spec)
    servers = None
    if transport == "socket":
        from simulated_bench.instruments.server import serve_instruments

        servers = serve_instruments(sim)
        station.on_cleanup(servers.close)
    for name, inst in spec.instruments.items():
        emulator = sim.emulators[name]
        if transport == "socket":
            address = servers.address(name, inst.info.kind)
            if inst.info.kind == "serial":
                driver = _open_driver(inst, address)
            else:
                driver = _open_driver(InstrumentSpec(inst.name, inst.model, address, inst.timeout,
                                                     {"visa_library": "@py"}), address)
        elif inst.info.kind == "serial":
            url = register_serial_endpoint(name, emulator)
            station.on_cleanup(lambda url=url: unregister_serial_endpoint(url))
            driver = _open_driver(inst, url)
        else:
            driver = _open_driver(inst, EmulatorAdapter(emulator))
        station.add(name, driver)
    return sim


def _connect_real(spec: BenchSpec, station: Station) -> None:
    for name, inst in spec.instruments.items():
        try:
            station.add(name, _open_driver(inst, inst.address))
        except TRANSPORT_ERRORS as exc:
            raise BenchConnectionError(f"cannot open {station.describe(name)}: {exc!s}") from exc


def build_bench(spec: BenchSpec, transport: str = "inprocess") -> Bench:
    """Open the instruments of a validated bench file and compose its :class:`Bench`."""
    if transport not in ("inprocess", "socket"):
        raise ValueError(f"transport must be 'inprocess' or 'socket', got {transport!r}")
    station = Station(spec)
    try:
        sim = _connect_simulated(spec, station, transport) if spec.simulated else None
        if not spec.simulated:
            _connect_real(spec, station)
        bench = _compose(spec, station, sim)
    except BaseException:
        station.close()
        raise
    _close_at_exit(bench)
    return bench


def _compose(spec: BenchSpec, station: Station, sim) -> Bench:
    w = spec.wiring
    addresser = w["addresser"]
    model = spec.instruments[addresser].model
    if model != "rram-hil-ab64":
        raise InstrumentError(addresser, f"{model} as addresser is not wired into benches yet")
    with station.guard(addresser):
        arrays = station.drivers[addresser].arrays
    selector = BoardSelector(station, addresser)
    read_name = w["read"]
    if spec.instruments[read_name.partition(".")[0]].model != "keithley2450":
        raise InstrumentError(read_name, "the READ input takes a Keithley 2450 on this bench path")
    source = SmuSource(station, read_name, spec.limits.i_compliance)
    reader = BoardSenseReader(station, source, w["sense"]) if w["sense"] != "read" else ScanReader(source, selector)
    gate_name = w["gate"]
    if spec.instruments[gate_name.partition(".")[0]].model != "rram-hil-ab64":
        raise InstrumentError(gate_name, "the gate is the board's word-line DAC on this bench path")
    gate = BoardGate(station, gate_name)
    pulse_inst, _, pulse_ch = w["pulse"].partition(".")
    if spec.instruments[pulse_inst].model != "keysight81160a":
        raise InstrumentError(pulse_inst, "the PULSE input takes a Keysight 81160A on this bench path")
    pulser = GeneratorPulser(station, pulse_inst, int(pulse_ch))
    vmm = BoardVmm(station, addresser)
    metadata = {"bench_file": spec.to_yaml(), "bench_name": spec.name, "simulated": spec.simulated,
                "instruments": {n: {"model": i.model, "address": i.address} for n, i in spec.instruments.items()}}
    if spec.chip is not None:
        metadata["chip_id"] = spec.chip.get("id", "")
        metadata["sim"] = sim
    first = next(iter(arrays))
    rows, cols = arrays[first]
    bench = Bench(selector, gate, reader, pulser, spec.limits, rows, cols, vmm=vmm, name=spec.name,
                  metadata=metadata, closers=[station], arrays=arrays)
    bench.use_array(first)
    return bench


_OPEN_BENCHES: "weakref.WeakSet[Bench]" = weakref.WeakSet()


def _close_at_exit(bench: Bench) -> None:
    _OPEN_BENCHES.add(bench)


@atexit.register
def _close_open_benches() -> None:
    """Outputs off for every bench still open when the interpreter exits (e.g. after Ctrl-C)."""
    for bench in list(_OPEN_BENCHES):
        with contextlib.suppress(Exception):
            bench.close()


def open_bench(path: str | Path | None = None, *, transport: str = "inprocess",
               chip: Mapping[str, Any] | None = None, limits: Mapping[str, float] | None = None) -> Bench:
    """Open a bench from its bench file; with no path, the embedded simulated bench.

    Parameters
    ----------
    path : bench file (YAML); None for the embedded simulated bench.
    transport : ``"inprocess"`` or ``"socket"`` (simulated benches: emulators served on
        127.0.0.1 TCP ports and opened through pyvisa-py / pyserial ``socket://``).
    chip : overrides merged over the file's ``chip`` section (simulated benches), e.g.
        ``{"seed": 3, "faults": {"kind": "random", "rate_off": 0.05}}``.
    limits : overrides merged over the file's ``limits`` section.
    """
    overrides: dict[str, Any] = {}
    if chip:
        overrides["chip"] = dict(chip)
    if limits:
        overrides["limits"] = dict(limits)
    spec = load_bench_file(simulated_bench_file() if path is None else path, overrides or None)
    return build_bench(spec, transport)


__all__ = ["open_bench", "build_bench", "BenchConnectionError", "Station", "simulated_bench_file", "parse_bench",
           "load_bench_file"]
