"""The service workflow file (``hil service WORKFLOW.yaml``): what to map, on what chip, and what to serve.

Example::

    name: dft64-week
    seed: 0
    bench: aging_bench.yaml     # the bench it runs on (relative to this file); the chip, its arrays
                                # (named A and B for a matrix, L0..L3 for the digits network) and, on
                                # the simulated bench, its aging (chip: aging:) are the bench file's
    mapping:
      target: dft_real          # dft_real (Re of the n-point DFT) | file | digits (the seed-000 network)
      n: 64
      k: 64
      checksums: true           # analog checksum columns M.1, M.w on both arrays
      # tile: [32, 32]          # split into tiles, each on its own arrays: a fault re-solves its tile only
      # layout: auto            # tiles of contiguous or strided (every p-th) lines; auto: fewer directions
    stream:
      workload: random          # random | dft_image | digits | file
      vectors_per_hour: 200
      hours: 24
      maintain_every_hours: 1   # re-read the references (reads only)
    service: {n_calibrate: 256} # optional: hil.service.ServiceParams numbers and flags, e.g.
                                # patch: false (analog-only repairs; default: new stuck devices are
                                # patched digitally, then absorbed by the analog refit where cheap),
                                # patch_absorb_writes: 4, patch_write_budget: 0.005, patch_max_frac: 0.05
    # corrector: {fit_images: 600, val_images: 200, alpha: 0.05}   # digits only (the default): the
                                # corrector's labelled images and test level (hil.service.network)
    bench_io: {n_vmm: 4}        # optional: the bench's VMM / read averaging and voltages
                                # (protocols.matrix.MatrixParams: v_in, v_gate, n_read, n_vmm, g_prog_min)

``hours`` below 1 serve one step of that length (a real bench waits for real time).
``chip:`` instead of ``bench:`` describes a conductance-level simulated chip
(:mod:`simulated_bench.window_array`): the studies' fast backend (``benchmarks/reprogram.py``,
:func:`hil.service.loop.window_engine`), not what ``hil service`` runs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, Optional

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from simulated_bench.aging import AgingParams


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChipSpec(_Strict):
    initial_fault_rate: float = Field(0.10, ge=0.0, le=0.5)
    aging: dict[str, Any] | None = None
    read_noise_scale: float = Field(1.0, ge=0.0, le=10.0)

    @field_validator("aging")
    @classmethod
    def _aging(cls, v):
        if v is not None:
            AgingParams.from_mapping(v)  # raises ValueError with the section and key
        return v

    def aging_params(self) -> AgingParams | None:
        return None if self.aging is None else AgingParams.from_mapping(self.aging)


class MappingSpec(_Strict):
    target: Literal["dft_real", "file", "digits"] = "dft_real"
    n: int = Field(64, ge=2, le=256)
    k: int | None = Field(None, ge=1, le=512)
    path: str | None = None
    checksums: bool = True
    tile: tuple[int, int] | None = None  #: (rows, cols) of a tile: each its own pair of arrays and session
    #: which lines share a tile (hil.factorization.tiling): auto picks contiguous or strided per axis
    layout: Literal["auto", "contiguous", "strided"] = "auto"

    @model_validator(mode="after")
    def _needs_path(self):
        if self.tile is not None and (min(self.tile) < 2 or self.target == "digits"):
            raise ValueError("tile needs two sizes >= 2 and a matrix target")
        if self.target == "file" and not self.path:
            raise ValueError("target 'file' needs path: a .npy matrix (rows = inputs)")
        return self


class StreamSpec(_Strict):
    workload: Literal["random", "dft_image", "digits", "file"] = "random"
    path: str | None = None
    vectors_per_hour: int = Field(200, ge=1, le=100_000)
    hours: float = Field(24.0, gt=0, le=24 * 365)
    #: hours served between maintenances (reference re-reads); the loop maintains between hours, so a whole
    #: number, or below 1 for every hour
    maintain_every_hours: float = Field(1.0, gt=0, le=24 * 365)

    @model_validator(mode="after")
    def _needs_path(self):
        if self.workload == "file" and not self.path:
            raise ValueError("workload 'file' needs path: a .npy of input vectors (one per row)")
        m = self.maintain_every_hours
        if m > 1 and m != int(m):
            raise ValueError(f"maintain_every_hours must be a whole number of hours (the loop maintains between "
                             f"hours) or below 1 for every hour, got {m}")
        return self


class CorrectorSection(_Strict):
    """The digits network's corrector (:mod:`hil.service.network`): trained after programming on labelled images
    of the network's training split read through the chip, checked at every maintenance, fine-tuned when its
    paired test fires or a repair wrote devices. The test images (fidelity) are never among them."""

    enabled: bool = True
    fit_images: int = Field(600, ge=50)
    val_images: int = Field(200, ge=20)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)  #: level of the one-sided paired test of the calibration loss

    @model_validator(mode="after")
    def _fits_the_split(self):
        from hil.networks.digits import PAPER_TEST_IMAGES

        held = 1797 - PAPER_TEST_IMAGES  # the digits training split: where the lab's labelled images come from
        if self.fit_images + self.val_images > held:
            raise ValueError(f"fit_images + val_images must be <= {held} (the network's training split)")
        return self


class Workflow(_Strict):
    name: str = "service"
    seed: int = Field(0, ge=0)
    bench: Optional[str] = None  #: bench file (relative to the workflow file)
    chip: ChipSpec = ChipSpec()
    #: overrides of the loop's settings (:class:`hil.service.ServiceParams`, plain numbers and flags)
    service: dict[str, Any] = {}
    #: overrides of the bench's read and VMM settings (:class:`protocols.matrix.MatrixParams`: v_in, v_gate,
    #: n_read, n_vmm, g_prog_min), checked when the run opens its bench
    bench_io: dict[str, Any] = {}

    @field_validator("service")
    @classmethod
    def _service(cls, v):
        service_params(v)  # names the unknown key or the bad value
        return v
    mapping: MappingSpec = MappingSpec()
    stream: StreamSpec = StreamSpec()
    corrector: CorrectorSection = CorrectorSection()  #: the digits network only

    @model_validator(mode="after")
    def _consistent(self):
        if self.bench is not None and "chip" in self.model_fields_set:
            raise ValueError("give bench (the bench file, whose chip section holds the chip and its aging) or chip "
                             "(the conductance-level study chip), not both")
        if (self.mapping.target == "digits") != (self.stream.workload == "digits"):
            raise ValueError("the digits workload and the digits mapping go together")
        if "corrector" in self.model_fields_set and self.mapping.target != "digits":
            raise ValueError("corrector: is the digits network's (mapping.target: digits)")
        return self


def service_params(overrides: Mapping[str, Any]):
    """:class:`hil.service.ServiceParams` with ``overrides`` of its plain (number / flag) fields."""
    import dataclasses

    from .session import ServiceParams

    plain = {f.name: f.type for f in dataclasses.fields(ServiceParams) if f.type in ("int", "float", "bool")}
    for key, value in overrides.items():
        if key not in plain:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(plain)}")
        if isinstance(value, bool) != (plain[key] == "bool") or not isinstance(value, (int, float)):
            raise ValueError(f"{key} must be {'an' if plain[key] == 'int' else 'a'} {plain[key]}, got {value!r}")
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
    p = ServiceParams(**overrides)
    if p.n_calibrate < 16 or p.n_probe < 1 or p.buffer < 1:
        raise ValueError("n_calibrate >= 16, n_probe >= 1 and buffer >= 1 required")
    for key, most in COUNT_LIMITS.items():  # a typo such as 1000000 would run for days before it said anything
        if getattr(p, key) > most:
            raise ValueError(f"{key} is at most {most:,}, got {getattr(p, key)!r}")
    for key in ("patch_write_budget", "patch_max_frac"):
        if getattr(p, key) > 1:
            raise ValueError(f"{key} is a fraction of the mapped devices / MACs, at most 1, got {getattr(p, key)!r}")
    return p


#: most VMMs / vectors a service count setting may ask for: far above any useful value, far below a typo's
COUNT_LIMITS = {"n_calibrate": 100_000, "n_probe": 4096, "buffer": 100_000}


class WorkflowError(ValueError):
    """A workflow file that cannot be run, with the field and the problem."""


def load_workflow(path: str | Path) -> tuple[Workflow, str]:
    """Parse and validate a workflow file; returns it and its text (recorded in the run file)."""
    text = Path(path).read_text()
    return parse_workflow(text, Path(path).parent), text


def parse_workflow(text: str, base_dir: Path | None = None) -> Workflow:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkflowError(f"not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise WorkflowError("a workflow file is a mapping with name, seed, chip, mapping, stream")
    if "instruments" in data or "wiring" in data:
        raise WorkflowError("this is a bench file (it has instruments / wiring), not a workflow: name it in the "
                            "workflow's bench: or give it as --bench (examples/service/dft16_day.yaml is a workflow)")
    try:
        wf = Workflow.model_validate(data)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or 'workflow'}: {e['msg']}" for e in exc.errors()]
        raise WorkflowError("; ".join(lines)) from None
    for spec in (wf.mapping, wf.stream):
        if getattr(spec, "path", None) and base_dir is not None and not Path(spec.path).is_absolute():
            spec.path = str(base_dir / spec.path)
    if wf.bench and base_dir is not None and not Path(wf.bench).is_absolute():
        wf.bench = str(base_dir / wf.bench)
    return wf


def target_matrix(spec: MappingSpec) -> np.ndarray:
    """The matrix to map (inputs along rows)."""
    if spec.target == "dft_real":
        jk = np.outer(np.arange(spec.n), np.arange(spec.n))
        return np.cos(2 * np.pi * jk / spec.n)
    if spec.target == "file":
        m = _vectors_or_matrix(spec.path, "mapping.path")
        if not np.all(np.isfinite(m)) or not np.any(m):
            raise WorkflowError(f"mapping.path {spec.path}: need a finite, non-zero 2-D matrix, got shape {m.shape}")
        return m
    raise WorkflowError("the digits mapping has no single matrix")


def _vectors_or_matrix(path: str, field: str) -> np.ndarray:
    """The 2-D real array of a workflow's .npy file; :class:`WorkflowError` naming ``field`` otherwise."""
    from hil.npyfile import read_npy

    try:
        return read_npy(path, field, ndim=2)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None


def workload(spec: StreamSpec, n_in: int, rng: np.random.Generator):
    """An endless generator of input batches (vectors_per_hour, n_in) for the stream."""
    if spec.workload == "random":
        while True:
            yield rng.uniform(-1.0, 1.0, (spec.vectors_per_hour, n_in))
    if spec.workload == "file":
        data = _vectors_or_matrix(spec.path, "stream.path")
        if data.shape[0] == 0 or data.shape[1] != n_in:
            raise WorkflowError(f"stream.path {spec.path}: need vectors of {n_in} entries (one per row), got an "
                                f"array of shape {data.shape}")
        bad = np.flatnonzero(~np.all(np.isfinite(data), axis=1))
        if bad.size:
            raise WorkflowError(f"stream.path {spec.path}: {bad.size} vector(s) hold NaN or inf (first: row "
                                f"{bad[0]}); every input must be a finite number")
        pool = data
    elif spec.workload == "dft_image":
        pool = image_vectors(n_in)
    else:
        from hil.networks.digits import load_digits_data

        pool = load_digits_data()[0]
    i = 0
    while True:
        idx = (i + np.arange(spec.vectors_per_hour)) % len(pool)
        i += spec.vectors_per_hour
        yield pool[idx]


def image_vectors(n: int) -> np.ndarray:
    """Seed 003's image workload: the columns of every n x n tile of a grayscale image, zero-mean."""
    from sklearn.datasets import load_sample_image

    rgb = load_sample_image("china.jpg").astype(float) / 255.0
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    h, w = (gray.shape[0] // n) * n, (gray.shape[1] // n) * n
    tiles = gray[:h, :w].reshape(h // n, n, w // n, n).transpose(0, 2, 3, 1).reshape(-1, n)
    return tiles - tiles.mean()


__all__ = ["Workflow", "WorkflowError", "load_workflow", "parse_workflow", "target_matrix", "workload",
           "image_vectors"]
