"""The live view and run reports: reading a run file while it is written, the page in headless Chromium,
the static report, and the token."""
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from browser import page_state, rendered_figures, wait_for
from hil.bench import simulated_bench_file
from hil.cli import cli
from hil.runstore import RunStore, read_run
from hil.view.figures import RunPage, convergence_curve, progress
from hil.view.launch import ViewProcess
from hil.view.reader import RunFollower, read_snapshot

REPO = Path(__file__).resolve().parents[1]
# Screenshots go to HIL_SHOTS when set (e.g. benchmarks/results to refresh the figures the notes
# show); otherwise to a temporary directory, so running the suite never dirties the work tree.
SHOTS = Path(os.environ.get("HIL_SHOTS") or tempfile.mkdtemp(prefix="hil-shots-"))
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _bench(tmp_path, n=16):
    spec = yaml.safe_load(simulated_bench_file().read_text())
    spec["chip"].update({"arrays": [{"name": "A", "rows": n, "cols": n}], "seed": 3,
                         "faults": {"kind": "random", "rate_off": 0.05, "rate_on": 0.05, "seed": 4}})
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def _program(tmp_path, out, rows, *extra):
    """`hil program` of rows 0..rows-1 of a 16x16 simulated chip, log-uniform targets 10 uS..1 mS."""
    targets = tmp_path / f"t{rows}.npy"
    rng = np.random.default_rng(1)
    np.save(targets, np.exp(rng.uniform(np.log(10e-6), np.log(1e-3), (rows, 16))))
    cmd = [sys.executable, "-m", "hil", "program", "--bench", _bench(tmp_path), "--targets", str(targets),
           "--out", str(out), "--no-progress", "--rows", f"0:{rows}", *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _service_file(path):
    """A synthetic service run (layout the view documents): ISPP-like cells plus fidelity, alarm and repair tables."""
    rng = np.random.default_rng(0)
    with RunStore.open(path, "reprogram", {"workload": "dft64"}, (8, 8), chip_id="CHIP-7", seed=5) as s:
        s.cell_field("status", np.int8, 0)
        s.cell_field("pulses", np.int32, 0)
        s.cell_field("g_final", float, np.nan)
        s.put_array("targets", np.full((8, 8), 50e-6))
        s.write_cells(np.repeat(np.arange(8), 8), np.tile(np.arange(8), 8), done=True,
                      status=np.where(rng.random(64) < 0.9, 1, 3), pulses=rng.integers(1, 20, 64),
                      g_final=rng.uniform(40e-6, 60e-6, 64))
        fid = np.zeros(48, [("hours", "f8"), ("one_minus_cos", "f8")])
        fid["hours"] = np.arange(48) * 3.5
        fid["one_minus_cos"] = 0.01 + 0.002 * (fid["hours"] > 60)
        s.table("fidelity", fid.dtype)
        s.append("fidelity", fid)
        alarms = np.array([(62.0, 3, b"column")], [("hours", "f8"), ("line", "i4"), ("kind", "S16")])
        s.table("alarms", alarms.dtype)
        s.append("alarms", alarms)
        repairs = np.array([(63.0, 7)], [("hours", "f8"), ("devices_reprogrammed", "i4")])
        s.table("repairs", repairs.dtype)
        s.append("repairs", repairs)
    return path


def test_convergence_curve_counts_cells_in_band_by_pulses():
    status = np.array([1, 1, 1, 2, 0])
    pulses = np.array([1, 3, 3, 9, 0])
    k, frac = convergence_curve(status, pulses, n_cells=5)
    assert k[-1] == 9 and frac[0] == 0 and frac[1] == pytest.approx(0.2) and frac[3] == pytest.approx(0.6)
    assert frac[-1] == pytest.approx(0.6)  # the exhausted cell never counts


def test_progress_estimates_the_end_from_what_the_view_saw(tmp_path):
    path = tmp_path / "r.h5"
    with RunStore.open(path, "read_all", {}, (4, 5)) as s:
        s.cell_field("g", float, np.nan)
        s.write_cells(np.zeros(5, int), np.arange(5), done=True, g=np.full(5, 1e-5))
        s.set_attr("bench_time_s", 2.0)
        s.flush()
        snap = read_snapshot(path)
    snap.attrs["status"] = "running"
    t = snap.read_at
    p = progress(snap, history=[(t, 0), (t + 5, 2), (t + 10, 5)])  # the view saw 5 cells done in 10 s
    assert (p["done"], p["total"]) == (5, 20) and p["rate"] == pytest.approx(0.5)
    assert p["eta"] == pytest.approx(t + 10 + 15 / 0.5)
    assert p["bench_left_s"] == pytest.approx(6.0)  # 2 s of bench time per 5 cells, 15 to go
    page = RunPage()
    page.update(snap, [(t, 0), (t + 10, 5)])
    assert "5 of 20 cells" in page.progress.text and "estimated end" in page.progress.text
    assert not page.fig_pulses.visible and not page.fig_conv.visible and not page.fig_codes.visible


def test_follower_never_blocks_or_corrupts_the_writer(tmp_path):
    """A reader polling hard while `hil program` writes and then resumes: the writer finishes, and its file
    equals the same two sessions nobody watched; every snapshot was consistent (done cells have results,
    records never shrink)."""
    watched, alone = tmp_path / "watched.h5", tmp_path / "alone.h5"
    proc = _program(tmp_path, watched, 8)
    follower, snaps = RunFollower(watched), []
    while proc.poll() is None:
        if follower.poll():
            snaps.append(follower.snapshot)
    assert proc.returncode == 0, proc.stderr.read()
    follower.poll()
    first_records = len(read_run(watched)["tables"]["pulses"])
    # a second run on the same file (a resume, which reopens it for writing) while the reader still polls;
    # the embedded chip starts afresh in each process, so the resume's confirmation reads re-program it
    proc = _program(tmp_path, watched, 8)
    while proc.poll() is None:
        follower.poll()
    assert proc.returncode == 0, proc.stderr.read()
    for _ in range(2):  # the same two sessions, unwatched
        proc = _program(tmp_path, alone, 8)
        assert proc.wait() == 0, proc.stderr.read()
    a, b = read_run(watched), read_run(alone)
    assert a["status"] == "complete" and len(a["sessions"]) == 2
    for k in ("done", "status", "pulses", "g_final"):
        np.testing.assert_array_equal(a["cells"][k], b["cells"][k])
    assert len(snaps) >= 2
    assert int(snaps[-1].done.sum()) == 8 * 16
    snaps = [s for s in snaps if "pulses" in s.cells]  # the first look may precede the fields' creation
    records = [s.table_rows.get("pulses", 0) for s in snaps]
    assert records == sorted(records) and records[-1] == first_records
    for s0, s1 in zip(snaps, snaps[1:]):
        assert np.all(s1.cells["pulses"] >= s0.cells["pulses"])  # a later look never has fewer pulses
    for s in snaps:
        assert np.all(s.cells["status"][s.done] != 0) and np.all(np.isfinite(s.cells["g_final"][s.done]))


def test_page_follows_a_running_program_and_ends_equal_to_the_file(tmp_path, browser):
    out = tmp_path / "run.h5"
    with ViewProcess(out) as view:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", view.url)
        browser.get(view.url)
        wait_for(lambda: page_state(browser) is not None)
        assert "waiting for" in browser.execute_script(
            "return Bokeh.documents[0].get_model_by_name('progress').text")
        proc = _program(tmp_path, out, 12)
        seen = []
        while proc.poll() is None:
            seen.append(page_state(browser))
            if seen[-1] and 0 < seen[-1]["done"] < 12 * 16 and not any(s and 0 < s["done"] for s in seen[:-1]):
                browser.save_screenshot(str(SHOTS / "view_live_midrun.png"))  # the map filling in
            time.sleep(0.05)
        assert proc.returncode == 0, proc.stderr.read()
        final = wait_for(lambda: (s := page_state(browser, ("conductance", "codes", "pulses")))
                         and s["status"] == "complete" and s)
        browser.save_screenshot(str(SHOTS / "view_live.png"))
    run = read_run(out)
    total = 12 * 16
    assert final["done"] == final["total"] == total
    assert any(s and 0 < s["done"] < total for s in seen), "the page never showed the run part-way"
    np.testing.assert_array_equal(final["conductance"], run["cells"]["g_final"] * 1e6)
    np.testing.assert_array_equal(final["codes"], run["cells"]["status"])
    np.testing.assert_array_equal(final["pulses"], run["cells"]["pulses"])


def test_view_flag_serves_beside_the_run_and_ends_with_it(tmp_path):
    out = tmp_path / "run.h5"
    proc = _program(tmp_path, out, 4, "--view")
    lines = []
    while not (url := next((m.group(0) for m in map(re.compile(r"http://127\.0\.0\.1:\d+/").search, lines) if m),
                           None)):
        line = proc.stderr.readline()
        assert line, f"no address printed: {lines}"
        lines.append(line)
    assert _status(url) == 200  # served while the command runs
    assert proc.wait(300) == 0, proc.stderr.read()
    assert "hil view" in proc.stderr.read()  # how to look at the finished run
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=10)  # the view ended with the command
    assert read_run(out)["status"] == "complete"


def test_view_process_that_cannot_start_says_why(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(RuntimeError, match="cannot serve on 127.0.0.1"):
            ViewProcess(tmp_path / "run.h5", port=busy.getsockname()[1])


def test_report_is_one_file_with_every_figure(tmp_path, browser):
    run = _service_file(tmp_path / "service.h5")
    out = tmp_path / "report.html"
    res = CliRunner().invoke(cli, ["report", str(run), "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert "<script src=" not in html.replace("<script src=\"data:", "")  # nothing fetched from a network
    browser.get(out.as_uri())
    figs = wait_for(lambda: page_state(browser) and rendered_figures(browser))
    expected = {"fig_conductance", "fig_codes", "fig_pulses", "fig_convergence", "fig_fidelity", "fig_events",
                "fig_repairs"}
    assert set(figs) == expected
    for name, f in figs.items():
        assert f["visible"] and f["width"] > 100 and f["height"] > 100 and f["renderers"] >= 1, name
    state = page_state(browser, ("conductance",))
    np.testing.assert_array_equal(state["conductance"], read_run(run)["cells"]["g_final"] * 1e6)
    assert "CHIP-7" in browser.execute_script("return Bokeh.documents[0].get_model_by_name('metadata').text")
    browser.save_screenshot(str(SHOTS / "view_report.png"))


def _status(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def _websocket_messages(port):
    from bokeh.util.token import generate_jwt_token, generate_session_id
    from tornado.websocket import websocket_connect

    token = generate_jwt_token(generate_session_id())
    try:
        conn = await websocket_connect(f"ws://127.0.0.1:{port}/ws", subprotocols=["bokeh", token])
    except Exception:  # refused at the handshake
        return []
    got = []
    while (msg := await asyncio.wait_for(conn.read_message(), 30)) is not None:
        got.append(msg)
    return got


def test_network_view_needs_the_token(tmp_path, browser):
    run = _service_file(tmp_path / "service.h5")
    res = CliRunner().invoke(cli, ["view", str(run), "--address", "0.0.0.0"])
    assert res.exit_code == 2 and "--network" in res.output
    proc = subprocess.Popen([sys.executable, "-m", "hil", "view", str(run), "--network", "--port", "0",
                             "--token", "right-token-123"], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(re.search(r":(\d+)/\?token=right-token-123", line).group(1))
        base = f"http://127.0.0.1:{port}/"
        assert _status(base) == 403
        assert _status(base + "?token=wrong-token-123") == 403
        assert _status(base + "?token=right-token-123") == 200
        assert asyncio.run(_websocket_messages(port)) == []  # a made-up session without the cookie: nothing sent
        browser.delete_all_cookies()
        browser.get(base + "?token=wrong-token-123")
        assert "403" in browser.page_source and page_state(browser) is None
        browser.save_screenshot(str(SHOTS / "view_refused.png"))
        browser.get(base + "?token=right-token-123")
        state = wait_for(lambda: page_state(browser))
        assert state["status"] == "complete" and state["done"] == 64
    finally:
        proc.terminate()
        proc.wait(30)


def test_page_updates_from_a_snapshot_without_a_server(tmp_path):
    snap = read_snapshot(_service_file(tmp_path / "s.h5"))
    page = RunPage()
    page.update(snap)
    assert all(f.visible for f in (page.fig_fidelity, page.fig_events, page.fig_repairs))
    assert list(page.events_src.data["kind"]) == ["alarm", "repair"]
    assert list(page.repairs_src.data["devices"]) == [7.0]
    assert "64 of 64 cells" in page.progress.text


def test_service_events_table_in_the_session_log_vocabulary(tmp_path):
    """An ``events`` table (one row per logged event, its kind in ``event``) fills the same panels."""
    path = tmp_path / "ev.h5"
    ev = np.array([(3600.0, b"alarm", 0), (3700.0, b"repair", 12), (7200.0, b"drift_compensation", 0)],
                  [("chip_time_s", "f8"), ("event", "S24"), ("writes", "i4")])
    with RunStore.open(path, "service", {}, (2, 2)) as s:
        s.table("events", ev.dtype)
        s.append("events", ev)
    page = RunPage()
    page.update(read_snapshot(path))
    assert page.fig_events.visible and page.fig_repairs.visible and not page.fig_fidelity.visible
    assert sorted(page.events_src.data["kind"]) == ["alarm", "drift_compensation", "repair"]
    assert list(page.repairs_src.data["devices"]) == [12.0] and list(page.repairs_src.data["t"]) == [3700.0]
    assert page.fig_events.y_range.factors[-2:] == ["repair", "alarm"]


def test_service_run_file_of_the_workflow(tmp_path):
    """The service workflow's run file (protocol ``service``: JSON event log, hourly timeline), as it writes it."""
    from protocols.service import PROTOCOL, ServiceRecords

    path = tmp_path / "svc.h5"
    store = RunStore.open(str(path), PROTOCOL, {"workflow": "name: w\nstream: {hours: 5}\n"}, (5, 1), seed=1)
    run = ServiceRecords(store)
    run.event({"event": "program", "chip_time_s": 0.0, "pulses": 900})
    for e in ({"event": "alarm", "chip_time_s": 1800.0, "vmm": 120, "stage": 0, "check": 1, "statistic": 9.5,
               "cells": [[1, 2]]},
              {"event": "repair", "chip_time_s": 1900.0, "vmm": 121, "writes": 6, "pulses": 40},
              {"event": "hour", "chip_time_s": 3600.0}):
        run.event(e)
    run.hour((0, 1.0, 0.02, 0.021, 1, 1, 6, 1, 1))
    store.write_cells([0], [0], done=True)
    store.flush()
    snap = read_snapshot(path)  # while the writer still holds the file open
    store.finish("interrupted")
    page = RunPage()
    page.update(snap)
    assert not page.fig_g.visible and page.fig_fidelity.visible and page.fig_events.visible
    assert list(page.fid_src.data["name"]) == ["fidelity", "fidelity_reference"]
    assert sorted(page.events_src.data["kind"]) == ["alarm", "program", "repair"]  # the hourly tick is left out
    assert list(page.repairs_src.data["devices"]) == [6.0]
    assert "1 of 5 hours" in page.progress.text and "stream: {hours: 5}" in page.metadata.text


def test_scan_run_shows_the_fault_codes_of_the_fault_map(tmp_path):
    from hil.commands.view_cmd import interpretation
    from hil.faultmap import FaultMap

    res = CliRunner().invoke(cli, ["scan", "--bench", _bench(tmp_path, n=8), "--out", str(tmp_path / "f.h5"),
                                   "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    page = RunPage(**interpretation(str(tmp_path / "f.run.h5")))
    page.update(read_snapshot(tmp_path / "f.run.h5"))
    np.testing.assert_array_equal(page.codes_src.data["image"][0], FaultMap.load(tmp_path / "f.h5").codes)
    assert "stuck_on" in page.fig_codes.right[0].major_label_overrides[2]


def test_report_refuses_a_file_that_is_not_a_run(tmp_path):
    import h5py

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["a"] = 1
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "x.h5"), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "not an rram-hil run file" in res.output
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF not really" * 100)
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "junk.h5"), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 1 and "junk.h5" in res.output and not (tmp_path / "r.html").exists()
