"""The ``hil`` command line.

Each sub-command lives in its own module under :mod:`hil.commands`; this file only
assembles them, so adding a command touches one line here. It also owns what every
command shares: a user error (bench file, limit, resume mismatch, bad input,
unreachable instrument) ends in one or two lines and a non-zero exit, never a
traceback (``hil --debug ...`` shows it); SIGTERM and SIGHUP stop a command as Ctrl-C does.
"""
from __future__ import annotations

import importlib
import os
import signal
import threading

import click

#: modules under hil.commands that each define ``register(group)``
COMMAND_MODULES: tuple[str, ...] = (
    "demo_cmd",
    "sim_cmd",
    "scan_cmd",
    "faults_cmd",
    "faults_versions_cmd",
    "service_cmd",
    "program_cmd",
    "map_cmd",
    "matrix_cmd",
    "sweep_cmd",
    "campaign_cmd",
    "view_cmd",
    "report_cmd",
)

#: exit code of a command stopped by a signal: 128 + the signal number, as a shell reports it
_SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user (or the bench) must change something, not a bug."""
    from drivers.errors import InstrumentError
    from hil.bench import BenchConnectionError
    from hil.benchfile import BenchFileError
    from hil.roles import LimitError
    from hil.runstore import RunMismatch

    return (BenchFileError, LimitError, RunMismatch, BenchConnectionError, InstrumentError, ValueError, OSError,
            IndexError, KeyError, RuntimeError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"unknown name {text}"
    notes = " ".join(" ".join(n.split()) for n in getattr(exc, "__notes__", ()))
    if len(notes) > 200:
        notes = notes[:197] + "..."
    return text + (f"\n{notes}" if notes else "")


def _stop_like_ctrl_c(signum, frame) -> None:
    from protocols.runner import Interrupted

    raise Interrupted(signal.Signals(signum).name)


class HilGroup(click.Group):
    """The command group: turns user errors into short messages (``--debug``: the traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt as exc:
            if _debug(ctx):
                raise
            name = getattr(exc, "signame", "SIGINT")
            click.echo(f"Error: interrupted by {name}: outputs switched off, any run file marked interrupted; "
                       "run the same command again to resume", err=True)
            ctx.exit(_SIGNAL_EXIT.get(name, 130))
        except _user_errors() as exc:
            if _debug(ctx):
                raise
            raise click.ClickException(_one_line(exc)) from None


def _debug(ctx: click.Context) -> bool:
    return bool((ctx.obj or {}).get("debug")) or os.environ.get("HIL_DEBUG", "") not in ("", "0")


@click.group(cls=HilGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rram-hil")
@click.option("--debug", is_flag=True, default=False, help="show the Python traceback of an error")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """rram-hil: hardware-in-the-loop work on 1T1R ReRAM crossbar chips."""
    ctx.ensure_object(dict)["debug"] = debug
    if threading.current_thread() is threading.main_thread():
        # SIGINT too: a command started with SIGINT ignored (a background job) still stops on it
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                sig = getattr(signal, name)
                old = signal.signal(sig, _stop_like_ctrl_c)
                ctx.call_on_close(lambda sig=sig, old=old: signal.signal(sig, old))


for _name in COMMAND_MODULES:
    importlib.import_module(f"hil.commands.{_name}").register(cli)


def main() -> None:  # console-script entry point
    cli()


if __name__ == "__main__":
    main()
