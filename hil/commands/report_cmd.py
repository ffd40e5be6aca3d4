"""``hil report RUN.h5 --out report.html``: the run's figures as one self-contained HTML file."""
from __future__ import annotations

import click


@click.command("report")
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="HTML file to write")
def report_command(run_file, out) -> None:
    """Write the live view's figures of RUN_FILE, as it is now, into one HTML file (no network needed)."""
    from hil.view import NotARunFile, write_report

    from .view_cmd import interpretation

    try:
        write_report(run_file, out, **interpretation(run_file))
    except NotARunFile as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{run_file}: {exc}") from None
    click.echo(f"saved {out}")


def register(group: click.Group) -> None:
    group.add_command(report_command)
