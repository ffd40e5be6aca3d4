"""A simulated bench served on 127.0.0.1 for interruption tests and the fault-injection benchmark.

:class:`ServedBench` serves the emulators of a simulated bench file in this process
(the same servers ``hil sim serve`` starts, on ephemeral ports) and writes the bench
file that opens them, so ``hil program --bench served.yaml`` in a subprocess drives the
served chip over TCP exactly as a lab script drives hardware. The chip persists across
commands (unlike the in-process embedded bench), and this process can look at it:
which outputs are on, and every pulse the chip received (the ground truth a run file's
pulse records are compared with).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import yaml

from hil.bench import served_bench_data, served_simulation
from hil.benchfile import load_bench_file

REPO = Path(__file__).resolve().parents[1]


class ServedBench:
    """Emulators of ``bench_file`` served on loopback ports; ``path`` is the bench file that opens them."""

    def __init__(self, bench_file: str | os.PathLike, out_dir: str | os.PathLike):
        self.spec = load_bench_file(bench_file)
        self.sim, self.served = served_simulation(self.spec)
        self.path = Path(out_dir) / "served.yaml"
        self.path.write_text(yaml.safe_dump(served_bench_data(self.spec, self.served), sort_keys=False))
        self.array = next(iter(self.sim.arrays.values()))
        self.delivered = np.zeros(self.array.shape, np.int64)  # pulses each cell received
        self._lock = threading.Lock()
        self._wrap_pulses()

    def _wrap_pulses(self) -> None:
        arr, real = self.array, self.array.apply_lines

        def counted(v_wl, v_bl, v_sl, width):
            v_wl, v_bl, v_sl = (np.broadcast_to(np.asarray(v, float), (n,)) for v, n in
                                ((v_wl, arr.shape[0]), (v_bl, arr.shape[1]), (v_sl, arr.shape[0])))
            hit = (v_wl[:, None] > 0) & (v_bl[None, :] != v_sl[:, None])
            with self._lock:
                self.delivered += hit
            return real(v_wl, v_bl, v_sl, width)

        arr.apply_lines = counted

    def outputs_on(self) -> list[str]:
        """Instruments whose outputs are on (source output enabled, pulser channel on, board routed or WL > 0)."""
        on = []
        for name, emu in self.sim.emulators.items():
            model = self.spec.instruments[name].model
            if model == "keithley2450" and emu.output:
                on.append(f"{name} output on at {emu.v_level:g} V")
            elif model == "keysight81160a":
                on += [f"{name} channel {k} on" for k, ch in emu.channels.items() if ch.output]
            elif model == "rram-hil-ab64" and (emu.route != "OFF" or emu.wl != 0):
                on.append(f"{name} route {emu.route}, word line {emu.wl:g} V")
        return on

    def close(self) -> None:
        self.served.close()
        self.sim.outputs_off()


def hil_command(*args: str) -> list[str]:
    """``python -m hil ARGS`` as an argument list."""
    return [sys.executable, "-m", "hil", *map(str, args)]


def start(cmd: list[str]) -> subprocess.Popen:
    """Start a ``hil`` command from the repository root (its own session, so signals reach it alone)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
