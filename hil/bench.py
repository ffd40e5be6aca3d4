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

For protocol authors and tests::

    bench = hil.open_bench()                          # 64x64 Stanford-gap chip, in-process
    bench = hil.open_bench(chip={"seed": 3, "device_model": "cute_multilevel",
                                 "arrays": [{"name": "MA", "rows": 64, "cols": 20},
                                            {"name": "MB", "rows": 20, "cols": 64}],
                                 "faults": {"kind": "random", "rate_off": 0.05, "seed": 1},
                                 "variation": {"read_noise_scale": 0.0}})
    bench.arrays, bench.use_array("MB")              # multi-array chips; the first is selected
    bench.sim.arrays["MB"]                            # the SimulatedArray: ground truth, tests only

``bench.sim`` is None on a real bench (and on a served simulated bench opened through
its TCP addresses); protocols never use it.
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
from pyvisa.errors import Error as VisaError
from pyvisa.errors import VisaIOError

from drivers.addressing_board import AddressingBoard
from drivers.errors import InstrumentError
from drivers.keithley707b import Keithley707B
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600b import Keithley2600B
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
    "keithley2600b": Keithley2600B,
    "keithley707b": Keithley707B,
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
            problems = self._all_off()  # never raises: it records who could not be reached
            reached = [n for n in self.drivers if n not in problems]
            state = f"outputs switched off on {', '.join(reached) or 'no instrument'}"
            if problems:
                state += f"; unreachable: {', '.join(problems)}"
            raise BenchConnectionError(f"{self.describe(name)} did not answer: {exc!s} ({state})") from exc
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

    def identities(self) -> dict[str, str]:
        """``*IDN?`` answer of every instrument, by name (for run files: resume on the same bench only)."""
        out = {}
        for name, driver in self.drivers.items():
            with self.guard(name):
                out[name] = str(driver.id).strip()
        return out

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
    """Put one instrument in its safe state (sources at 0 and off, switches open) and confirm it."""
    if model == "keithley2450":
        driver.source_voltage = 0.0
        driver.disable_source()
    elif model == "keysight81160a":
        for ch in (1, 2):
            driver.channels[ch].output = False
    elif model == "rram-hil-ab64":
        driver.route = "OFF"
        driver.word_line_voltage = 0.0
    elif model == "keithley2600b":
        for ch in (driver.smua, driver.smub):
            ch.source_voltage = 0.0
            ch.output_enabled = False
    elif model == "keithley707b":
        driver.open_all()
    if model != "rram-hil-ab64":  # the board acknowledges each setting; the others confirm with *OPC?
        driver.ask("*OPC?")


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


class MatrixSelector(Selector):
    """A 707B switch matrix as the selector: each selection is one ``exclusiveclose``.

    Matrix rows carry the inputs (``wiring.matrix.rows``); matrix columns across the
    cards are the chip's lines: bit lines, then source lines, then word lines.
    """

    def __init__(self, station: Station, name: str, matrix: Mapping[str, Any]):
        self.station, self.name = station, name
        self.matrix = station.drivers[name]
        self.n_rows, self.n_cols = matrix["array"]["rows"], matrix["array"]["cols"]
        # input -> matrix row letter (the first letter when an input has several rows)
        self.letter = {inp: letter for letter, inp in sorted(matrix["rows"].items(), reverse=True)}
        self.row: int | None = None
        self.cols: tuple[int, ...] | None = None
        self._closed: str | None = None
        station.cached(self._forget)

    def _forget(self) -> None:
        self._closed = None

    def _xp(self, line: int, inp: str) -> str:
        return f"{line // 12 + 1}{self.letter[inp]}{line % 12 + 1:02d}"

    def select(self, row: int, cols: Sequence[int], route: Route) -> None:
        if route == "vmm":
            raise RuntimeError("a switch matrix bench has no vector multiplier")
        cols = tuple(cols)
        bl, sl, wl = (lambda j: j), (lambda i: self.n_cols + i), (lambda i: self.n_cols + self.n_rows + i)
        xps = [self._xp(wl(row), "gate")]
        if route in ("read", "bl"):
            xps += [self._xp(bl(j), "read" if route == "read" else "pulse") for j in cols]
            xps.append(self._xp(sl(row), "gnd"))
        else:  # RESET: source line driven, selected bit lines grounded, the rest inhibited
            xps.append(self._xp(sl(row), "pulse"))
            xps += [self._xp(bl(j), "gnd" if j in cols else "pulse") for j in range(self.n_cols)]
        spec = ",".join(xps)
        if spec != self._closed:
            with self.station.guard(self.name):
                self.matrix.exclusive_close(spec)
                self.matrix.ask("*OPC?")
            self._closed = spec
        self.row, self.cols = row, cols

    def deselect(self) -> None:
        with self.station.guard(self.name):
            self.matrix.open_all()
            self.matrix.ask("*OPC?")
        self._closed = ""


class VoltageSource:
    """An SMU output used as a voltage source with current compliance, configured on first use.

    ``channel`` is None for a single-channel 2450, ``"a"``/``"b"`` for a 2600B.
    """

    def __init__(self, station: Station, endpoint: str, i_compliance: float):
        self.station, self.endpoint = station, endpoint
        self.name, _, ch = endpoint.partition(".")
        self.model = station.spec.instruments[self.name].model
        driver = station.drivers[self.name]
        self.driver = driver
        self.channel = driver.channel(ch) if self.model == "keithley2600b" else None
        self.i_compliance = i_compliance
        station.cached(self._forget)
        self._forget()

    def _forget(self) -> None:
        self._ready = False
        self._v: float | None = None

    def _configure(self, v: float) -> None:
        if self.channel is None:
            self.driver.apply_voltage(compliance_current=self.i_compliance)
            self.driver.measure_current(nplc=0.01)
            self.driver.source_voltage = v
            self.driver.enable_source()
        else:
            self.channel.apply_voltage(self.i_compliance, nplc=0.01)
            self.channel.source_voltage = v
            self.channel.output_enabled = True
        self.driver.raise_errors()

    def source(self, v: float) -> None:
        """Drive ``v`` volts (output on); returns once the level is in place."""
        if self._ready and v == self._v:
            return
        with self.station.guard(self.name):
            if not self._ready:
                self._configure(v)
                self._ready = True
            else:
                if self.channel is None:
                    self.driver.source_voltage = v
                else:
                    self.channel.source_voltage = v
                self.driver.ask("*OPC?")  # other instruments act next: the level must be in place
            self._v = v

    def current(self) -> float:
        with self.station.guard(self.name):
            return float(self.driver.current if self.channel is None else self.channel.current)

    def pulse(self, level: float, width: float) -> None:
        """A pulse timed by the SMU (2600B: ``delay`` on the instrument), back to 0 V after."""
        if self.channel is None:
            raise InstrumentError(self.station.describe(self.name), "a 2450 cannot time pulses on this bench path")
        self.source(0.0)
        with self.station.guard(self.name):
            self.channel.pulse(level, width, rest=0.0)
            self.driver.ask("*OPC?")


class SourceGate(GateSupply):
    """Word lines from an SMU output."""

    def __init__(self, source: VoltageSource):
        self.src = source

    def set_gate(self, v_gate: float) -> None:
        self.src.source(v_gate)


class SmuPulser(Pulser):
    """Pulses from a 2600B channel on the PULSE input, timed on the instrument."""

    def __init__(self, source: VoltageSource):
        self.src = source

    def pulse(self, amplitude: float, width: float) -> None:
        self.src.pulse(amplitude, width)


class BoardSenseReader(Reader):
    """Read voltage from the SMU on the READ input, one current per bit line from the board's sense.

    The board answers in ascending column order; the currents are returned in the order
    the columns were selected (repeats included).
    """

    def __init__(self, station: Station, source: VoltageSource, board_name: str, selector: BoardSelector):
        self.station, self.source, self.name, self.selector = station, source, board_name, selector
        self.board: AddressingBoard = station.drivers[board_name]

    def read(self, v_read: float, n_cols: int) -> NDArray[np.float64]:
        cols = np.asarray(self.selector.cols if self.selector.cols is not None else (), dtype=int)
        if cols.size != n_cols:
            raise RuntimeError("select the cells before reading them")
        self.source.source(v_read)
        with self.station.guard(self.name):
            currents = np.asarray(self.board.measure(), dtype=float)
        ascending = np.unique(cols)
        if currents.shape != ascending.shape:
            raise InstrumentError(self.station.describe(self.name),
                                  f"returned {currents.size} currents for {ascending.size} selected columns")
        return currents[np.searchsorted(ascending, cols)]


class ScanReader(Reader):
    """No per-line sense: the SMU reads the selected columns one at a time."""

    def __init__(self, source: VoltageSource, selector: Selector):
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
            new_width = width != self._width
            self.gen.fire(self.channel_no,
                          high=amplitude if amplitude != self._high else None,
                          width=width if new_width else None,
                          period=period if new_width else None,
                          period_first=self._period is None or period > self._period)
            self._high = amplitude
            if new_width:
                self._width, self._period = width, period


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
    cls = DRIVERS[inst.model]
    if inst.model == "rram-hil-ab64":
        return cls(adapter, timeout=inst.timeout)
    if isinstance(adapter, str):
        return cls(adapter, timeout=int(inst.timeout * 1000), **inst.options)
    return cls(adapter)


def _simulated_instruments(spec: BenchSpec):
    from simulated_bench.instruments import SimulatedInstruments

    inputs = {k: spec.wiring[k] for k in ("read", "pulse", "gate")}
    base = spec.source.parent if spec.source is not None else None
    options = {spec.wiring["addresser"]: {"matrix": spec.wiring["matrix"]}} if "matrix" in spec.wiring else {}
    return SimulatedInstruments(spec.chip, {n: i.model for n, i in spec.instruments.items()}, inputs, base, options)


def served_simulation(spec: BenchSpec, ports: Mapping[str, int] | None = None):
    """Build a simulated bench's chip and emulators and serve them on 127.0.0.1: (sim, served)."""
    from simulated_bench.instruments.server import serve_instruments

    sim = _simulated_instruments(spec)
    return sim, serve_instruments(sim, ports)


def served_bench_data(spec: BenchSpec, served) -> dict:
    """A bench description (no chip section) whose addresses are the served instruments.

    Opening it drives the served chip exactly as a lab script drives hardware.
    """
    raw = {k: v for k, v in spec.raw.items() if k != "chip"}
    raw["name"] = f"{spec.name}-served"
    raw["instruments"] = {}
    for name, inst in spec.instruments.items():
        entry = {**dict(spec.raw["instruments"][name]), "address": served.address(name, inst.info.kind)}
        if inst.info.kind == "visa":
            entry["options"] = {**dict(entry.get("options", {})), "visa_library": "@py"}
        raw["instruments"][name] = entry
    return raw


def _connect_simulated(spec: BenchSpec, station: Station, transport: str):
    if transport == "socket":
        sim, servers = served_simulation(spec)
        station.on_cleanup(servers.close)
    else:
        sim, servers = _simulated_instruments(spec), None
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
        except (*TRANSPORT_ERRORS, VisaError, ValueError) as exc:  # unreachable, no VISA backend, bad resource
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
    w, limits = spec.wiring, spec.limits
    model_of = {name: inst.model for name, inst in spec.instruments.items()}
    addresser = w["addresser"]
    sources: dict[str, VoltageSource] = {}

    def source(endpoint: str) -> VoltageSource:
        if endpoint not in sources:
            sources[endpoint] = VoltageSource(station, endpoint, limits.i_compliance)
        return sources[endpoint]

    vmm = None
    if model_of[addresser] == "rram-hil-ab64":
        with station.guard(addresser):
            arrays = station.drivers[addresser].arrays
        selector: Selector = BoardSelector(station, addresser)
        vmm = BoardVmm(station, addresser)
    else:
        shape = w["matrix"]["array"]
        arrays = {"A": (shape["rows"], shape["cols"])}
        selector = MatrixSelector(station, addresser, w["matrix"])
    read = source(w["read"])
    if w["sense"] == "read":
        reader: Reader = ScanReader(read, selector)
    elif isinstance(selector, BoardSelector):
        reader = BoardSenseReader(station, read, w["sense"], selector)
    else:
        raise InstrumentError(w["sense"], "per-line sense needs the board as the addresser")
    gate_model = model_of[w["gate"].partition(".")[0]]
    gate = BoardGate(station, w["gate"]) if gate_model == "rram-hil-ab64" else SourceGate(source(w["gate"]))
    pulse_inst, _, pulse_ch = w["pulse"].partition(".")
    if model_of[pulse_inst] == "keysight81160a":
        pulser: Pulser = GeneratorPulser(station, pulse_inst, int(pulse_ch))
    else:
        pulser = SmuPulser(source(w["pulse"]))
    metadata = {"bench_file": spec.to_yaml(), "bench_name": spec.name, "simulated": spec.simulated,
                "instruments": {n: {"model": i.model, "address": i.address} for n, i in spec.instruments.items()}}
    if spec.chip is not None:
        metadata["chip_id"] = spec.chip.get("id", "")
        metadata["sim"] = sim
    first = next(iter(arrays))
    rows, cols = arrays[first]
    bench = Bench(selector, gate, reader, pulser, limits, rows, cols, vmm=vmm, name=spec.name,
                  metadata=metadata, closers=[station], arrays=arrays)
    bench.use_array(first)
    return bench


_OPEN_BENCHES: "weakref.WeakSet[Bench]" = weakref.WeakSet()


def _close_at_exit(bench: Bench) -> None:
    _OPEN_BENCHES.add(bench)
    # atexit runs last-registered first: re-register so the benches close before pyvisa
    # tears its sessions down (it registers its own handler when a resource manager opens)
    atexit.unregister(_close_open_benches)
    atexit.register(_close_open_benches)


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
           "load_bench_file", "served_simulation", "served_bench_data"]
