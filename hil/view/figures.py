"""The figures of a run, as one Bokeh layout that a snapshot of the run file updates in place.

The same :class:`RunPage` serves the live view (updated at every change of the file)
and the static report (updated once). Every value shown comes from the file; text
from the file is escaped before it reaches the page.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import time
from typing import Any, Callable, Mapping

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (ColorBar, ColumnDataSource, Div, FixedTicker, HoverTool, LinearColorMapper,
                          LogColorMapper, Range1d)
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure
from numpy.typing import NDArray

from ..faultmap import CODE_NAMES
from .reader import Snapshot

#: per-cell fields tried, in order, for the conductance map (S)
G_FIELDS = ("g_final", "g", "g_read", "g_initial")
#: per-cell fields tried, in order, for the code map
CODE_FIELDS = ("codes", "fault_codes", "status")
_CODE_COLOURS = {-1: "#dddddd", 0: "#2a9d8f", 1: "#264653", 2: "#e9c46a", 3: "#e76f51"}  # fault codes
_STATUS_COLOURS = {0: "#dddddd", 1: "#2a9d8f", 2: "#e9c46a", 3: "#e76f51", 4: "#9a9a9a"}  # ISPP status
_TIME_FIELDS = ("hours", "chip_time_h", "chip_time_s", "t_s", "time_s", "t_h", "bench_time_s", "t", "time", "vmm")
_EVENT_COLOURS = {"alarm": "#d62728", "repair": "#2a9d8f", "drift_compensation": "#2ca02c"}
_SIZE = 380

#: extra per-cell maps computed from a snapshot (e.g. fault codes of a scan), by the caller
Derive = Callable[[Snapshot], Mapping[str, NDArray]]


def _iso(t: float | None) -> str:
    if t is None or not np.isfinite(t):
        return "-"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _parse_iso(text: Any) -> float | None:
    try:
        return _dt.datetime.fromisoformat(str(text.decode() if isinstance(text, bytes) else text)).timestamp()
    except (TypeError, ValueError):
        return None


def _duration(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def conductance(snap: Snapshot) -> tuple[str, NDArray[np.float64]]:
    """(field, G in S) of the run's conductance map; NaN where not measured yet."""
    for k in G_FIELDS:
        if k in snap.cells:
            return k, np.asarray(snap.cells[k], dtype=float)
    if "r_final" in snap.cells:
        r = np.asarray(snap.cells["r_final"], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return "1/r_final", np.where(r > 0, 1.0 / r, np.nan)
    return "", np.full(snap.shape, np.nan)


def convergence_curve(status: NDArray, pulses: NDArray, n_cells: int, converged_code: int = 1
                      ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """ISPP convergence: fraction of the ``n_cells`` to program that are in band after <= k pulses."""
    pc = np.asarray(pulses)[np.asarray(status) == converged_code].astype(np.int64)
    k_max = int(max(pc.max(initial=0), np.asarray(pulses).max(initial=0), 1))
    k = np.arange(0, k_max + 1)
    counts = np.bincount(pc, minlength=k_max + 1)[:k_max + 1]
    return k, np.cumsum(counts) / max(int(n_cells), 1)


def progress(snap: Snapshot, history: list[tuple[float, int]] | None = None) -> dict[str, Any]:
    """Cells done of the cells to do, rate and estimated end (wall clock of the bench computer)."""
    targets = snap.arrays.get("targets")
    todo = np.ones(snap.shape, bool)
    if targets is not None and np.shape(targets) == snap.shape:
        todo = np.isfinite(targets)  # NaN targets are cells left alone
    n_total, n_done, unit = int(todo.sum()), int((snap.done & todo).sum()), "cells"
    if snap.work is not None:
        n_done, n_total, unit = snap.work
    status = snap.status
    sessions = snap.sessions
    started = _parse_iso(sessions[-1]["started"]) if len(sessions) else _parse_iso(snap.attrs.get("created"))
    first = _parse_iso(sessions[0]["started"]) if len(sessions) else started
    updated = _parse_iso(snap.attrs.get("updated"))
    rate = None
    pts = [(t, d) for t, d in (history or []) if started is None or t >= started - 1]
    if len(pts) >= 2:
        recent = [p for p in pts if p[0] >= pts[-1][0] - 60] or pts
        (t0, d0), (t1, d1) = (recent[0] if len(recent) > 1 else pts[0]), pts[-1]
        if t1 > t0 and d1 > d0:
            rate = (d1 - d0) / (t1 - t0)
    if rate is None and started is not None and updated is not None and updated > started and n_done:
        rate = n_done / (updated - started)  # whole-run average: the best we know from the file alone
    eta = None
    if status == "running" and rate and n_total > n_done:
        eta = (history[-1][0] if history else time.time()) + (n_total - n_done) / rate
    elapsed = (updated - first) if (updated is not None and first is not None) else None
    # the bench clock (instrument time the emulators charge, or a real bench's), when the writer records it
    bench_s = snap.attrs.get("bench_time_s")
    bench_left = None
    if isinstance(bench_s, (int, float)) and bench_s > 0 and n_done and n_total > n_done:
        bench_left = bench_s * (n_total - n_done) / n_done
    return {"bench_time_s": bench_s if isinstance(bench_s, (int, float)) else None, "bench_left_s": bench_left,
            "unit": unit, "done": n_done, "total": n_total, "status": status, "rate": rate, "eta": eta, "started": first,
            "updated": updated, "elapsed": elapsed, "resumptions": max(len(sessions) - 1, 0),
            "pulses": int(snap.table_rows.get("pulses", 0)), "reads": int(snap.table_rows.get("reads", 0))}


def _image_figure(name: str, title: str, mapper, label: str, ticker=None, overrides=None):
    src = ColumnDataSource({"image": [np.full((1, 1), np.nan)]}, name=f"{name}_source")
    fig = figure(name=f"fig_{name}", title=title, width=_SIZE + 90, height=_SIZE, x_range=Range1d(0, 1),
                 y_range=Range1d(1, 0), tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above",
                 x_axis_label="column (bit line)", y_axis_label="row (word line)")
    img = fig.image(image="image", x=0, y=0, dw=1, dh=1, source=src, color_mapper=mapper)
    fig.add_tools(HoverTool(renderers=[img], tooltips=[("column", "$x{0}"), ("row", "$y{0}"), (label, "@image")]))
    bar = ColorBar(color_mapper=mapper, title=label, ticker=ticker or "auto",
                   major_label_overrides=overrides or {})
    fig.add_layout(bar, "right")
    fig.grid.visible = False
    return fig, src, img


class RunPage:
    """The figures of one run file; :meth:`update` redraws them from a :class:`Snapshot`."""

    def __init__(self, code_names: Mapping[str, Mapping[int, str]] | None = None, derive: Derive | None = None,
                 title: str = "rram-hil run"):
        self._code_names = {k: dict(v) for k, v in (code_names or {}).items()}
        self._derive = derive
        self._shape: tuple[int, int] | None = None
        self.header = Div(name="header", text=f"<h2>{html.escape(title)}</h2>")
        self.progress = Div(name="progress", text="<p>waiting for the run file...</p>", width=900)
        self.g_mapper = LogColorMapper(palette=Viridis256, low=1e-6, high=1e-4, nan_color="#eeeeee")
        self.fig_g, self.g_src, _ = _image_figure("conductance", "conductance map", self.g_mapper, "G (uS)")
        self.code_mapper = LinearColorMapper(palette=["#dddddd"], low=-0.5, high=0.5, nan_color="#ffffff")
        self.fig_codes, self.codes_src, _ = _image_figure("codes", "cell codes", self.code_mapper, "code",
                                                          ticker=FixedTicker(ticks=[0]))
        self.p_mapper = LinearColorMapper(palette=Viridis256, low=0, high=1, nan_color="#eeeeee")
        self.fig_pulses, self.pulses_src, _ = _image_figure("pulses", "pulses per cell", self.p_mapper, "pulses")
        self.conv_src = ColumnDataSource({"pulses": [], "fraction": []}, name="convergence_source")
        self.fig_conv = figure(name="fig_convergence", title="ISPP convergence: cells in band vs pulses",
                               width=_SIZE + 90, height=_SIZE, x_axis_label="pulses per cell",
                               y_axis_label="fraction of cells in band", y_range=Range1d(0, 1.02),
                               tools="pan,wheel_zoom,box_zoom,reset,save,hover", toolbar_location="above")
        self.fig_conv.step("pulses", "fraction", source=self.conv_src, mode="after", line_width=2)
        self.metadata = Div(name="metadata", text="", width=900)
        self.fid_src = ColumnDataSource({"xs": [], "ys": [], "name": [], "colour": []}, name="fidelity_source")
        self.fig_fidelity = figure(name="fig_fidelity", title="service: fidelity over time", width=2 * _SIZE,
                                   height=260, tools="pan,wheel_zoom,box_zoom,reset,save", toolbar_location="above",
                                   visible=False)
        fl = self.fig_fidelity.multi_line("xs", "ys", source=self.fid_src, color="colour", legend_field="name",
                                          line_width=2)
        self.fig_fidelity.add_tools(HoverTool(renderers=[fl], tooltips=[("", "@name"), ("t", "$x"), ("value", "$y")]))
        self.events_src = ColumnDataSource({"t": [], "y": [], "kind": [], "what": [], "colour": []},
                                           name="events_source")
        self.fig_events = figure(name="fig_events", title="service: alarms and repairs", width=2 * _SIZE,
                                 height=200, y_range=["repair", "alarm"], x_range=self.fig_fidelity.x_range,
                                 toolbar_location="above", tools="pan,wheel_zoom,box_zoom,reset,save", visible=False)
        ev = self.fig_events.scatter("t", "kind", source=self.events_src, color="colour", size=9, marker="diamond")
        self.fig_events.add_tools(HoverTool(renderers=[ev], tooltips=[("t", "@t"), ("", "@what")]))
        self.repairs_src = ColumnDataSource({"t": [], "devices": []}, name="repairs_source")
        self.fig_repairs = figure(name="fig_repairs", title="service: devices re-programmed per repair",
                                  width=2 * _SIZE, height=200, x_range=self.fig_fidelity.x_range,
                                  tools="pan,wheel_zoom,box_zoom,reset,save,hover",
                                  toolbar_location="above", visible=False)
        self.fig_repairs.scatter("t", "devices", source=self.repairs_src, size=7, color="#e76f51")
        self.fig_repairs.segment("t", 0, "t", "devices", source=self.repairs_src, color="#e76f51")
        self.layout = column(self.header, self.progress, row(self.fig_g, self.fig_codes),
                             row(self.fig_pulses, self.fig_conv), self.fig_fidelity, self.fig_events,
                             self.fig_repairs, self.metadata, name="run_page")

    # -- update ---------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.progress.text = f"<p style='color:#b00'>{html.escape(text)}</p>"

    def update(self, snap: Snapshot, history: list[tuple[float, int]] | None = None) -> None:
        extra = dict(self._derive(snap)) if self._derive else {}
        cells = {**snap.cells, **extra}
        self._set_shape(snap.shape)
        self._update_conductance(snap)
        self._update_codes(snap, cells)
        self._update_pulses(cells, snap)
        self._update_service(snap)
        self.progress.text = self._progress_html(snap, progress(snap, history))
        meta = self._metadata_html(snap)
        if meta != self.metadata.text:  # it rarely changes; re-laying it out costs the browser
            self.metadata.text = meta

    def _set_shape(self, shape: tuple[int, int]) -> None:
        if shape == self._shape:
            return
        self._shape = shape
        rows, cols = max(shape[0], 1), max(shape[1], 1)
        for fig in (self.fig_g, self.fig_codes, self.fig_pulses):
            fig.x_range.update(start=0, end=cols)
            fig.y_range.update(start=rows, end=0)
            for r in fig.renderers:
                r.glyph.update(dw=cols, dh=rows)

    def _update_conductance(self, snap: Snapshot) -> None:
        name, g = conductance(snap)
        self.fig_g.visible = bool(name) and min(snap.shape) > 0  # a service run has no conductance map
        if not self.fig_g.visible:
            return
        g_us = g * 1e6
        ref = snap.arrays.get("targets")
        scale = np.concatenate([g_us[np.isfinite(g_us) & (g_us > 0)],
                                (np.asarray(ref, float) * 1e6).ravel() if ref is not None else []])
        scale = scale[np.isfinite(scale) & (scale > 0)]
        if scale.size:
            lo, hi = float(scale.min()), float(scale.max())
            self.g_mapper.update(low=lo, high=hi if hi > lo else lo * 1.01)
        self.fig_g.title.text = f"conductance map ({name}, uS)" if name else "conductance map (none in this run)"
        self.g_src.data = {"image": [g_us]}

    def _update_codes(self, snap: Snapshot, cells: Mapping[str, NDArray]) -> None:
        field = next((k for k in CODE_FIELDS if k in cells), None)
        self.fig_codes.visible = field is not None
        if field is None:
            return
        codes = np.asarray(cells[field]).astype(float)
        names = snap.code_names.get(field) or self._code_names.get(field) or \
            (CODE_NAMES if field != "status" else {})
        present = sorted({int(c) for c in np.unique(codes[np.isfinite(codes)])} | set(names))
        lo, hi = min(present, default=0), max(present, default=0)
        colours = _STATUS_COLOURS if field == "status" else _CODE_COLOURS
        palette = [colours.get(c, Category10_10[c % 10]) for c in range(lo, hi + 1)]
        self.code_mapper.update(palette=palette, low=lo - 0.5, high=hi + 0.5)
        bar = self.fig_codes.right[0]
        counts = {c: int(np.count_nonzero(codes == c)) for c in range(lo, hi + 1)}
        bar.ticker.ticks = list(range(lo, hi + 1))
        bar.major_label_overrides = {c: f"{c} {names.get(c, '')} ({counts[c]})".replace("  ", " ")
                                     for c in range(lo, hi + 1)}
        self.fig_codes.title.text = f"cell codes ({field})"
        self.codes_src.data = {"image": [codes]}

    def _update_pulses(self, cells: Mapping[str, NDArray], snap: Snapshot) -> None:
        has = "pulses" in cells
        self.fig_pulses.visible = has
        self.fig_conv.visible = has and "status" in cells
        if not has:
            return
        pulses = np.asarray(cells["pulses"], dtype=float)
        shown = np.where(snap.done | (pulses > 0), pulses, np.nan)
        self.p_mapper.update(low=0, high=max(float(np.nanmax(shown, initial=0)), 1.0))
        self.pulses_src.data = {"image": [shown]}
        if "status" in cells:
            targets = snap.arrays.get("targets")
            n = int(np.isfinite(targets).sum()) if targets is not None else int(np.prod(snap.shape))
            k, frac = convergence_curve(cells["status"], cells["pulses"], n)
            self.conv_src.data = {"pulses": k, "fraction": frac}

    def _update_service(self, snap: Snapshot) -> None:
        fid = snap.tables.get("fidelity")
        self.fig_fidelity.visible = fid is not None and fid.dtype.names is not None
        if self.fig_fidelity.visible:
            t = _time_field(fid)
            ys = [n for n in fid.dtype.names if n != t and np.issubdtype(fid.dtype[n], np.number)]
            if any(n.startswith("fidelity") for n in ys):  # a timeline that also counts events: fidelity only
                ys = [n for n in ys if n.startswith("fidelity")]
            x = fid[t].astype(float)
            self.fid_src.data = {"xs": [x] * len(ys), "ys": [fid[n].astype(float) for n in ys], "name": ys,
                                 "colour": [Category10_10[i % 10] for i in range(len(ys))]}
            self.fig_fidelity.xaxis.axis_label = t
        rows = list(_event_rows(snap.tables))
        kinds = sorted({k for _, k, _ in rows}, key=lambda k: (k not in ("alarm", "repair"), k))
        self.fig_events.visible = bool(rows) or any(k in snap.tables for k in ("alarms", "repairs", "events"))
        if kinds:
            self.fig_events.y_range.factors = kinds[::-1]
        colour = {k: _EVENT_COLOURS.get(k, Category10_10[i % 10]) for i, k in enumerate(kinds)}
        self.events_src.data = {"t": [t for t, _, _ in rows], "y": [k for _, k, _ in rows],
                                "kind": [k for _, k, _ in rows], "what": [w for _, _, w in rows],
                                "colour": [colour[k] for _, k, _ in rows]}
        writes = _repair_writes(snap.tables)
        self.fig_repairs.visible = writes is not None
        if writes is not None:
            self.fig_repairs.xaxis.axis_label = writes[0]
            self.repairs_src.data = {"t": writes[1], "devices": writes[2]}

    # -- text -----------------------------------------------------------------------------
    @staticmethod
    def _progress_html(snap: Snapshot, p: Mapping[str, Any]) -> str:
        pct = 100.0 * p["done"] / p["total"] if p["total"] else 100.0
        colour = {"running": "#2a9d8f", "complete": "#264653"}.get(p["status"], "#d62728")
        rate = f"{p['rate']:.3g} {p['unit']}/s" if p["rate"] else "-"
        end = (f"estimated end {_iso(p['eta'])} (in {_duration(p['eta'] - time.time())})" if p["eta"]
               else f"last write {_iso(p['updated'])}")
        return (f"<div data-done='{p['done']}' data-total='{p['total']}' data-status='{html.escape(p['status'])}'>"
                f"<b style='color:{colour}'>{html.escape(p['status'])}</b> &nbsp; "
                f"<progress max='{max(p['total'], 1)}' value='{p['done']}' style='width:300px'></progress> "
                f"{p['done']} of {p['total']} {p['unit']} ({pct:.1f} %) &nbsp; {rate} &nbsp; {end}<br>"
                + (f"{p['pulses']} pulses and {p['reads']} reads recorded; " if "pulses" in snap.table_rows else "")
                + f"elapsed {_duration(p['elapsed'])}; resumed {p['resumptions']} time(s)"
                + (f"<br>bench clock: {_duration(p['bench_time_s'])} spent" if p["bench_time_s"] is not None else "")
                + (f", about {_duration(p['bench_left_s'])} to go" if p["bench_left_s"] is not None else "")
                + "</div>")

    @staticmethod
    def _metadata_html(snap: Snapshot) -> str:
        a = snap.attrs
        shown = ("protocol", "status", "chip_id", "bench_file", "software_version", "seed", "rows", "cols",
                 "created")
        rows = "".join(f"<tr><th align='left'>{k}</th><td>{_text(a[k])}</td></tr>" for k in shown if k in a)
        rest = {k: v for k, v in a.items() if k not in shown + ("parameters", "bench", "format_version",
                                                                  "parameters_sha256", "updated", "bench_time_s")}
        block = {k: v for k, v in rest.items() if isinstance(v, Mapping) or "\n" in str(v)}
        rows += "".join(f"<tr><th align='left'>{html.escape(str(k))}</th><td>{_text(v)}</td></tr>"
                        for k, v in sorted(rest.items()) if k not in block)
        out = f"<h3>run</h3><table>{rows}</table>"
        if snap.sessions.dtype.names:
            sess = "".join(f"<tr><td>{i}</td><td>{_text(s['started'])}</td><td>{_text(s['ended'])}</td>"
                           f"<td>{_text(s['status'])}</td></tr>" for i, s in enumerate(snap.sessions))
            out += (f"<h3>sessions (start and resumptions)</h3><table><tr><th>#</th><th>started</th>"
                    f"<th>ended</th><th>status</th></tr>{sess}</table>")
        # structured attributes in full: the bench, the identity of the chip and of every instrument,
        # the parameters, a service run's workflow
        for title, v in [("bench and instruments", a.get("bench"))] + sorted(block.items()) + \
                [("parameters", a.get("parameters"))]:
            if v is not None:
                out += f"<h3>{html.escape(str(title))}</h3><pre style='white-space:pre-wrap'>{_pretty(v)}</pre>"
        return out


def _event_rows(tables: Mapping[str, NDArray]):
    """(time, kind, description) of every service event: ``alarms`` and ``repairs`` tables, and an
    ``events`` table whose ``event`` field names the kind (alarm, repair, drift_compensation, ...)."""
    ev = tables.get("events")
    logged = ev is not None and ev.dtype.names is not None and "event" in ev.dtype.names
    for name, fixed in (("alarms", "alarm"), ("repairs", "repair"), ("events", None)):
        if logged and fixed:
            continue  # the event log holds the alarms and repairs too
        tab = tables.get(name)
        if tab is None or tab.dtype.names is None or not len(tab):
            continue
        t = _time_field(tab)
        for rec in tab:
            kind = fixed or (_plain(rec["event"]) if "event" in tab.dtype.names else name)
            what = ", ".join(f"{n}={_text(rec[n])}" for n in tab.dtype.names if n not in (t, "event"))[:300]
            yield float(rec[t]), kind, what


_DEVICE_FIELDS = ("devices_reprogrammed", "reprogrammed", "devices", "writes", "cells")


def _repair_writes(tables: Mapping[str, NDArray]) -> tuple[str, NDArray, NDArray] | None:
    """(time field, times, devices re-programmed) of every repair, or None when the run has no repairs."""
    for name in ("repairs", "events"):
        tab = tables.get(name)
        if tab is None or tab.dtype.names is None:
            continue
        dev = next((n for n in _DEVICE_FIELDS if n in tab.dtype.names), None)
        if dev is None:
            continue
        if name == "events":
            if "event" not in tab.dtype.names:
                continue
            tab = tab[np.array([_plain(e) == "repair" for e in tab["event"]], dtype=bool)]
        t = _time_field(tab)
        return t, tab[t].astype(float), tab[dev].astype(float)
    return None


def _time_field(tab: NDArray) -> str:
    names = tab.dtype.names
    return next((n for n in _TIME_FIELDS if n in names), names[0])


def _plain(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _text(v: Any) -> str:
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return f"{v:.6g}"
    return html.escape(str(v))


def _pretty(v: Any) -> str:
    """One line per top-level key, each value as compact JSON."""
    if not isinstance(v, Mapping):
        return html.escape(str(v))
    return html.escape("\n".join(f"{k}: {json.dumps(x, sort_keys=True, default=str)}" for k, x in sorted(v.items())))

