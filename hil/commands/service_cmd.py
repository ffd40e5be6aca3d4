"""``hil service WORKFLOW.yaml``: scan, map, program, verify, then serve a stream while detecting and repairing."""
from __future__ import annotations

from pathlib import Path

import click

from .inputs import overwrite_option
from .view_cmd import view_option, viewing


@click.command("service")
@click.argument("workflow", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="run file (HDF5); re-running with it resumes, fault-map versions go to OUT.faults.h5")
@click.option("--bench", "bench_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="bench file (default: the workflow's bench:)")
@click.option("--transport", type=click.Choice(["inprocess", "socket"]), default="inprocess", show_default=True,
              help="simulated benches: instruments in this process, or served on 127.0.0.1 and reached over "
                   "VISA / socket like real ones")
@click.option("--replay", is_flag=True, help="replay a finished run on a fresh simulated bench and check every decision")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="figure of the run (default: OUT.png)")
@click.option("--progress/--no-progress", default=True, show_default=True)
@overwrite_option
@view_option
def service_command(workflow: str, out: str, bench_path: str | None, transport: str, replay: bool, png: str | None,
                    progress: bool, overwrite: bool, view: bool) -> None:
    """Keep a mapped matrix (or the digits network) correct in service on a bench.

    Every scan, write, read and VMM goes through the bench file's instruments; on a
    simulated bench the chip ages (the bench file's chip: aging:) and time is
    fast-forwarded, on a real bench time is real. Interrupted (Ctrl-C, SIGTERM), the
    outputs go off and the same command resumes the run (after kill -9 too); an edited
    workflow is refused, --overwrite starts over. `hil report OUT --out OUT.html` draws
    a run as it is, finished or not.
    """
    import hil
    from hil.service.report import service_figure
    from hil.service.workflow import WorkflowError, load_workflow
    from protocols.service import ReplayMismatch, run_service, timeline

    try:
        wf, text = load_workflow(workflow)
    except WorkflowError as exc:
        raise click.ClickException(f"{workflow}: {exc}") from None
    png = png or str(Path(out).with_suffix(".png"))
    for option, path in (("--out", out), ("--png", png)):  # found now, not after hours of service
        if not Path(path).resolve().parent.is_dir():
            raise click.ClickException(f"{option} {path}: the folder {Path(path).resolve().parent} does not exist")
    bench_path = bench_path or wf.bench
    if bench_path is None:
        raise click.ClickException(f"{workflow}: no bench: give --bench BENCH.yaml or bench: in the workflow "
                                   "(examples/service/aging_bench.yaml is a simulated bench whose chip ages)")
    if not Path(bench_path).is_file():
        raise click.ClickException(f"{workflow}: bench file {bench_path} not found")
    try:
        with viewing(out, view and not replay), hil.open_bench(bench_path, transport=transport) as bench:
            summary = run_service(bench, wf, text, out, replay=replay, progress=progress and not replay,
                                  echo=click.echo, overwrite=overwrite)
    except ReplayMismatch as exc:
        raise click.ClickException(f"replay differs: {exc}") from None
    if replay:
        click.echo(f"replayed {summary['replayed_decisions']} decisions: identical to {out}")
        return
    rows, events, _ = timeline(out)
    if len(rows) and rows["fidelity"].size and not all(f != f for f in rows["fidelity"]):
        label, fid = ("test accuracy" if wf.mapping.target == "digits" else "1 - cos (true conductances)",
                      rows["fidelity"])
    else:  # a real bench has no ground truth: the host's read-back estimate
        label, fid = "1 - cos (host's read-back)", rows["fidelity_reference"]
    service_figure(rows["chip_time_h"], fid, events, png, fidelity_label=label, title=wf.name,
                   log_scale=wf.mapping.target != "digits")
    click.echo(f"complete: {summary['alarms']} alarms, {summary['repairs']} repairs, "
               # a device can be written more than once in a run: these are writes, not distinct devices
               f"{summary['devices_reprogrammed']} device writes on {summary['mapped_devices']} mapped devices, "
               f"{summary['faults_found']} new stuck devices found, {summary['fault_map_versions']} fault-map "
               f"versions; figure {png}")
    if "round_trips" in summary and not progress:  # with progress the runner has printed it
        click.echo(f"bench clock: {summary['round_trips']} round trips, {summary['bench_time_s']:.1f} s of "
                   "estimated bench time (every session of the run)")


def register(group: click.Group) -> None:
    group.add_command(service_command)
