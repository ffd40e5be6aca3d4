"""The service loop, written once over the engine interface: scan, map, program, verify, then serve hours.

:class:`ServiceLoop` is what ``hil service`` runs (``protocols/service.py`` drives it on a
bench, through :class:`protocols.service_engine.BenchEngine`) and what the statistics-heavy
studies run on the conductance-level chip (:class:`~hil.service.engine.WindowEngine`):
one loop, two backends. Every decision goes to ``on_event`` as a plain JSON-able record,
in order, so the caller records it and a replay compares it.

The engine interface (both backends): ``shapes`` (array name -> block shape), ``scan``,
``write``, ``read``, ``vmm``, ``time_s``, ``advance(hours)``, ``true_conductance(name)``
(the chip's ground truth in the mapping's units, None on a real bench) and
``faults_appeared()`` (stuck devices the simulated chip grew so far, None on a real bench).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from hil.faultmap_versions import FaultMapVersions

from .engine import EngineParams, WindowEngine, window_chip
from .mapping import map_direct, map_factorized
from .network import Calibration, ServedNetwork, check_corrector, digital_patch, fit_corrector, layer_matrix
from .session import ServiceSession
from .tiles import serve_tiled, tile_shapes
from .workflow import Workflow, service_params, target_matrix, workload

#: one row of the service timeline per hour (the run file's ``tables/fidelity``)
TIMELINE_FIELDS = ("hour", "chip_time_h", "fidelity", "fidelity_reference", "alarms", "repairs",
                   "devices_reprogrammed", "faults_found", "faults_appeared")


def block_shapes(wf: Workflow) -> dict[str, tuple[int, int]]:
    """Array name -> (rows, cols) of every block the workflow's mapping needs."""
    if wf.mapping.target == "digits":
        from hil.networks.digits import LAYER_SIZES

        return {f"L{l}": (2 * (LAYER_SIZES[l] + 1), LAYER_SIZES[l + 1]) for l in range(len(LAYER_SIZES) - 1)}
    m_ = target_matrix(wf.mapping)
    if wf.mapping.tile is not None:
        return tile_shapes(m_.shape, wf.mapping.tile, wf.mapping.k, wf.mapping.checksums)
    m, n = m_.shape
    k = wf.mapping.k or m
    extra = 2 if wf.mapping.checksums else 0
    return {"A": (m, k + extra), "B": (k, n + extra)}


def inputs_per_vector(wf: Workflow) -> int:
    """Entries of one input vector of the workflow's target."""
    if wf.mapping.target == "digits":
        from hil.networks.digits import LAYER_SIZES

        return LAYER_SIZES[0]
    return target_matrix(wf.mapping).shape[0]


def check_stream(wf: Workflow) -> None:
    """Load and check the stream's input vectors now (a NaN in a vector file is refused before the bench
    is touched, not an hour into the run); raises :class:`~hil.service.workflow.WorkflowError`."""
    next(workload(wf.stream, inputs_per_vector(wf), np.random.default_rng(0)))


def window_engine(wf: Workflow, params: EngineParams | None = None) -> WindowEngine:
    """The conductance-level simulated chip a workflow's ``chip`` section describes (studies only); ``params``
    sets what its operations cost (default: the DFT64 bench's, :class:`~hil.service.engine.EngineParams`)."""
    return WindowEngine(window_chip(block_shapes(wf), wf.chip.initial_fault_rate, wf.chip.aging_params(), wf.seed,
                                    wf.chip.read_noise_scale), params)


class ServiceLoop:
    """Scan, map, program and verify a workflow's target on ``engine``, then serve it hour by hour."""

    def __init__(self, wf: Workflow, engine, on_event: Callable[[dict], None],
                 versions: FaultMapVersions | None = None):
        self.wf, self.engine, self.on_event = wf, engine, on_event
        self.versions = versions if versions is not None else FaultMapVersions()
        self.sessions: list[ServiceSession] = []
        self.rng = np.random.default_rng([wf.seed, 1])
        self.params = dataclasses.replace(service_params(wf.service),
                                          compare_full_remap=wf.mapping.target != "digits")
        self.hours = int(np.ceil(wf.stream.hours))
        self.step_h = wf.stream.hours / self.hours  # chip time per served "hour" (1 h unless hours < 1)
        self.fidelity_now = (float("nan"), float("nan"))

    # 1-3: scan, map, program, verify -------------------------------------------------------------
    def setup(self) -> None:
        wf, eng = self.wf, self.engine
        scanned = {}
        # nothing is programmed yet: the scan restores every working cell to the bottom of the window
        for name, shape in eng.shapes.items():
            pulses_before = eng.pulses
            codes, _ = eng.scan(name, np.arange(shape[0]), np.arange(shape[1]), np.zeros(shape))
            scanned[name] = codes
            self.on_event({"event": "scan_array", "array": name, "stuck": int(np.count_nonzero(codes)),
                           "pulses": int(eng.pulses - pulses_before), "vmm": 0, "chip_time_s": float(eng.time_s)})
        self.versions.commit(scanned, "scan", {"arrays": list(scanned)}, float(eng.time_s), "full scan before mapping")
        if wf.mapping.target == "digits":
            self._setup_network(scanned)
        elif wf.mapping.tile is not None:
            m_ = target_matrix(wf.mapping)
            self.tiled = serve_tiled(m_, wf.mapping.tile, scanned, eng, wf.mapping.k, self.params, wf.seed,
                                     wf.mapping.checksums, self.versions, self.on_event, wf.mapping.layout)
            self.sessions.extend(self.tiled.sessions.values())
            self.n_in = m_.shape[0]
            self._serve = self.tiled.serve
        else:
            m_ = target_matrix(wf.mapping)
            k = wf.mapping.k or m_.shape[0]
            mm = map_factorized(m_, k, scanned["A"], scanned["B"], rng=wf.seed, checks=wf.mapping.checksums)
            self.sessions.append(ServiceSession(mm, eng, self.params, self.versions, self.on_event))
            self.n_in = m_.shape[0]
            self._serve = self.sessions[0].serve
        for i, s in enumerate(self.sessions):
            if s.detector is None:  # tiled sessions are programmed as they are mapped
                s.program()
                s.calibrate([wf.seed, i])
        if wf.mapping.target == "digits" and wf.corrector.enabled:
            self._event(fit_corrector(self.served, self.calibration))
        f_true, f_ref = self.fidelity()
        self.on_event({"event": "verify", "fidelity": f_true, "fidelity_reference": f_ref, "vmm": 0,
                       "chip_time_s": float(eng.time_s)})
        self.stream = workload(wf.stream, self.n_in, self.rng)

    def _setup_network(self, scanned) -> None:
        from hil.networks.digits import load_digits_data, paper_split, train_digits_network

        x, y = load_digits_data()
        tr, te = paper_split(y, self.wf.seed)
        self.net = train_digits_network(x[tr], y[tr], self.wf.seed)
        self.test_set = (x[te], y[te])
        for l in range(len(self.net.Ws)):
            name = f"L{l}"
            mm = map_direct(layer_matrix(self.net, l), scanned[name], array=name)
            self.sessions.append(ServiceSession(mm, self.engine, self.params, self.versions, self.on_event))
        self.served = ServedNetwork(self.net, self.sessions)
        # the corrector's labelled images: from the training split, never the test images fidelity is taken on
        c = self.wf.corrector
        idx = np.random.default_rng([self.wf.seed, 2]).permutation(tr)
        fit, val = idx[:c.fit_images], idx[c.fit_images:c.fit_images + c.val_images]
        self.calibration = Calibration(x[fit], y[fit], x[val], y[val], alpha=c.alpha, seed=self.wf.seed)
        self.n_in = self.net.Ws[0].shape[0]
        self._serve = self.served.forward

    # fidelity ----------------------------------------------------------------------------------------
    def fidelity(self) -> tuple[float, float]:
        """(ground truth, host's estimate): 1 - cos of the represented matrix (accuracy for the network);
        the ground truth is the simulated chip's noise-free conductances, NaN on a real bench."""
        truth = {name: self.engine.true_conductance(name) for name in self.engine.shapes}
        known = all(g is not None for g in truth.values())
        if self.wf.mapping.target == "digits":
            x, y = self.test_set
            ref = float(np.mean([s.mm.one_minus_cos() for s in self.sessions]))
            if not known:
                return float("nan"), ref
            out = self._forward(x, truth)
            pred = self.served.corrector.predict(out) if self.served.corrector is not None else np.argmax(out, 1)
            acc = float(np.mean(pred == y))
            return acc, ref
        if self.wf.mapping.tile is not None:
            return (self.tiled.one_minus_cos(truth) if known else float("nan")), self.tiled.one_minus_cos()
        mm = self.sessions[0].mm
        return (mm.one_minus_cos([truth[st.array] for st in mm.stages]) if known else float("nan"),
                mm.one_minus_cos())

    def _forward(self, x: np.ndarray, truth: dict) -> np.ndarray:
        """The network on the chip's true conductances (noise-free)."""
        a = x
        for i, s in enumerate(self.sessions):
            st = s.mm.stages[0]
            u = np.hstack([a, np.ones((a.shape[0], 1))])
            z = u @ st.logical(truth[st.array]) / s.mm.scale
            if self.served.patch:  # the host's digital part of the layer (the weights stuck pairs cannot hold)
                z = z + u @ digital_patch(s)
            a = np.maximum(z, 0.0) if i < len(self.sessions) - 1 else z
        return a

    # 4: serve ------------------------------------------------------------------------------------------
    def serve_hour(self, h: int) -> tuple:
        """Serve hour ``h`` of the stream (the chip ages a quarter of the step, normally an hour, per quarter of
        the batch), maintain,
        record the ``hour`` event; returns the timeline row (:data:`TIMELINE_FIELDS`)."""
        eng = self.engine
        appeared_before = eng.faults_appeared()
        batch = next(self.stream)
        for part in np.array_split(batch, 4):  # the chip ages while the stream runs, not only between hours
            if len(part):
                self._serve(part)
            eng.advance(self.step_h / 4)
        if (h + 1) % max(int(round(self.wf.stream.maintain_every_hours)), 1) == 0:
            for s in self.sessions:
                s.maintain()
            if self.wf.mapping.target == "digits" and self.served.corrector is not None:
                self._event(check_corrector(self.served))  # reads only: keep, or fine-tune on the circuit as it is
        f_true, f_ref = self.fidelity_now = self.fidelity()
        c = [s.count for s in self.sessions]
        appeared_after = eng.faults_appeared()
        appeared = -1 if appeared_before is None else appeared_after - appeared_before
        row = (h, float(eng.time_s) / 3600, f_true, f_ref, sum(x.alarms for x in c), sum(x.repairs for x in c),
               sum(x.devices_reprogrammed for x in c), sum(x.faults_found for x in c), appeared)
        self.on_event({"event": "hour", "hour": h, "fidelity": f_true, "fidelity_reference": f_ref,
                       "vmm": sum(x.vmms for x in c), "chip_time_s": row[1] * 3600})
        return row

    def _event(self, rec: dict) -> None:
        self.on_event({**rec, "vmm": sum(s.count.vmms for s in self.sessions)})

    def summary(self) -> dict[str, Any]:
        s = self.sessions
        return {"fidelity_end": self.fidelity_now[0], "fidelity_reference_end": self.fidelity_now[1],
                "alarms": sum(x.count.alarms for x in s), "repairs": sum(x.count.repairs for x in s),
                "full_remaps": sum(x.count.full_remaps for x in s),
                "devices_reprogrammed": sum(x.count.devices_reprogrammed for x in s),
                "faults_found": sum(x.count.faults_found for x in s), "mapped_devices": sum(x.mm.devices for x in s),
                "fault_map_versions": len(self.versions), "pulses": int(self.engine.pulses)}

    def echo_line(self, row: tuple) -> str:
        what = "accuracy" if self.wf.mapping.target == "digits" else "1 - cos"
        truth = f"{what} {row[2]:.4g} " if np.isfinite(row[2]) else ""
        return (f"hour {row[0] + 1:4d}: {truth}(host's read-back 1 - cos {row[3]:.4g}), alarms {row[4]}, "
                f"repairs {row[5]}, device writes {row[6]}, faults found {row[7]}")


__all__ = ["ServiceLoop", "block_shapes", "window_engine", "check_stream", "inputs_per_vector", "TIMELINE_FIELDS"]
