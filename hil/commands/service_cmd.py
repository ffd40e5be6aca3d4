"""``hil service WORKFLOW.yaml``: scan, map, program, verify, then serve a stream while detecting and repairing."""
from __future__ import annotations

from pathlib import Path

import click

from .view_cmd import view_option, viewing


@click.command("service")
@click.argument("workflow", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="run file (HDF5); re-running with it resumes, fault-map versions go to OUT.faults.h5")
@click.option("--replay", is_flag=True, help="replay a finished run and check every decision against it")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="figure of the run (default: OUT.png)")
@click.option("--progress/--no-progress", default=True, show_default=True)
@view_option
def service_command(workflow: str, out: str, replay: bool, png: str | None, progress: bool, view: bool) -> None:
    """Keep a mapped matrix (or the digits network) correct in service on the simulated chip."""
    from hil.service.report import service_figure
    from hil.service.workflow import WorkflowError, load_workflow
    from protocols.service import ReplayMismatch, run_workflow, timeline

    try:
        wf, text = load_workflow(workflow)
    except WorkflowError as exc:
        raise click.ClickException(f"{workflow}: {exc}") from None
    try:
        with viewing(out, view and not replay):
            summary = run_workflow(wf, text, out, progress=progress, replay=replay, echo=click.echo)
    except ReplayMismatch as exc:
        raise click.ClickException(f"replay differs: {exc}") from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if replay:
        click.echo(f"replayed {summary['replayed_decisions']} decisions: identical to {out}")
        return
    rows, events, _ = timeline(out)
    label = "test accuracy" if wf.mapping.target == "digits" else "1 - cos (true conductances)"
    png = png or str(Path(out).with_suffix(".png"))
    service_figure(rows["chip_time_h"], rows["fidelity"], events, png, fidelity_label=label, title=wf.name,
                   log_scale=wf.mapping.target != "digits")
    click.echo(f"{summary['status']}: {summary['alarms']} alarms, {summary['repairs']} repairs, "
               f"{summary['devices_reprogrammed']} of {summary['mapped_devices']} devices re-programmed, "
               f"{summary['faults_found']} new stuck devices found, {summary['fault_map_versions']} fault-map "
               f"versions; figure {png}")


def register(group: click.Group) -> None:
    group.add_command(service_command)
