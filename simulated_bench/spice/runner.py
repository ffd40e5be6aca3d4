"""Run netlists through spicelib (ngspice, or LTspice where installed) and read back only the needed traces."""
from __future__ import annotations

import shutil
import tempfile
import weakref
from itertools import count
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from spicelib import RawRead, SpiceEditor
from spicelib.sim.sim_runner import SimRunner
from spicelib.simulators.ltspice_simulator import LTspice
from spicelib.simulators.ngspice_simulator import NGspiceSimulator

from ..devices.base import FloatArray

SIMULATORS = {"ngspice": NGspiceSimulator, "ltspice": LTspice}


class SpiceError(RuntimeError):
    """A simulation that did not finish or wrote no usable results."""


def simulator_available(name: str = "ngspice") -> bool:
    """True when spicelib finds the named simulator's executable."""
    try:
        return bool(SIMULATORS[name].is_available())
    except KeyError:
        raise ValueError(f"unknown simulator {name!r}; choose one of {', '.join(SIMULATORS)}") from None


def ngspice_available() -> bool:
    return simulator_available("ngspice")


class SpiceRunner:
    """Runs netlist text with spicelib and returns the requested traces as arrays.

    Parameters
    ----------
    simulator : "ngspice" (default) or "ltspice".
    workdir : folder for netlists, raw and log files (default: a fresh temporary folder).
    timeout : seconds one run may take.
    keep_files : keep raw/log/netlist files after reading them (default: delete).
    """

    def __init__(self, simulator: str = "ngspice", workdir: str | Path | None = None, timeout: float = 900.0,
                 keep_files: bool = False):
        if not simulator_available(simulator):
            raise SpiceError(f"{simulator} is not installed (spicelib finds no executable)")
        self.simulator = simulator
        self.dialect = simulator
        self._own_dir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="rram_spice_") if workdir is None else workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keep_files = keep_files
        # a temporary folder of our own goes when the runner does, closed or not
        self._cleanup = (weakref.finalize(self, shutil.rmtree, str(self.workdir), True)
                         if self._own_dir and not keep_files else None)
        self._runner = SimRunner(simulator=SIMULATORS[simulator], output_folder=str(self.workdir), timeout=timeout)
        self._ids = count()

    def run(self, netlist: str, traces: Sequence[str], params: Mapping[str, float] | None = None,
            name: str = "run") -> dict[str, FloatArray]:
        """Simulate ``netlist`` (text) with ``.param`` values ``params`` changed; return ``{trace: wave}``.

        Waves are the whole analysis axis (one value for an operating point). Trace
        names follow the simulator (ngspice: ``v(node)``, ``i(vsource)``).
        """
        run_id = f"{name}_{next(self._ids)}"
        source = self.workdir / f"{run_id}_src.net"
        source.write_text(netlist)
        netlist_arg: SpiceEditor | str = str(source)
        if params:
            # only parameter edits need spicelib's editor (parsing a large crossbar costs seconds)
            netlist_arg = SpiceEditor(str(source))
            netlist_arg.set_parameters(**{k: float(v) for k, v in params.items()})
        raw_path, log_path = self._runner.run_now(netlist_arg, run_filename=f"{run_id}.net", exe_log=True)
        try:
            if raw_path is None or not Path(raw_path).exists():
                raise SpiceError(f"{self.simulator} wrote no results for {run_id}:\n{_tail(log_path)}")
            raw = RawRead(str(raw_path), traces_to_read=list(traces), dialect=self.dialect)
            names = {n.lower(): n for n in raw.get_trace_names()}
            missing = [t for t in traces if t.lower() not in names]
            if missing:
                raise SpiceError(f"traces {missing} not in {raw_path}:\n{_tail(log_path)}")
            return {t: np.asarray(raw.get_wave(names[t.lower()]), float) for t in traces}
        finally:
            if not self.keep_files:
                for f in (source, self.workdir / f"{run_id}.net", self.workdir / f"{run_id}.exe.log", raw_path, log_path):
                    if f is not None:
                        Path(f).unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the temporary work folder (only one this runner made)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> SpiceRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tail(log_path: str | Path | None, lines: int = 20) -> str:
    if log_path is None or not Path(log_path).exists():
        return "(no log)"
    return "\n".join(Path(log_path).read_text(errors="replace").splitlines()[-lines:])
