"""One run lifecycle for every protocol: region, pre-flight, run file, resume, rows, signals, clean-up.

A protocol is a :class:`Page`: it names itself and its parameters, declares its per-cell
fields and the drives its plan may use, and supplies the work of one row. :func:`execute`
does the rest, the same way for every protocol:

1. the region is validated (rows and columns on the chip, none repeated);
2. the whole plan (every amplitude, gate voltage and width the page may use) is checked
   against the bench limits before anything is sent; a refusal names the parameter;
3. the run file is created, or resumed when it holds the same run on the same chip,
   instruments and bench file (else refused, saying what differs); cells finished before
   an interruption are confirmed by a read before they count;
4. SIGINT, SIGTERM and SIGHUP stop the run before its next bench operation (a second
   signal stops it at once); every pulse is recorded before it is sent (write-ahead);
5. however the run ends, the progress bar closes, every output goes off and the run file
   is marked complete, interrupted or failed. A new run file refused before the first
   operation is removed, so it cannot block the corrected command.
"""
from __future__ import annotations

import abc
import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hil.bench import Bench, BenchConnectionError
from hil.progress import Progress
from hil.roles import LimitError, Limits
from hil.runstore import RunStore

#: every pulse a run sends, written before it is sent; ``delivered`` is set once the bench
#: returned from sending it (a record with delivered False is the last, possibly sent, pulse
#: of an interrupted session). ``amplitude`` is the magnitude, ``polarity`` +1 SET / -1 RESET.
PULSE_DTYPE = np.dtype([("session", "i2"), ("phase", "S12"), ("pass", "i2"), ("iteration", "i4"),
                        ("row", "i4"), ("col", "i4"), ("polarity", "i1"), ("amplitude", "f4"), ("gate", "f4"),
                        ("width", "f4"), ("g_before", "f8"), ("delivered", "?")])
#: every on-instrument write-and-verify call (:meth:`hil.bench.Bench.tune_row`), one record per cell,
#: written before the call: the instrument may send that cell up to ``max_pulses`` pulses from the
#: run's ladders. ``returned`` is set once the call came back and its pulses (known only then, from
#: the instrument's log) are in the pulse table; a record with returned False is a call an
#: interruption cut short: its pulses are not in the pulse table, at most ``max_pulses`` were sent.
TUNE_CALL_DTYPE = np.dtype([("session", "i2"), ("phase", "S12"), ("pass", "i2"), ("row", "i4"), ("col", "i4"),
                            ("max_pulses", "i4"), ("returned", "?")])


class PlanError(LimitError):
    """A protocol's plan reaches beyond the bench limits; raised before anything is sent."""


class RegionError(ValueError):
    """Rows or columns that are not a region of this chip (outside it, repeated, empty)."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT, SIGTERM or SIGHUP (outputs off, run file marked interrupted)."""

    def __init__(self, signame: str = "SIGINT"):
        super().__init__(signame)
        self.signame = signame

    def __str__(self) -> str:
        return f"interrupted by {self.signame}"


def device_model(bench: Bench) -> str:
    """The device model the bench file's ``chip`` section names (``stanford_gap`` when it names none)."""
    name = bench.metadata.get("device_model")
    if name is None and bench.metadata.get("bench_file"):
        import yaml

        chip = (yaml.safe_load(bench.metadata["bench_file"]) or {}).get("chip") or {}
        name = chip.get("device_model")
    return str(name or "stanford_gap")


# --- region and plan ------------------------------------------------------------------------------
def _indices(idx: Any, n: int, what: str) -> NDArray[np.intp]:
    if idx is None:
        return np.arange(n)
    arr = np.asarray(idx)
    if arr.ndim != 1 or arr.size == 0:
        raise RegionError(f"{what} must be a non-empty list of indices, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.number) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise RegionError(f"{what} must be whole numbers")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise RegionError(f"{what} {bad[0]} is outside the chip's 0..{n - 1}")
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise RegionError(f"{what} {uniq[counts > 1][0]} is given {counts.max()} times: each line may appear once")
    return arr.astype(np.intp)


def region(bench: Bench, rows: Sequence[int] | None, cols: Sequence[int] | None) -> tuple[NDArray, NDArray]:
    """Row and column indices of a region of the chip (None: all), validated."""
    return _indices(rows, bench.rows, "row"), _indices(cols, bench.cols, "column")


@dataclass(frozen=True)
class Drive:
    """What one parameter of a plan may ask of the bench.

    ``amplitudes``: line voltages (V; sign = polarity); ``gates``: word-line voltages (V);
    ``widths``: pulse widths (s), empty for reads. ``param`` names the parameter a user
    changes to bring it within the limits.
    """

    param: str
    amplitudes: ArrayLike = ()
    gates: ArrayLike = ()
    widths: ArrayLike = ()


def check_plan(limits: Limits, drives: Iterable[Drive]) -> None:
    """Refuse a plan any of whose drives reaches beyond ``limits`` (raises :class:`PlanError`)."""
    for d in drives:
        for values, what in ((d.amplitudes, "line voltage"), (d.gates, "gate voltage"), (d.widths, "pulse width")):
            v = np.asarray(values, dtype=float).ravel()
            if v.size and not np.all(np.isfinite(v)):
                raise PlanError(f"{d.param}: {what} is not a finite number")
        a = np.abs(np.asarray(d.amplitudes, dtype=float).ravel())
        g = np.abs(np.asarray(d.gates, dtype=float).ravel())
        w = np.asarray(d.widths, dtype=float).ravel()
        if a.size and a.max() > limits.v_line_max:
            raise PlanError(f"{d.param} reaches {a.max():g} V on a line, above the bench limit v_line_max = "
                            f"{limits.v_line_max:g} V: lower {d.param}")
        if g.size and g.max() > limits.v_gate_max:
            raise PlanError(f"{d.param} reaches a gate voltage of {g.max():g} V, above the bench limit v_gate_max = "
                            f"{limits.v_gate_max:g} V: lower {d.param}")
        if w.size and w.max() > limits.pulse_width_max:
            raise PlanError(f"{d.param} asks for {w.max():g} s pulses, longer than the bench limit pulse_width_max = "
                            f"{limits.pulse_width_max:g} s: shorten {d.param}")
        if w.size and w.min() < limits.pulse_width_min:
            raise PlanError(f"{d.param} asks for {w.min():g} s pulses, shorter than the bench's pulse_width_min = "
                            f"{limits.pulse_width_min:g} s: lengthen {d.param}")


def check_instrument_ranges(bench: Bench, drives: Iterable[Drive]) -> None:
    """Refuse a plan that the wired instruments cannot deliver (their own ranges, e.g. the 81160A's
    amplitude floor or an SMU's shortest pulse), naming the parameter; :meth:`Bench.check_plan`."""
    for d in drives:
        pulses = np.asarray(d.widths, dtype=float).size > 0
        try:
            bench.check_plan(pulse_amplitudes=d.amplitudes if pulses else (), pulse_widths=d.widths,
                             gate_voltages=d.gates, read_voltages=() if pulses else d.amplitudes)
        except LimitError as exc:
            raise PlanError(f"{d.param}: {exc}") from None


def bench_identity(bench: Bench, chip_id: str = "") -> dict[str, Any]:
    """What a resumed run must find again: the chip id, every instrument's identification
    (``*IDN?``: make, model, serial, firmware) and the bench file's SHA-256 (from ``bench.identity``)."""
    ident = getattr(bench, "identity", None) or {}
    instruments = {name: str(entry.get("idn") or f"{entry.get('model', '')} {entry.get('serial', '')}".strip())
                   for name, entry in (ident.get("instruments") or {}).items()}
    return {"chip_id": chip_id or str(bench.metadata.get("chip_id", "")),
            "bench_sha256": str(ident.get("bench_file_sha256", "")), "instruments": instruments}


# --- signals -------------------------------------------------------------------------------------
_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
_state = {"depth": 0, "stop": None, "closing": False}


def _on_signal(signum, frame) -> None:
    name = signal.Signals(signum).name
    if _state["closing"]:
        _state["stop"] = _state["stop"] or name  # switching outputs off: let it finish, stop afterwards
        return
    if _state["stop"] is not None:
        raise Interrupted(name)  # second signal: stop now
    _state["stop"] = name


@contextlib.contextmanager
def _signals_stop_the_run() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    outer = _state["depth"] == 0
    old = {}
    if outer:
        _state.update(stop=None, closing=False)
        old = {s: signal.signal(s, _on_signal) for s in _SIGNALS}
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if outer:
            for s, h in old.items():
                signal.signal(s, h)
            _state.update(stop=None, closing=False)


def checkpoint() -> None:
    """Raise :class:`Interrupted` when a signal asked the run to stop."""
    if _state["stop"] is not None and not _state["closing"]:
        raise Interrupted(_state["stop"])


# --- the run -------------------------------------------------------------------------------------
class RunBench:
    """The bench as a page sees it inside a run.

    Every pulse is recorded in the run file (and flushed) before it is sent; a stop asked
    for by a signal is honoured before the next read or pulse. Everything else is the bench.
    """

    def __init__(self, bench: Bench, run: "Run"):
        self._bench, self._run = bench, run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bench, name)

    def read_row(self, row, cols, v_read, v_gate, n_avg=1):
        checkpoint()
        g = self._bench.read_row(row, cols, v_read, v_gate, n_avg)
        self._run.ops += 1
        self._run.reads += np.size(g)
        return g

    def vmm(self, v_in, v_gate):
        checkpoint()
        i_out = self._bench.vmm(v_in, v_gate)
        self._run.ops += 1
        self._run.reads += 1
        return i_out

    def pulse_row(self, row, cols, amplitude, width, v_gate, *, iteration: int = 0, g_before: ArrayLike = np.nan):
        checkpoint()
        span = self._run.intend(row, cols, amplitude, width, v_gate, iteration, g_before)
        self._bench.pulse_row(row, cols, amplitude, width, v_gate)
        self._run.ops += 1
        self._run.pulses += np.size(cols)
        self._run.sent(span)

    def pulse_groups(self, row, groups, *, iteration: int = 0, g_before: Sequence[ArrayLike] | None = None):
        """:meth:`Bench.pulse_groups` with every group recorded (one flush) before any is sent."""
        checkpoint()
        groups = list(groups)
        spans = [self._run.intend(row, cols, amplitude, width, gate, iteration,
                                  np.nan if g_before is None else g_before[k], flush=False)
                 for k, (cols, amplitude, width, gate) in enumerate(groups)]
        if self._run.store is not None:
            self._run.store.flush()
        self._bench.pulse_groups(row, groups)
        self._run.ops += len(groups)
        self._run.pulses += sum(np.size(cols) for cols, *_ in groups)
        if spans and spans[0] is not None:
            self._run.sent((spans[0][0], spans[-1][1]))  # the groups' records are consecutive


    def tune_row(self, row, cols, g_target, rule, max_pulses, start_set=None, start_reset=None, g_spread=None):
        """:meth:`Bench.tune_row` with its write-ahead: the call's intent per cell before, the pulses
        the instrument reports (delivered) after."""
        checkpoint()
        cols = np.asarray(cols, dtype=np.int64)
        span = self._run.intend_tune(row, cols, np.broadcast_to(max_pulses, cols.shape))
        res = self._bench.tune_row(row, cols, g_target, rule, max_pulses, start_set, start_reset, g_spread)
        self._run.ops += 1
        records = tune_pulse_records(self._run, row, cols, res)
        self._run.pulses += records.size
        self._run.reads += int(sum(np.size(log) for log in res.log))
        self._run.tuned(span, records)
        return res

    def sweep_row(self, row, cols, steps, v_read, read_gate, n_read=1):
        """:meth:`Bench.sweep_row` with every pulse recorded before the call (the instrument sends
        exactly the steps to every cell) and marked delivered after."""
        checkpoint()
        cols = np.asarray(cols, dtype=np.int64)
        spans = [self._run.intend(row, cols, a, w, g, k, np.nan) for k, (a, g, w) in enumerate(steps)]
        g = self._bench.sweep_row(row, cols, steps, v_read, read_gate, n_read)
        self._run.ops += 1
        self._run.pulses += cols.size * len(steps)
        self._run.reads += np.size(g)
        for span in spans:
            self._run.sent(span)
        return g


def tune_pulse_records(run: "Run", row: int, cols: ArrayLike, res) -> NDArray:
    """The pulses of an on-instrument tuning (:class:`~hil.roles.TuneResult`) as pulse records
    (delivered); ``iteration`` is the cell's read count in the call."""
    parts = []
    for col, log in zip(np.asarray(cols), res.log):
        k = np.nonzero(log["polarity"])[0]
        rec = np.zeros(k.size, PULSE_DTYPE)
        rec["session"], rec["phase"], rec["pass"], rec["iteration"] = run.session, run.phase.encode(), run.pass_no, k
        rec["row"], rec["col"], rec["polarity"] = int(row), int(col), log["polarity"][k]
        rec["amplitude"], rec["gate"], rec["width"], rec["g_before"] = (log["amplitude"][k], log["gate"][k],
                                                                        log["width"][k], log["g"][k])
        rec["delivered"] = True
        parts.append(rec)
    return np.concatenate(parts) if parts else np.zeros(0, PULSE_DTYPE)


class Run:
    """State of one protocol run that the runner shares with the page."""

    def __init__(self, bench: Bench, rows: NDArray, cols: NDArray, store: RunStore | None, bar: Progress):
        self.raw_bench = bench
        self.bench = RunBench(bench, self)
        self.rows, self.cols = rows, cols
        self.shape = (rows.size, cols.size)
        self.store = store
        self.bar = bar
        self.resumed = bool(store is not None and store.resumed)
        # the simulated bench's clock (round trips, estimated bench time); a real bench has none
        self._clock = getattr(getattr(bench, "sim", None), "clock", None)
        self._clock_start = self._clock.snapshot() if self._clock is not None else None
        self._clock_prior = ((int(store.attr("round_trips", 0)), float(store.attr("bench_time_s", 0.0)))
                             if store is not None and store.resumed else (0, 0.0))
        self.done = store.done.copy() if store is not None else np.zeros(self.shape, bool)
        self.phase = ""
        self.pass_no = 1
        self.ops = 0  # bench operations (row reads, row pulses) of this session
        self.pulses = 0  # cell pulses sent in this session (the progress bar shows them)
        self.reads = 0  # cell reads (a VMM counts one) in this session
        self.session = store.session if store is not None else 0

    def record_clock(self) -> dict | None:
        """Round trips and estimated bench time (s) of the whole run, every session, into the run
        file's attributes ``round_trips`` and ``bench_time_s`` (None without a bench clock)."""
        if self._clock is None:
            return None
        spent = self._clock.since(self._clock_start)
        total = {"round_trips": self._clock_prior[0] + int(spent["round_trips"]),
                 "bench_time_s": self._clock_prior[1] + float(spent["bench_time_s"])}
        if self.store is not None:
            for k, v in total.items():
                self.store.set_attr(k, v)
        return total

    # write-ahead pulse records ------------------------------------------------------------
    def intend(self, row, cols, amplitude, width, gate, iteration, g_before,
               flush: bool = True) -> tuple[int, int] | None:
        if self.store is None:
            return None
        cols = np.arange(self.raw_bench.cols) if cols is None else np.atleast_1d(np.asarray(cols, dtype=np.int64))
        rec = np.zeros(cols.size, PULSE_DTYPE)
        rec["session"], rec["phase"], rec["pass"], rec["iteration"] = self.session, self.phase.encode(), self.pass_no, iteration
        rec["row"], rec["col"] = int(row), cols
        rec["polarity"] = 1 if amplitude > 0 else -1
        rec["amplitude"], rec["gate"], rec["width"], rec["g_before"] = abs(amplitude), gate, width, g_before
        start = self.store.append("pulses", rec)
        if flush:
            self.store.flush()
        return start, start + rec.size

    def sent(self, span: tuple[int, int] | None) -> None:
        if span is not None:
            self.store.mark_field("pulses", span, "delivered", True)

    def intend_tune(self, row, cols, max_pulses) -> tuple[int, int] | None:
        if self.store is None:
            return None
        rec = np.zeros(len(cols), TUNE_CALL_DTYPE)
        rec["session"], rec["phase"], rec["pass"] = self.session, self.phase.encode(), self.pass_no
        rec["row"], rec["col"], rec["max_pulses"] = int(row), cols, max_pulses
        start = self.store.append("tunes", rec)
        self.store.flush()
        return start, start + rec.size

    def tuned(self, span: tuple[int, int] | None, pulses: NDArray) -> None:
        if span is None:
            return
        if pulses.size:
            self.store.append("pulses", pulses)
        self.store.mark_field("tunes", span, "returned", True)
        self.store.flush()

    # per-row results -----------------------------------------------------------------------
    def save_row(self, ri: int, done: bool | ArrayLike = True, **fields: ArrayLike) -> None:
        """Results of row ``ri`` (region index) into the run file; ``done`` per cell or for the row."""
        done = np.broadcast_to(np.asarray(done, dtype=bool), (self.shape[1],))
        self.done[ri] = done
        if self.store is not None:
            self.store.write_cells(np.full(self.shape[1], ri), np.arange(self.shape[1]), done=done, **fields)
            self.record_clock()
            self.store.flush()

    def reopen_rows(self, ris: Sequence[int]) -> None:
        """Mark whole rows (region indices) as not done."""
        mask = np.zeros(self.shape, bool)
        mask[list(ris)] = True
        self.reopen(mask)

    def reopen(self, cells: NDArray[np.bool_]) -> None:
        """Mark region cells as not done (their work is to be redone)."""
        self.done &= ~cells
        if self.store is not None and cells.any():
            r, c = np.nonzero(cells)
            self.store.write_cells(r, c, done=False)
            self.store.flush()


class Page(abc.ABC):
    """What a protocol supplies to :func:`execute`; override what the protocol needs.

    ``name`` and :meth:`params` go into the run file; :attr:`fields` are its per-cell
    datasets ``name -> (dtype, fill)``; :meth:`plan` lists every drive the run may use.
    """

    name = "protocol"
    label = "run"
    unit = "cell"  #: what the progress bar counts (one per region cell)
    fields: Mapping[str, tuple[Any, Any]] = {}

    def params(self, run_rows: NDArray, run_cols: NDArray) -> dict[str, Any]:
        return {}

    def plan(self) -> list[Drive]:
        return []

    def grid(self, bench: Bench, rows: Sequence[int] | None, cols: Sequence[int] | None) -> tuple[NDArray, NDArray]:
        """The run's rows and columns: the chip region ``rows`` x ``cols`` (validated). A page whose
        steps are not cells (e.g. the service loop's hours) returns its own index arrays."""
        return region(bench, rows, cols)

    def check(self, rows: NDArray, cols: NDArray) -> None:
        """Validate the page's inputs against the region (e.g. the targets' shape)."""

    def total(self, run: Run) -> int:
        return run.shape[0] * run.shape[1]

    def restore(self, run: Run) -> None:
        """Load the stored fields of a resumed run."""

    def confirm(self, run: Run) -> None:
        """Resumed run: re-read the cells the file calls finished; :meth:`Run.reopen` those that are not."""

    def start(self, run: Run) -> None:
        """Work before the first row (e.g. calibration)."""

    def row_needed(self, run: Run, ri: int) -> bool:
        return not run.done[ri].all()

    @abc.abstractmethod
    def row(self, run: Run, ri: int) -> None:
        """The page's work on region row ``ri``: its operations through ``run.bench``, its results by
        :meth:`Run.save_row`."""

    def next_pass(self, run: Run) -> bool:
        """After a pass over the rows: True to go over the rows again."""
        return False

    def finish(self, run: Run) -> Any:
        """The protocol's result (called once every row is done, outputs still on)."""
        return None


def _bench_switched_off_already(failure: BaseException | None) -> bool:
    """A bench connection error: the bench already tried every instrument once; do not wait on them again."""
    return isinstance(failure, BenchConnectionError)


def execute(bench: Bench, page: Page, rows: Sequence[int] | None = None, cols: Sequence[int] | None = None, *,
            out: str | os.PathLike | None = None, resume: bool = True, overwrite: bool = False, chip_id: str = "",
            bench_file: str | None = None, seed: int | None = None, progress: bool = False) -> Any:
    """Run ``page`` over the region ``rows`` x ``cols`` of ``bench`` (or the page's own grid, :meth:`Page.grid`;
    see the module docstring).

    With ``out`` everything streams to that HDF5 run file; the same call again resumes it.
    ``overwrite=True`` starts the file over (a deliberate restart). ``resume=False`` is the
    older spelling of ``overwrite=True``.
    """
    rows_idx, cols_idx = page.grid(bench, rows, cols)
    page.check(rows_idx, cols_idx)
    plan = list(page.plan())
    check_plan(bench.limits, plan)
    check_instrument_ranges(bench, plan)
    store: RunStore | None = None
    run: Run | None = None
    failure: BaseException | None = None
    result = None
    bar = Progress(0, page.label, enabled=progress, unit=page.unit)
    # signals stop the run from here on, the run file's set-up included: a file is never left
    # half set up or marked running by a SIGTERM
    with _signals_stop_the_run():
        try:
            if out is not None:
                meta = {k: v for k, v in bench.metadata.items() if k not in ("sim", "bench_file")}
                store = RunStore.open(out, page.name, page.params(rows_idx, cols_idx), (rows_idx.size, cols_idx.size),
                                      bench_file=bench_file if bench_file is not None
                                      else bench.metadata.get("bench_file", ""),
                                      bench_meta=meta, chip_id=chip_id or str(bench.metadata.get("chip_id", "")),
                                      identity=bench_identity(bench, chip_id), seed=seed,
                                      resume=resume and not overwrite)
                for name, (dtype, fill) in page.fields.items():
                    store.cell_field(name, dtype, fill)
                store.table("pulses", PULSE_DTYPE)
                store.table("tunes", TUNE_CALL_DTYPE)
                store.flush()
            run = Run(bench, rows_idx, cols_idx, store, bar)
            checkpoint()
            if run.resumed:
                page.restore(run)
                page.confirm(run)
            bar.reset(page.total(run), initial=int(run.done.sum()))
            page.start(run)
            while True:
                for ri in range(run.shape[0]):
                    if page.row_needed(run, ri):
                        page.row(run, ri)
                        # the session's totals so far, calibration and confirmation included
                        bar.update(pulses=run.pulses - bar.pulses, reads=run.reads - bar.reads)
                        bar.set_done(int(run.done.sum()))
                more = page.next_pass(run)
                bar.set_done(int(run.done.sum()))  # a verify pass re-opens cells: they are counted once more
                if not more:
                    break
            result = page.finish(run)
        except BaseException as exc:  # noqa: BLE001 - re-raised below after the outputs are off
            failure = exc
        outer = _state["depth"] == 1
        if outer:
            _state["closing"] = True  # a signal from here on is noted, not raised: the switching-off must finish
        bar.close()
        off_error = None
        if not _bench_switched_off_already(failure):
            try:
                bench.outputs_off()
            except Exception as exc:  # noqa: BLE001
                off_error = exc
        if failure is not None and off_error is not None:
            failure.add_note(f"switching the outputs off also failed: {off_error}")
        try:
            clock = run.record_clock() if run is not None else None
        except Exception as exc:  # noqa: BLE001 - the run's own outcome matters more than its clock
            clock = None
            if failure is not None:
                failure.add_note(f"recording the bench clock also failed: {exc}")
        if clock is not None and progress:
            print(f"bench clock: {clock['round_trips']} round trips, {clock['bench_time_s']:.1f} s of estimated "
                  "bench time", file=sys.stderr)
        if store is not None:
            if failure is not None and not store.resumed and (run is None or run.ops == 0):
                store.discard()  # nothing was sent: leave no file to block the corrected command
            elif failure is not None:
                store.finish("interrupted" if isinstance(failure, KeyboardInterrupt) else "failed")
            else:
                store.finish("failed" if off_error is not None else "complete")
        pending = _state["stop"] if outer and failure is None else None
    if failure is not None:
        raise failure
    if off_error is not None:
        raise off_error
    if pending is not None:
        raise Interrupted(pending)  # asked to stop during the last operation: the run is complete, stop now
    return result
