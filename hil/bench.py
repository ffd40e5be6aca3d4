"""The bench: bench file -> instruments -> roles -> :class:`Bench`.

``open_bench(path=None)`` reads a bench file (the embedded simulated bench when no path
is given), opens every instrument through its plug-in (``hil/instruments/``), checks
that each one identifies as the model the bench file names, puts every instrument in
its safe state, and composes the roles the protocols use. On a simulated bench the
drivers talk to emulators of the same instruments, either in this process
(``transport="inprocess"``, fast) or over TCP sockets on 127.0.0.1
(``transport="socket"``); the bytes on the wire are the same either way.

For protocol authors and tests::

    bench = hil.open_bench()                          # 64x64 Stanford-gap chip, in-process
    bench = hil.open_bench(chip={"seed": 3, "device_model": "cute_multilevel",
                                 "arrays": [{"name": "MA", "rows": 64, "cols": 20},
                                            {"name": "MB", "rows": 20, "cols": 64}],
                                 "faults": {"kind": "random", "rate_off": 0.05, "seed": 1},
                                 "variation": {"read_noise_scale": 0.0}})
    bench.arrays, bench.use_array("MB")              # multi-array chips; the first is selected
    bench.sim.arrays["MB"]                            # the SimulatedArray: ground truth, tests only
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import warnings
import weakref
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pyvisa.errors import Error as VisaError

from .benchfile import BenchFileError, BenchSpec, load_bench_file, parse_bench
from .benchlock import BenchBusyError, BenchLock, UncleanSession
from .instruments import identify_model
from .instruments.smu import ScanReader, VoltageSource
from .roles import (GateSupply, LimitError, Limits, Pulser, Reader, Selector, TuneResult, TuneRule,
                    VectorMultiplier)
from .station import TRANSPORT_ERRORS, BenchConnectionError, InstrumentIdentityError, Station
from .transport import EmulatorAdapter, register_serial_endpoint, unregister_serial_endpoint

log = logging.getLogger(__name__)


class UncleanShutdownWarning(UserWarning):
    """The previous session on this bench ended without closing it; its instruments were made safe."""


class Bench:
    """The roles of one bench plus its limits, chip geometry and identity.

    Every operation checks the limits first, then drives the roles. :meth:`outputs_off`
    runs on close, on errors inside ``with bench:``, on Ctrl-C and at interpreter exit.

    What a run file records about the bench (all JSON-able):

    ``bench.identity``
        ``{"bench_name", "bench_file_sha256", "simulated", "device": {"model", "chip_id",
        "arrays"}, "instruments": {name: {"model", "address", "make", "idn_model",
        "serial", "firmware", "idn"}}}``: compare two of them to refuse a resume on another
        chip or bench.
    ``bench.metadata``
        the identity's fields plus ``bench_file`` (the YAML text), ``chip_id`` and
        ``device_model`` (which choose protocol presets), and ``sim`` (the simulated chip,
        not JSON-able; None on a real bench).
    ``bench.unclean_previous``
        the :class:`~hil.benchlock.UncleanSession` a ``kill -9`` left behind, or None.
    """

    def __init__(self, selector: Selector, gate: GateSupply, reader: Reader, pulser: Pulser,
                 limits: Limits, rows: int, cols: int, vmm: VectorMultiplier | None = None,
                 name: str = "bench", metadata: dict | None = None, closers: Sequence = (),
                 arrays: dict[str, tuple[int, int]] | None = None, station: Station | None = None,
                 read_source: VoltageSource | None = None, pulse_trigger: bool = False):
        self.selector, self.gate, self.reader, self.pulser = selector, gate, reader, pulser
        #: per read of the last :meth:`sweep_row`, whether the SMU was in compliance (its own status,
        #: read by the same script); None after a host read (:meth:`read_row`)
        self.last_sweep_tripped: NDArray[np.bool_] | None = None
        self.vector = vmm
        self.limits = limits
        self.rows, self.cols = int(rows), int(cols)
        self.name = name
        self.metadata = dict(metadata or {})
        #: the chip's arrays, name -> (rows, cols); a single-array chip has one entry "A"
        self.arrays: dict[str, tuple[int, int]] = dict(arrays) if arrays else {"A": (self.rows, self.cols)}
        self.array = next(iter(self.arrays))
        #: the simulated chip behind a simulated bench (ground truth for tests; never for protocols)
        self.sim = self.metadata.get("sim")
        self.station = station
        self.read_source = read_source
        #: the bench file's ``wiring.pulse_trigger``: the addresser's trigger output reaches the pulser
        self.pulse_trigger = bool(pulse_trigger)
        self.unclean_previous: UncleanSession | None = None
        self._closers = list(closers)
        self._closed = False

    @property
    def identity(self) -> dict[str, Any]:
        """Bench file hash, device under test and every instrument's identification (JSON-able)."""
        return {k: self.metadata[k] for k in ("bench_name", "bench_file_sha256", "simulated", "device", "instruments")
                if k in self.metadata}

    def use_array(self, name: str) -> None:
        """Address array ``name`` of a multi-array chip from now on; rows / cols follow it."""
        if name not in self.arrays:
            raise KeyError(f"no array {name!r} on this chip; arrays: {', '.join(self.arrays)}")
        self.selector.use_array(name)
        self.array = name
        self.rows, self.cols = (int(n) for n in self.arrays[name])

    # checks ---------------------------------------------------------------------------
    def _row(self, row: int) -> int:
        if not 0 <= int(row) < self.rows:
            raise IndexError(f"row {row} outside the chip's 0..{self.rows - 1}")
        return int(row)

    def _cols(self, cols: int | Sequence[int] | None) -> list[int]:
        if cols is None:
            return list(range(self.cols))
        out = [int(c) for c in np.atleast_1d(cols)]
        bad = [c for c in out if not 0 <= c < self.cols]
        if bad:
            raise IndexError(f"columns {bad} outside the chip's 0..{self.cols - 1}")
        if not out:
            raise ValueError("no columns selected")
        return out

    # operations -----------------------------------------------------------------------
    def read_row(self, row: int, cols: int | Sequence[int] | None, v_read: float, v_gate: float,
                 n_avg: int = 1) -> NDArray[np.float64]:
        """Conductances (S) of the selected cells of one row: I / v_read, averaged over ``n_avg`` reads."""
        if v_read == 0:
            raise ValueError("v_read must be non-zero")
        if n_avg < 1:
            raise ValueError(f"n_avg must be >= 1, got {n_avg}")
        self.limits.check_line(v_read, "read voltage")
        self.limits.check_gate(v_gate)
        row, cols = self._row(row), self._cols(cols)
        self.gate.set_gate(v_gate)
        self.selector.select(row, cols, "read")
        self.last_sweep_tripped = None
        if self.reader.averages:  # the instrument averages: one transfer
            return self.reader.read(v_read, len(cols), n_avg=n_avg) / v_read
        total = np.zeros(len(cols))
        for _ in range(n_avg):
            total += self.reader.read(v_read, len(cols))
        return total / n_avg / v_read

    def read_tripped(self) -> bool:
        """True when the read source was in current compliance during the last read, as the
        instrument reports it (its trip status): that read's currents are capped, not measured.
        After a :meth:`sweep_row`: whether any of its reads was."""
        if self.last_sweep_tripped is not None:
            return bool(self.last_sweep_tripped.any())
        return self.reader.tripped()

    def read_array(self, v_read: float, v_gate: float, n_avg: int = 1,
                   rows: Sequence[int] | None = None, cols: Sequence[int] | None = None) -> NDArray[np.float64]:
        """Conductance map (S) of a region, row by row; shape (len(rows), len(cols))."""
        rows = list(range(self.rows)) if rows is None else [self._row(r) for r in rows]
        return np.stack([self.read_row(r, cols, v_read, v_gate, n_avg) for r in rows])

    def pulse_row(self, row: int, cols: int | Sequence[int] | None, amplitude: float, width: float,
                  v_gate: float) -> None:
        """One pulse on the selected cells of a row; amplitude > 0 SETs (bit lines), < 0 RESETs (source line)."""
        self.limits.check_line(amplitude, "pulse amplitude")
        self.limits.check_width(width)
        self.limits.check_gate(v_gate)
        row, cols = self._row(row), self._cols(cols)
        self.gate.set_gate(v_gate)
        self.selector.select(row, cols, "bl" if amplitude > 0 else "sl")
        self.pulser.pulse(abs(amplitude), width)

    @property
    def can_sequence(self) -> bool:
        """True when the addresser runs a row's pulses from one command, triggering the pulser
        itself (the AB64 board's ``SEQ`` with an 81160A or a B2900 channel armed on its trigger
        input, the cable declared by ``wiring.pulse_trigger``): see :meth:`pulse_groups`."""
        return self.pulse_trigger and _can_sequence(self.selector, self.gate, self.pulser)

    def pulse_groups(self, row: int, groups: Sequence[tuple[Sequence[int], float, float, float]]) -> None:
        """Pulse groups on one row, in order: per group ``(cols, amplitude V, width s, gate V)`` one
        pulse on those cells (amplitude > 0 SETs, < 0 RESETs), as :meth:`pulse_row` each.

        Every group is checked against the limits before anything is sent. On a bench that
        :attr:`can_sequence`, consecutive groups sharing a pulse (|amplitude|, width) cost one
        arming of the pulser and one addresser command (it routes and triggers per group);
        elsewhere each group is one :meth:`pulse_row`.
        """
        checked = []
        for cols, amplitude, width, v_gate in groups:
            self.limits.check_line(amplitude, "pulse amplitude")
            self.limits.check_width(width)
            self.limits.check_gate(v_gate)
            checked.append((self._cols(cols), float(amplitude), float(width), float(v_gate)))
        row = self._row(row)
        if not self.can_sequence:
            for cols, amplitude, width, v_gate in checked:
                self.pulse_row(row, cols, amplitude, width, v_gate)
            return
        k = 0
        while k < len(checked):
            # one arming per run of groups the pulser can serve from it: the same width, and the
            # same amplitude unless it steps through a list
            first, run = checked[k], []
            while (k < len(checked) and len(run) < self.pulser.max_armed and checked[k][2] == first[2]
                   and (self.pulser.level_per_trigger or abs(checked[k][1]) == abs(first[1]))):
                run.append(checked[k])
                k += 1
            self.pulser.arm([abs(a) for _, a, _, _ in run], first[2])
            self.selector.sequence(row, [(cols, "bl" if a > 0 else "sl", v_gate) for cols, a, _, v_gate in run])

    @property
    def can_pulse_read(self) -> bool:
        """True when the SMU on the READ input times pulses itself (a 2600B or B2900 channel),
        so :meth:`pulse_read_cell` runs a whole pulse-then-read train on the instrument."""
        return self.read_source is not None and self.read_source.can_pulse_read

    def pulse_read_cell(self, row: int, col: int, amplitudes: ArrayLike, width: float, v_read: float,
                        v_gate: float) -> NDArray[np.float64]:
        """Pulse-then-read train on one cell, run on the instrument: for each amplitude one SET
        pulse of ``width`` s, then a read at ``v_read``; returns one conductance (S) per pulse.

        The pulses come from the READ source through the read route (the PULSE input is not
        used), so this needs a read SMU that times pulses (:attr:`can_pulse_read`). The
        whole train is checked against the limits and the SMU's pulse widths before
        anything is sent.
        """
        amplitudes = np.asarray(amplitudes, dtype=float).ravel()
        if not self.can_pulse_read:
            raise RuntimeError(f"bench {self.name!r}: the SMU on the READ input cannot run pulse-read trains "
                               f"(a 2600B or B2900 channel can)")
        if amplitudes.size == 0:
            raise ValueError("no amplitudes given")
        if v_read == 0:
            raise ValueError("v_read must be non-zero")
        if np.any(amplitudes <= 0):
            raise ValueError("pulse-read trains are SET trains: amplitudes must be > 0")
        self.limits.check_line(amplitudes, "pulse amplitude")
        self.limits.check_line(v_read, "read voltage")
        self.limits.check_width(width)
        self.limits.check_gate(v_gate)
        shortest, longest = self.read_source.pulse_width_range or (0.0, np.inf)
        if not shortest <= width <= longest:
            raise LimitError(f"pulse width {width:g} s is outside what the read SMU times ({shortest:g} to "
                             f"{longest:g} s)")
        row, (col,) = self._row(row), self._cols([col])
        self.gate.set_gate(v_gate)
        self.selector.select(row, [col], "read")
        return self.read_source.pulse_read(amplitudes, width, v_read) / v_read

    # write-and-verify and scans run by the instrument ------------------------------------------
    @property
    def can_tune_on_instrument(self) -> bool:
        """True when the read SMU runs a row's write-and-verify (:meth:`tune_row`) and pulse sweep
        (:meth:`sweep_row`) itself, reaching each cell through the addresser over its own link:
        a 2600B on READ with the word lines on its other channel, and a 707B on its TSP-Link
        (``wiring.matrix.tsplink_node`` in the bench file)."""
        src, gate = self.read_source, getattr(self.gate, "src", None)
        return bool(src is not None and src.can_tune and self.selector.link_node is not None and gate is not None
                    and gate.name == src.name and gate.channel_name != src.channel_name)

    def _check_on_instrument(self, amps: ArrayLike, gates: ArrayLike, widths: ArrayLike, v_read: float,
                             read_gate: float) -> None:
        """Limits of an on-instrument loop: bench limits and the SMU's own pulse widths; a negative
        (RESET) pulse drives the word line at gate + amplitude, which must be within the limits too."""
        if not self.can_tune_on_instrument:
            raise RuntimeError(f"bench {self.name!r} cannot run write-and-verify on an instrument (a 2600B on "
                               "READ and word lines with a 707B on its TSP-Link: wiring.matrix.tsplink_node)")
        amps, gates, widths = (np.asarray(x, dtype=float).ravel() for x in (amps, gates, widths))
        for what, x in (("pulse amplitude", amps), ("gate voltage", gates), ("pulse width", widths),
                        ("read voltage", [v_read]), ("read gate", [read_gate])):
            if not np.all(np.isfinite(x)):
                raise LimitError(f"a {what} is not a finite number")
        if v_read == 0:
            raise ValueError("v_read must be non-zero")
        self.limits.check_line(amps, "pulse amplitude")
        self.limits.check_line(v_read, "read voltage")
        for g in np.unique(np.concatenate([gates, gates + np.minimum(amps, 0), [read_gate]])):
            self.limits.check_gate(float(g))
        if widths.size:
            self.limits.check_width(float(widths.max()))
            self.limits.check_width(float(widths.min()))
            shortest, longest = self.read_source.pulse_width_range or (0.0, np.inf)
            if widths.min() < shortest or widths.max() > longest:
                raise LimitError(f"pulse widths {widths.min():g} to {widths.max():g} s are outside what the read SMU "
                                 f"times ({shortest:g} to {longest:g} s)")

    def can_tune(self, rule: TuneRule) -> bool:
        """True when :meth:`tune_row` can run ``rule`` here (capability, bench limits, the SMU's pulse widths)."""
        if not self.can_tune_on_instrument:
            return False
        try:
            self._check_on_instrument(*rule.pulse_plan(), rule.v_read, rule.read_gate)
        except (LimitError, ValueError):
            return False
        return True

    def can_sweep(self, steps: Sequence[tuple[float, float, float]], v_read: float, read_gate: float) -> bool:
        """True when :meth:`sweep_row` can run these (signed amplitude V, gate V, width s) steps here."""
        if not self.can_tune_on_instrument:
            return False
        try:
            self._check_on_instrument(*np.asarray(steps, dtype=float).reshape(-1, 3).T, v_read, read_gate)
        except (LimitError, ValueError):
            return False
        return True

    def tune_row(self, row: int, cols: Sequence[int], g_target: ArrayLike, rule: TuneRule, max_pulses: ArrayLike,
                 start_set: ArrayLike | None = None, start_reset: ArrayLike | None = None,
                 g_spread: ArrayLike | None = None) -> TuneResult:
        """Write-and-verify of cells of one row run by the instrument (:attr:`can_tune_on_instrument`):
        one call for the whole row; the instrument routes each cell in turn and runs ``rule``.

        ``g_target`` (S, one per column), ``max_pulses`` (pulses allowed per cell, scalar or per
        cell), ``start_set`` / ``start_reset`` (rung each ladder starts at after a reversal,
        default 0), ``g_spread`` ((cells, 2): lowest and highest read of each cell so far, S; NaN:
        none). Every drive the rule may use is checked against the limits before anything is
        sent. Returns per cell the final read (S), pulses, status (``TUNE_CONVERGED`` /
        ``TUNE_EXHAUSTED`` / ``TUNE_UNRESPONSIVE``), reversals, read spread and the per-read log.
        """
        row, cols = self._row(row), self._cols(cols)
        n = len(cols)
        g_target = np.broadcast_to(np.asarray(g_target, dtype=float), (n,))
        if not np.all(np.isfinite(g_target) & (g_target > 0)):
            raise ValueError("g_target must hold positive conductances (S)")
        budgets = np.broadcast_to(np.asarray(max_pulses, dtype=float), (n,))
        if not np.all(np.isfinite(budgets) & (budgets >= 0) & (budgets == np.round(budgets))):
            raise ValueError("max_pulses must be whole numbers >= 0")
        self._check_on_instrument(*rule.pulse_plan(), rule.v_read, rule.read_gate)
        if budgets.max() > self.read_source.max_tune_pulses:
            raise LimitError(f"max_pulses {budgets.max():g} is more than the read SMU runs in one call "
                             f"({self.read_source.max_tune_pulses} per cell)")
        starts = []
        for given, n_rungs in ((start_set, len(rule.set_amps)), (start_reset, len(rule.reset_amps))):
            k = np.zeros(n) if given is None else np.broadcast_to(np.asarray(given, dtype=float), (n,))
            if not np.all(np.isfinite(k) & (k >= 0) & (k < n_rungs)):
                raise ValueError(f"start rungs must lie in 0 to {n_rungs - 1}")
            starts.append(k.astype(np.int64))
        spread = np.full((n, 2), np.nan) if g_spread is None else np.asarray(g_spread, dtype=float).reshape(n, 2)
        src, gate = self.read_source, self.gate.src
        src.source(0.0)
        gate.source(rule.read_gate)  # both channels configured and on before the script drives them
        routes = self.selector.cell_routes(row, cols)
        try:
            return src.tune_cells(gate, routes, self.selector.link_node, g_target, rule, budgets.astype(np.int64),
                                  starts[0], starts[1], spread)
        finally:
            self.selector.forget()  # the script closed other crosspoints

    def sweep_row(self, row: int, cols: Sequence[int], steps: Sequence[tuple[float, float, float]], v_read: float,
                  read_gate: float, n_read: int = 1) -> NDArray[np.float64]:
        """Per cell of one row, run by the instrument: a read, then per (signed amplitude V, gate V,
        width s) step one pulse and a read (> 0 SET, < 0 RESET). Conductances (S), shape
        (len(cols), len(steps) + 1); one call for the row (:attr:`can_tune_on_instrument`). The
        SMU's compliance status at each read comes in the same transfer (:attr:`last_sweep_tripped`)."""
        row, cols = self._row(row), self._cols(cols)
        steps = [tuple(float(x) for x in s) for s in steps]
        if any(len(s) != 3 for s in steps):
            raise ValueError("a sweep step is (amplitude V, gate V, width s)")
        if int(n_read) < 1:
            raise ValueError(f"n_read must be >= 1, got {n_read}")
        self._check_on_instrument([s[0] for s in steps], [s[1] for s in steps], [s[2] for s in steps], v_read,
                                  read_gate)
        src, gate = self.read_source, self.gate.src
        src.source(0.0)
        gate.source(read_gate)
        routes = self.selector.cell_routes(row, cols)
        self.last_sweep_tripped = None
        try:
            reads, self.last_sweep_tripped = src.sweep_cells(gate, routes, self.selector.link_node, steps, v_read,
                                                             read_gate, int(n_read))
        finally:
            self.selector.forget()
        return reads / v_read

    def check_plan(self, *, pulse_amplitudes: ArrayLike = (), pulse_widths: ArrayLike = (),
                   gate_voltages: ArrayLike = (), read_voltages: ArrayLike = ()) -> None:
        """Check every value a run may use against the bench limits and the instruments' own
        ranges before anything is sent; :class:`LimitError` names the parameter to change.

        Amplitudes are signed (V, > 0 SET, < 0 RESET), widths in s, gate and read voltages in V.
        """
        amps = np.asarray(pulse_amplitudes, dtype=float).ravel()
        widths = np.asarray(pulse_widths, dtype=float).ravel()
        for what, values, check in (("pulse amplitude", amps, lambda v: self.limits.check_line(v, "pulse amplitude")),
                                    ("read voltage", np.asarray(read_voltages, dtype=float).ravel(),
                                     lambda v: self.limits.check_line(v, "read voltage")),
                                    ("gate voltage", np.asarray(gate_voltages, dtype=float).ravel(),
                                     lambda v: [self.limits.check_gate(x) for x in np.unique(v)])):
            if values.size:
                if not np.all(np.isfinite(values)):
                    raise LimitError(f"a {what} in the plan is not a finite number")
                check(values)
        if widths.size:
            if not np.all(np.isfinite(widths)):
                raise LimitError("a pulse width in the plan is not a finite number")
            self.limits.check_width(float(widths.max()))
            self.limits.check_width(float(widths.min()))
        self.pulser.check(np.abs(amps), widths)

    def vmm(self, v_in: ArrayLike, v_gate: float) -> NDArray[np.float64]:
        """Vector-matrix multiply: source-line voltages in, the current each bit line sinks out (A)."""
        if self.vector is None:
            raise RuntimeError(f"bench {self.name!r} has no vector multiplier (no multi-channel board in its bench file)")
        v_in = np.asarray(v_in, dtype=float)
        if v_in.shape != (self.rows,):
            raise ValueError(f"v_in must have shape ({self.rows},), got {v_in.shape}")
        self.limits.check_line(v_in, "input voltage")
        self.limits.check_gate(v_gate)
        self.gate.set_gate(v_gate)
        self.selector.select(0, [], "vmm")
        return self.vector.vmm(v_in)

    # lifetime ---------------------------------------------------------------------------
    def outputs_off(self) -> None:
        """Every instrument to its safe state (sources 0 V and off, routes open), one attempt
        each; safe to call more than once. Raises :class:`BenchConnectionError` naming any
        instrument that could not be reached now."""
        if self.station is not None:
            self.station.outputs_off()
            return
        self.gate.set_gate(0.0)
        self.selector.deselect()

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.outputs_off()
        finally:
            self._closed = True
            for closer in self._closers:
                with contextlib.suppress(Exception):
                    closer()

    def __enter__(self) -> "Bench":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an error is on its way: do not let the clean-up replace it
            self.close()
        except Exception as off_exc:
            log.error("%s", off_exc)


def _can_sequence(selector: Selector, gate: GateSupply, pulser: Pulser) -> bool:
    """The addresser sequences pulses, sets the word lines itself, and the pulser takes its triggers."""
    drives_gate = getattr(selector, "drives_gate", None)
    return bool(pulser.can_trigger and drives_gate is not None and drives_gate(gate))


def simulated_bench_file() -> Path:
    """Path of the embedded simulated bench file."""
    return Path(str(resources.files("hil").joinpath("benches/simulated.yaml")))


# --------------------------------------------------------------------------------------
# opening
# --------------------------------------------------------------------------------------
def _simulated_instruments(spec: BenchSpec):
    from simulated_bench.instruments import SimulatedInstruments, build_arrays

    w = spec.wiring
    inputs = {k: w[k] for k in ("read", "pulse", "gate")}
    base = spec.source.parent if spec.source is not None else None
    addresser = w["addresser"]
    options = {addresser: spec.instruments[addresser].plugin.emulator_options(w)}
    emulators = {n: i.plugin.emulator_class() for n, i in spec.instruments.items()}
    arrays = build_arrays(spec.sim_chip(), base)
    for name, codes in spec.fault_files.items():  # loaded and checked with the bench file
        arrays[name].set_fault_codes(codes)
    return SimulatedInstruments(arrays, emulators, inputs, base, options)


def served_simulation(spec: BenchSpec, ports: Mapping[str, int] | None = None):
    """Build a simulated bench's chip and emulators and serve them on 127.0.0.1: (sim, served)."""
    from simulated_bench.instruments.server import serve_instruments

    sim = _simulated_instruments(spec)
    return sim, serve_instruments(sim, ports)


def served_bench_data(spec: BenchSpec, served) -> dict:
    """A bench description (no chip section) whose addresses are the served instruments.

    Opening it drives the served chip exactly as a lab script drives hardware; its
    ``device`` section says which chip that is.
    """
    raw = {k: v for k, v in spec.raw.items() if k != "chip"}
    raw["name"] = f"{spec.name}-served"
    raw["device"] = spec.device.as_dict()
    raw["instruments"] = {}
    for name, inst in spec.instruments.items():
        entry = {**dict(spec.raw["instruments"][name]), "address": served.address(name, inst.plugin.kind)}
        if inst.plugin.kind == "visa":
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
        plugin = inst.plugin
        if transport == "socket":
            address = servers.address(name, plugin.kind)
            options = {} if plugin.kind == "serial" else {"visa_library": "@py"}
            station.add(name, plugin.open(address, inst.timeout, options))
        elif plugin.kind == "serial":
            url = register_serial_endpoint(name, sim.emulators[name])
            station.on_cleanup(lambda url=url: unregister_serial_endpoint(url))
            station.add(name, plugin.open(url, inst.timeout, {}))
        else:
            station.add(name, plugin.open(EmulatorAdapter(sim.emulators[name]), inst.timeout, {}))
    return sim


def _connect_real(spec: BenchSpec, station: Station) -> None:
    for name, inst in spec.instruments.items():
        try:
            station.add(name, inst.plugin.open(inst.address, inst.timeout, inst.options))
        except (*TRANSPORT_ERRORS, VisaError, ValueError) as exc:  # unreachable, no VISA backend, bad resource
            raise BenchConnectionError(f"cannot open {station.describe(name)}: {exc!s}") from exc


def _identify(spec: BenchSpec, station: Station) -> None:
    """Every instrument must identify as the model its bench-file entry names; nothing is sourced before."""
    for name, inst in spec.instruments.items():
        with station.guard(name, "identifying itself (*IDN?)"):
            identity = inst.plugin.identify(station.drivers[name])
        if not inst.plugin.matches(identity):
            actual = identify_model(identity)
            fix = (f"; it is a {actual}: set instruments.{name}.model to {actual}" if actual
                   else "; no registered plug-in knows this instrument")
            raise InstrumentIdentityError(f"instruments.{name}: the instrument at {inst.address} identifies as "
                                          f"{identity.idn!r}, not a {inst.model}{fix}")
        used = {ep.partition(".")[2] for key, ep in spec.wiring.items()
                if isinstance(ep, str) and ep.partition(".")[0] == name and ep.partition(".")[2]}
        problem = inst.plugin.adopt(station.drivers[name], identity, used)
        if problem:
            raise InstrumentIdentityError(f"instruments.{name}: {problem}")
        station.identities[name] = identity


def _check_device(spec: BenchSpec, arrays: Mapping[str, tuple[int, int]]) -> None:
    declared = spec.device.array_shapes()
    if declared and dict(declared) != {k: tuple(v) for k, v in arrays.items()}:
        have = ", ".join(f"{k}:{r}x{c}" for k, (r, c) in arrays.items())
        want = ", ".join(f"{k}:{r}x{c}" for k, (r, c) in declared.items())
        raise InstrumentIdentityError(f"device.arrays: the bench file says {want} but the addresser "
                                      f"{spec.wiring['addresser']} reaches {have}")


def _split(endpoint: str) -> tuple[str, str]:
    name, _, ch = endpoint.partition(".")
    return name, ch


def _compose(spec: BenchSpec, station: Station, sim) -> Bench:
    w = spec.wiring
    addresser = w["addresser"]
    plugin = station.plugin(addresser)
    arrays = plugin.arrays(station, addresser, w)
    _check_device(spec, arrays)
    selector = plugin.selector(station, addresser, w)
    vmm = plugin.vmm(station, addresser)
    read = station.source(*_split(w["read"]))
    if w["sense"] == "read":
        reader: Reader = ScanReader(read, selector)
    else:
        reader = station.plugin(w["sense"]).sense(station, w["sense"], read, selector)
    gate_name, gate_ch = _split(w["gate"])
    gate = station.plugin(gate_name).gate(station, gate_name, gate_ch)
    pulse_name, pulse_ch = _split(w["pulse"])
    pulser = station.plugin(pulse_name).pulser(station, pulse_name, pulse_ch)
    instruments = {}
    for name, inst in spec.instruments.items():
        ident = station.identities.get(name)
        instruments[name] = {"model": inst.model, "address": inst.address,
                             **({"make": ident.make, "idn_model": ident.model, "serial": ident.serial,
                                 "firmware": ident.firmware, "idn": ident.idn} if ident else {})}
    metadata = {"bench_file": spec.to_yaml(), "bench_file_sha256": spec.sha256, "bench_name": spec.name,
                "simulated": spec.simulated, "instruments": instruments, "device": spec.device.as_dict(),
                "chip_id": spec.device.chip_id, "device_model": spec.device.model, "sim": sim}
    if w.get("pulse_trigger") and not _can_sequence(selector, gate, pulser):
        raise BenchFileError(f"bench file {spec.source or spec.name}: wiring.pulse_trigger: {addresser} cannot "
                             f"sequence pulses on {w['pulse']} (an AB64 board, its own word-line supply and an "
                             f"81160A or B2900 pulser can)")
    first = next(iter(arrays))
    rows, cols = arrays[first]
    bench = Bench(selector, gate, reader, pulser, spec.limits, rows, cols, vmm=vmm, name=spec.name,
                  metadata=metadata, arrays=arrays, station=station, read_source=read,
                  pulse_trigger=bool(w.get("pulse_trigger")))
    bench.use_array(first)
    return bench


def build_bench(spec: BenchSpec, transport: str = "inprocess") -> Bench:
    """Open the instruments of a validated bench file and compose its :class:`Bench`.

    Order: lock the bench (real benches), open every instrument, check every
    identification, put every instrument in its safe state (and say so if the previous
    session ended uncleanly), then compose the roles.
    """
    if transport not in ("inprocess", "socket"):
        raise ValueError(f"transport must be 'inprocess' or 'socket', got {transport!r}")
    station = Station(spec)
    # a simulated bench opened here builds its own private instruments: nothing to share
    lock = None if spec.simulated else BenchLock(spec.sha256[:20], spec.name).acquire()
    identified = False
    try:
        if spec.simulated:
            sim = _connect_simulated(spec, station, transport)
        else:
            sim = None
            _connect_real(spec, station)
        _identify(spec, station)
        identified = True  # from here on every instrument is the model its driver speaks to
        station.outputs_off()
        bench = _compose(spec, station, sim)
    except BaseException:
        if identified:
            with contextlib.suppress(Exception):
                station.outputs_off()
        station.close()
        if lock is not None:
            lock.release()
        raise
    bench._closers.append(station.close)
    if lock is not None:
        bench._closers.append(lock.release)
        if lock.unclean is not None:
            bench.unclean_previous = lock.unclean
            message = (f"bench {spec.name!r}: the previous session ({lock.unclean.describe()}) ended without "
                       f"closing the bench; every instrument was put in its safe state before this one started")
            warnings.warn(message, UncleanShutdownWarning, stacklevel=3)
    _close_at_exit(bench)
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

    Raises :class:`~hil.benchfile.BenchFileError` (bad file), :class:`BenchConnectionError`
    (unreachable or silent instrument), :class:`InstrumentIdentityError` (wrong instrument
    at an address) and :class:`~hil.benchlock.BenchBusyError` (bench open elsewhere).
    """
    overrides: dict[str, Any] = {}
    if chip:
        overrides["chip"] = dict(chip)
    if limits:
        overrides["limits"] = dict(limits)
    spec = load_bench_file(simulated_bench_file() if path is None else path, overrides or None)
    return build_bench(spec, transport)


__all__ = ["Bench", "open_bench", "build_bench", "BenchConnectionError", "InstrumentIdentityError", "BenchBusyError",
           "BenchFileError", "UncleanShutdownWarning", "Station", "simulated_bench_file", "parse_bench",
           "load_bench_file", "served_simulation", "served_bench_data"]
