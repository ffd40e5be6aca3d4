"""Defect configurations of seed 000 (II.B, II.C) laid on the circuit's four arrays.

A configuration is one spatial pattern of stuck pairs on one layer's logical array. The
paper leaves the geometry ambiguous on non-square arrays; every choice is a field of
:class:`DefectGeometry`:

* ``radius_reference="per_axis"``: radii are fractions of each axis, so the circle is an
  ellipse inscribed in the array at r = 0.5 ("r = 0.5 means the diameter is the array
  width", and the same along the rows). "width" and "min_dim" are the alternatives.
* row / column bands: four sizes from 1 line up to ``band_max_fraction`` of the lines
  (at least 4), i.e. 1..13 rows and 1..10 columns on layer 0 as the paper quotes.
* checkerboard: ``checker_block`` x ``checker_block`` cells, phase 0 (the complementary
  phase 1 is the unseen instance of the clean protocol).
* ``kind``: "off" (both cells at the largest gap, ~4.4 uS) or "on" (smallest gap).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from simulated_bench.faults import (PATTERN_SIZES, PATTERNS, STUCK_OFF, STUCK_ON, WORKING, PatternGeometry,
                                    coverage, pattern_mask)

N_SIZES = 4
RADIAL = ("circle", "ring", "circle_complement")


@dataclass(frozen=True)
class DefectGeometry:
    """Geometry choices for the patterns (see the module docstring)."""

    radius_reference: str = "per_axis"
    band_max_fraction: float = 0.2
    checker_block: int = 1
    ring_outer: float = 0.5
    kind: str = "off"

    def __post_init__(self) -> None:
        if self.kind not in ("off", "on"):
            raise ValueError(f"kind must be 'off' or 'on', got {self.kind!r}")
        if not 0 < self.band_max_fraction <= 1:
            raise ValueError(f"band_max_fraction must lie in (0, 1], got {self.band_max_fraction}")


def band_sizes(n_lines: int, max_fraction: float = 0.2) -> tuple[int, ...]:
    """Four band sizes from 1 to max(4, round(max_fraction * n_lines)) lines."""
    top = min(n_lines, max(N_SIZES, int(round(max_fraction * n_lines))))
    return tuple(int(round(s)) for s in np.linspace(1, top, N_SIZES))


def pattern_sizes(pattern: str, shape: tuple[int, int], geom: DefectGeometry) -> tuple[float, ...]:
    """The swept sizes of a pattern on an array of logical ``shape``."""
    if pattern in RADIAL:
        return PATTERN_SIZES[pattern]
    if pattern == "rows":
        return band_sizes(shape[0], geom.band_max_fraction)
    if pattern == "columns":
        return band_sizes(shape[1], geom.band_max_fraction)
    if pattern == "checkerboard":
        return (geom.checker_block,)
    raise ValueError(f"unknown pattern {pattern!r}; choose one of {', '.join(PATTERNS)}")


@dataclass(frozen=True)
class DefectConfig:
    """One defect instance: a pattern at one size and position on one layer."""

    pattern: str
    layer: int
    size_index: int
    center: tuple[float, float] = (0.5, 0.5)
    phase: int = 0  # checkerboard only: 1 = the complementary cells

    def mask(self, shape: tuple[int, int], geom: DefectGeometry) -> NDArray[np.bool_]:
        size = pattern_sizes(self.pattern, shape, geom)[self.size_index]
        pg = PatternGeometry(radius_reference=geom.radius_reference, center=self.center)
        m = pattern_mask(self.pattern, shape[0], shape[1], size, pg, outer_radius=geom.ring_outer)
        if self.pattern == "checkerboard" and self.phase % 2:
            m = ~m
        return m

    def codes(self, shape: tuple[int, int], geom: DefectGeometry) -> NDArray[np.int8]:
        stuck = STUCK_OFF if geom.kind == "off" else STUCK_ON
        return np.where(self.mask(shape, geom), stuck, WORKING).astype(np.int8)

    def size(self, shape: tuple[int, int], geom: DefectGeometry) -> float:
        return float(pattern_sizes(self.pattern, shape, geom)[self.size_index])

    def coverage(self, shape: tuple[int, int], geom: DefectGeometry) -> float:
        """Counted fraction of the layer's logical pairs that are stuck."""
        return coverage(self.mask(shape, geom))


def n_sizes(pattern: str) -> int:
    return 1 if pattern == "checkerboard" else N_SIZES


def paper_configs(patterns: tuple[str, ...] = PATTERNS, n_layers: int = 4) -> list[DefectConfig]:
    """Seed 000's 84 configurations: centred patterns, every size, every layer (pattern-major)."""
    return [DefectConfig(p, layer, s) for p in patterns for s in range(n_sizes(p)) for layer in range(n_layers)]


@dataclass(frozen=True)
class CleanInstances:
    """Which defect instances train, validate and test the corrector in the clean protocol.

    Training: the centred pattern plus ``n_train_jitter`` shifted centres, every size
    except ``held_out_size``. Validation (model selection): ``n_val_centres`` further
    centres at the training sizes, so selection rewards generalisation to new positions.
    Test: ``n_test_centres`` other centres at every size (the held-out size is only ever
    seen at test). Centres are offset by up to ``jitter`` (fraction of each axis). The
    checkerboard has no size or centre (seed 000: "fixed structure"): it keeps phase 0
    throughout unless ``checker_test_phase`` = 1 tests the complementary cells.
    """

    n_train_jitter: int = 1
    n_val_centres: int = 2
    n_test_centres: int = 1
    jitter: float = 0.15
    held_out_size: int = 2
    checker_test_phase: int = 0
    seed: int = 0


def _centres(rng: np.random.Generator, n: int, jitter: float) -> list[tuple[float, float]]:
    return [tuple(float(c) for c in 0.5 + rng.uniform(-jitter, jitter, 2)) for _ in range(n)]  # type: ignore[misc]


def clean_configs(inst: CleanInstances, patterns: tuple[str, ...] = PATTERNS,
                  n_layers: int = 4) -> tuple[list[DefectConfig], list[DefectConfig], list[DefectConfig]]:
    """(training, validation, test) instances of the clean protocol; positions never repeat."""
    rng = np.random.default_rng(inst.seed)
    train: list[DefectConfig] = []
    val: list[DefectConfig] = []
    test: list[DefectConfig] = []
    for p in patterns:
        if p == "checkerboard":
            train += [DefectConfig(p, layer, 0) for layer in range(n_layers)]
            val += [DefectConfig(p, layer, 0) for layer in range(n_layers)]
            test += [DefectConfig(p, layer, 0, phase=inst.checker_test_phase) for layer in range(n_layers)]
            continue
        tr_centres = [(0.5, 0.5), *_centres(rng, inst.n_train_jitter, inst.jitter)]
        va_centres = _centres(rng, inst.n_val_centres, inst.jitter)
        te_centres = _centres(rng, inst.n_test_centres, inst.jitter)
        for layer in range(n_layers):
            for s in range(N_SIZES):
                if s != inst.held_out_size:
                    train += [DefectConfig(p, layer, s, c) for c in tr_centres]
                    val += [DefectConfig(p, layer, s, c) for c in va_centres]
                test += [DefectConfig(p, layer, s, c) for c in te_centres]
    return train, val, test


def with_kind(geom: DefectGeometry, kind: str) -> DefectGeometry:
    return replace(geom, kind=kind)
