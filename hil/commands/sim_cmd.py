"""``hil sim serve [BENCH_FILE]``: the simulated bench's instruments as TCP resources."""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click
import yaml

from ..bench import served_bench_data, served_simulation, simulated_bench_file
from ..benchfile import BenchFileError, load_bench_file


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def register(group: click.Group) -> None:
    @group.group("sim")
    def sim() -> None:
        """The simulated bench."""

    @sim.command("serve")
    @click.argument("bench_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--port", "base_port", type=click.IntRange(0, 65000), default=0, show_default=True,
                  help="first TCP port (instruments take consecutive ports); 0 = free ports")
    @click.option("--bench-out", type=click.Path(dir_okay=False, path_type=Path),
                  help="also write a bench file that opens the served instruments")
    def serve(bench_file: Path | None, base_port: int, bench_out: Path | None) -> None:
        """Serve the instruments of a simulated bench on 127.0.0.1 until interrupted.

        Prints NAME MODEL RESOURCE per instrument: VISA instruments as
        TCPIP0::127.0.0.1::PORT::SOCKET (pyvisa-py: "@py"), serial ones as pyserial
        socket://127.0.0.1:PORT URLs.
        """
        try:
            spec = load_bench_file(bench_file or simulated_bench_file())
        except BenchFileError as exc:
            raise click.ClickException(str(exc)) from None
        if not spec.simulated:
            raise click.ClickException(f"{bench_file} has no chip section: it is not a simulated bench")
        ports = {name: base_port + k for k, name in enumerate(spec.instruments)} if base_port else None
        try:
            sim, served = served_simulation(spec, ports)
        except OSError as exc:
            raise click.ClickException(f"cannot serve on 127.0.0.1: {exc}") from None
        try:
            if bench_out is not None:  # complete before the resources are announced
                tmp = bench_out.with_name(bench_out.name + ".tmp")
                tmp.write_text(yaml.safe_dump(served_bench_data(spec, served), sort_keys=False))
                tmp.replace(bench_out)
                click.echo(f"# bench file for these resources: {bench_out}", err=True)
            for name, inst in spec.instruments.items():
                click.echo(f"{name} {inst.model} {served.address(name, inst.info.kind)}")
            click.echo("# serving on 127.0.0.1; Ctrl-C to stop", err=True)
            sys.stdout.flush()
            signal.signal(signal.SIGTERM, _interrupt)  # a terminated server stops as cleanly as Ctrl-C
            threading.Event().wait()
        except KeyboardInterrupt:
            click.echo("# stopped", err=True)
        finally:
            served.close()
            sim.outputs_off()
