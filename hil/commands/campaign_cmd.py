"""``hil campaign CAMPAIGN.yaml`` and ``hil bench-worker``: protocol steps on many chips over many benches.

Campaign steps call the protocols through the small adapters below: each runs one
protocol on the chip with its run file at ``out`` and returns a JSON-able summary.
"""
from __future__ import annotations

import dataclasses
import os
import sys

import click

from .sweep_cmd import interrupted_exit, scheduler_option


def _params(preset, params: dict, step: str):
    fields = {f.name for f in dataclasses.fields(preset)}
    unknown = set(params) - fields
    if unknown:
        raise ValueError(f"{step}: unknown parameter(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(fields))}")
    return dataclasses.replace(preset, **params)


def scan_step(bench, out: str, chip_id: str, **params) -> dict:
    """Stuck-device scan (protocols.scan.scan); the fault map is saved next to the run file."""
    import numpy as np

    from hil.faultmap import CODE_NAMES
    from protocols.ispp import device_model
    from protocols.scan import SCAN_PRESETS, STANFORD_SCAN, scan

    p = _params(SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN), params, "scan")
    res = scan(bench, p, out=out, chip_id=chip_id)
    fm_path = os.path.splitext(out)[0] + "_faultmap.h5"
    res.faultmap.save(fm_path)
    counts = {name: int(np.count_nonzero(res.faultmap.codes == code)) for code, name in CODE_NAMES.items()}
    return {**counts, "ops_per_cell": res.ops_per_cell, "faultmap": fm_path}


def read_step(bench, out: str, chip_id: str, **params) -> dict:
    """Conductance map (protocols.read.read_all)."""
    import numpy as np

    from protocols.read import ReadParams, read_all

    res = read_all(bench, _params(ReadParams(), params, "read"), out=out, chip_id=chip_id)
    return {"g_median_S": float(np.nanmedian(res.g)), "g_max_S": float(np.nanmax(res.g)), "n_reads": res.n_reads}


def form_step(bench, out: str, chip_id: str, **params) -> dict:
    """Forming ramp (protocols.forming.form)."""
    from protocols.forming import FORM_PRESETS, FormParams, form
    from protocols.ispp import device_model

    res = form(bench, _params(FORM_PRESETS.get(device_model(bench), FormParams()), params, "form"), out=out,
               chip_id=chip_id)
    return {"formed": int(res.formed.sum()), "never_formed": len(res.never_formed), "pulses": res.pulses}


def program_step(bench, out: str, chip_id: str, g_target: float, **params) -> dict:
    """Write-and-verify every cell to ``g_target`` siemens (protocols.ispp.program)."""
    import numpy as np

    from protocols.ispp import preset_for, program

    res = program(bench, np.full((bench.rows, bench.cols), float(g_target)),
                  _params(preset_for(bench), params, "program"), out=out, chip_id=chip_id, keep_log=False)
    return {**res.counts(), **res.summary()}


#: step name in a campaign file -> the function a bench worker calls
STEPS = {name: f"{__name__}:{name}_step" for name in ("scan", "read", "form", "program")}


@click.command("campaign")
@click.argument("campaign_path", metavar="CAMPAIGN.yaml", type=click.Path(exists=True, dir_okay=False))
@scheduler_option
@click.option("--progress/--no-progress", default=True, show_default=True)
def campaign_command(campaign_path, scheduler, progress) -> None:
    """Run the protocol steps of CAMPAIGN.yaml on every chip not yet finished.

    With --scheduler local the campaign's 'benches' are simulated bench workers on this
    machine; with tcp://HOST:PORT the benches are the ``hil bench-worker`` processes
    connected to that scheduler. Chips left unfinished (a bench that died) are listed;
    running the same command again finishes only those.
    """
    from distributed import Client

    from hil.sweep import SpecError
    from hil.sweep.campaign import CampaignSpec, local_benches, run_campaign
    from hil.sweep.cluster import LOCAL, SERIAL, check_scheduler

    try:
        check_scheduler(scheduler)
        if scheduler == SERIAL:
            raise ValueError("a campaign runs on bench workers: use --scheduler local or tcp://HOST:PORT")
        spec = CampaignSpec.load(campaign_path, STEPS)
    except (SpecError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        if scheduler == LOCAL:
            with local_benches(spec.benches) as cluster, Client(cluster) as client:
                click.echo(f"{len(spec.benches)} simulated bench worker(s) on this machine; dashboard "
                           f"{cluster.dashboard_link}")
                report = run_campaign(spec, client, progress=progress, log=click.echo)
        else:
            with Client(scheduler, timeout="20s") as client:
                click.echo(f"Dask scheduler {scheduler}; dashboard {client.dashboard_link}")
                report = run_campaign(spec, client, progress=progress, log=click.echo)
    except KeyboardInterrupt as exc:
        interrupted_exit(exc, "interrupted: finished steps are kept; run the same command again to continue")
    makespan, total = report.bench_time()
    click.echo(f"{len(report.chips) - len(report.unfinished)}/{len(report.chips)} chips complete in "
               f"{report.wall_s:.1f} s; bench time {makespan:.3g} s on the busiest bench, {total:.3g} s summed "
               f"over benches -> {os.path.join(spec.out, 'campaign.json')}")
    if report.unfinished:
        click.echo(f"unfinished: {', '.join(report.unfinished)} (run the same command again to finish only these)")
        sys.exit(1)


@click.command("bench-worker")
@click.option("--scheduler", required=True, help="tcp://HOST:PORT of the campaign's Dask scheduler")
@click.option("--name", "bench_name", required=True, help="the bench's name (campaign files pin chips to it)")
@click.option("--bench", "bench_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="bench file of the bench wired to this computer (default: the embedded simulated bench)")
def bench_worker_command(scheduler, bench_name, bench_path) -> None:
    """Offer the bench wired to this computer to a campaign's Dask scheduler (until Ctrl-C)."""
    import asyncio

    from hil.sweep.campaign import BenchNanny
    from hil.sweep.cluster import check_scheduler

    try:
        check_scheduler(scheduler)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc

    async def serve() -> None:
        click.echo(f"bench {bench_name}: connecting to {scheduler} ...")
        async with BenchNanny(scheduler, bench_name=bench_name,
                              bench_file=os.path.abspath(bench_path) if bench_path else None) as nanny:
            click.echo(f"bench {bench_name} ({bench_path or 'simulated'}) serving {scheduler} as {nanny.worker_address}")
            await nanny.finished()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


def register(group: click.Group) -> None:
    group.add_command(campaign_command)
    group.add_command(bench_worker_command)
