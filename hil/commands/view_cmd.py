"""``hil view RUN.h5``: the live view of a run file in the browser, and ``--view`` for long commands."""
from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
from typing import Iterator

import click
import numpy as np


def interpretation(path: str) -> dict:
    """What the view needs to know about the protocols (which the ``hil`` package may not import).

    Names of the ISPP status codes, and for a scan run the fault codes of the cells
    scanned so far (classified as ``hil scan`` classifies them).
    """
    from protocols.ispp import STATUS_NAMES

    def derive(snap):
        if snap.protocol != "scan" or "codes" in snap.cells:
            return {}
        from protocols.scan import ScanParams, classify

        try:
            p = ScanParams(**snap.attrs["parameters"]["params"])
        except (KeyError, TypeError, ValueError):
            return {}
        sets = [snap.cells[k] for k in sorted(snap.cells) if k.startswith("g_after_set_")]
        resets = [snap.cells[k] for k in sorted(snap.cells) if k.startswith("g_after_reset_")]
        if not sets or len(sets) != len(resets):
            return {}
        done = snap.done & np.all(np.isfinite(sets), axis=0) & np.all(np.isfinite(resets), axis=0)
        codes = np.full(snap.shape, -1, np.int8)
        if done.any():
            codes[done] = classify(np.stack(sets)[:, done], np.stack(resets)[:, done], p)
        return {"codes": codes}

    return {"code_names": {"status": STATUS_NAMES}, "derive": derive}


def _watch_stdin(stop) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        stop()


@click.command("view")
@click.argument("run_file", type=click.Path(dir_okay=False))
@click.option("--address", default="127.0.0.1", show_default=True,
              help="address to serve on; anything but loopback needs --network")
@click.option("--port", default=5006, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free)")
@click.option("--network", is_flag=True, default=False,
              help="serve on every interface (0.0.0.0 unless --address says otherwise), protected by a token")
@click.option("--token", default=None, help="token a browser must present (default with --network: a random one)")
@click.option("--until-stdin-closes", is_flag=True, default=False, hidden=True,
              help="stop when stdin closes (used by --view of the long commands)")
@click.option("--nice", "niceness", default=0, type=click.IntRange(0, 19), hidden=True,
              help="lower this process's CPU priority")
def view_command(run_file, address, port, network, token, until_stdin_closes, niceness) -> None:
    """Serve a live view of RUN_FILE (being written or finished) in the browser; read-only.

    The page shows the conductance map filling in, the cell codes, pulses per cell, the
    ISPP convergence curve, progress with an estimated end, the run's metadata and, for
    service runs, fidelity, alarms and repairs. The file need not exist yet.
    """
    from hil.view.server import ViewError, ViewServer, is_loopback

    if network and address == "127.0.0.1":
        address = "0.0.0.0"
    if not is_loopback(address) and not network:
        raise click.UsageError(f"--address {address} exposes the run to the network: add --network (and a --token)")
    if network and not token:
        token = secrets.token_urlsafe(16)
    if niceness:
        os.nice(niceness)
    try:
        srv = ViewServer(run_file, address=address, port=port, token=token, **interpretation(run_file))
    except ViewError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {address}:{port}: {exc.strerror or exc}") from None
    if until_stdin_closes:
        click.echo(srv.url)
        threading.Thread(target=_watch_stdin, args=(srv.stop,), daemon=True).start()
    else:
        click.echo(f"live view of {run_file} at {srv.url}  (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        srv.run()
    except KeyboardInterrupt:
        pass


#: add to a long command: ``@view_option`` and run its work inside ``with viewing(out, view):``
view_option = click.option("--view", "view", is_flag=True, default=False,
                           help="open a live view of the run file in the browser while the run goes on")


@contextlib.contextmanager
def viewing(run_file: str | None, enabled: bool) -> Iterator[None]:
    """Start ``hil view`` on ``run_file`` beside the command's run and print its address."""
    if not enabled or not run_file:
        if enabled:
            click.echo("--view needs a run file (--out / --run)", err=True)
        yield
        return
    from hil.view.launch import ViewProcess

    with ViewProcess(run_file) as vp:
        click.echo(f"live view: {vp.url}", err=True)
        yield
    click.echo(f"the live view closed with the run; `hil view {run_file}` shows the finished run", err=True)


def register(group: click.Group) -> None:
    group.add_command(view_command)
