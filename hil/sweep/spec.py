"""A sweep: a function and the parameter sets it runs on, each point seeded and keyed on its own.

A spec file (YAML)::

    function: hil.sweep.studies:factorization_point   # module:function, importable on every worker
    setup: hil.sweep.studies:factorization_warm_up    # optional, run once per worker (e.g. JIT warm-up)
    out: out/fig2                                      # result table directory (Parquet parts)
    fixed: {n: 16}                                     # the same for every point
    grid:                                              # Cartesian product of the lists
      rate: [0.0, 0.1, 0.2]
      k: [8, 16]
    points:                                            # or/and explicit parameter sets
      - {rate: 0.39, k: 16}
    seeds: 5                                           # seeds 0..4 for every point (or a list)

Every point is ``fixed | point | grid values | {"seed": s}``, called as ``function(**point)``;
its key is a hash of exactly those arguments, so running one point alone reproduces its
row, and a grid later extended (more seeds, another rate) only runs the new points.
"""
from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import yaml

_KNOWN = {"function", "setup", "out", "fixed", "grid", "points", "seeds", "name"}


class SpecError(ValueError):
    """A sweep or campaign file that cannot be run as written."""


def resolve(ref: str) -> Callable:
    """``"package.module:function"`` -> the function (imported where it is called)."""
    if not isinstance(ref, str) or ":" not in ref:
        raise SpecError(f"{ref!r} is not a function reference of the form 'package.module:function'")
    mod, _, name = ref.partition(":")
    try:
        fn = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError) as exc:
        raise SpecError(f"cannot import {ref!r}: {exc}") from exc
    if not callable(fn):
        raise SpecError(f"{ref!r} is not callable")
    return fn


def point_key(args: Mapping[str, Any]) -> str:
    """Stable key of one point: a hash of its arguments (canonical JSON)."""
    text = json.dumps(args, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    function: str
    out: str
    grid: Mapping[str, list] = field(default_factory=dict)
    points: list[Mapping[str, Any]] = field(default_factory=list)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None
    setup: str | None = None
    name: str = "sweep"

    def __post_init__(self) -> None:
        if not isinstance(self.grid, Mapping) or not all(isinstance(v, list) and v for v in self.grid.values()):
            raise SpecError("grid must map each parameter to a non-empty list of values")
        if not isinstance(self.points, list) or not all(isinstance(p, Mapping) for p in self.points):
            raise SpecError("points must be a list of parameter mappings")
        if not isinstance(self.fixed, Mapping):
            raise SpecError("fixed must be a mapping of parameter -> value")
        if self.seeds is not None and (not self.seeds or not all(isinstance(s, int) and s >= 0 for s in self.seeds)):
            raise SpecError("seeds must be a positive count or a list of non-negative integers")
        clash = set(self.grid) & set(self.fixed)
        if clash:
            raise SpecError(f"parameters both fixed and swept: {', '.join(sorted(clash))}")
        if self.seeds is not None and "seed" in set(self.grid) | set(self.fixed):
            raise SpecError("give seeds either as 'seeds:' or as a 'seed' parameter, not both")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str = ".") -> "SweepSpec":
        if not isinstance(data, Mapping):
            raise SpecError("a sweep file is a mapping with at least 'function' and 'out'")
        unknown = set(data) - _KNOWN
        if unknown:
            raise SpecError(f"unknown key(s) in sweep file: {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(_KNOWN))})")
        for key in ("function", "out"):
            if key not in data:
                raise SpecError(f"sweep file needs '{key}'")
        seeds = data.get("seeds")
        if isinstance(seeds, bool):
            raise SpecError("seeds must be a count or a list of integers")
        if isinstance(seeds, int):
            if seeds < 1:
                raise SpecError("seeds must be a positive count or a list of non-negative integers")
            seeds = list(range(seeds))
        out = str(data["out"])
        return cls(function=str(data["function"]), out=os.path.normpath(os.path.join(base_dir, out)),
                   grid=dict(data.get("grid") or {}), points=list(data.get("points") or []),
                   fixed=dict(data.get("fixed") or {}), seeds=seeds, setup=data.get("setup"),
                   name=str(data.get("name", "sweep")))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SweepSpec":
        """Read a YAML spec; a relative ``out`` is relative to the spec file's folder."""
        path = os.fspath(path)
        try:
            with open(path) as fh:
                data = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise SpecError(f"{path}: not valid YAML: {exc}") from exc
        return cls.from_dict(data, os.path.dirname(os.path.abspath(path)))

    def expand(self) -> list[dict[str, Any]]:
        """Every point's arguments, in grid order (points, then grid, then seeds)."""
        names = list(self.grid)
        combos = list(itertools.product(*(self.grid[n] for n in names)))
        seeds = self.seeds if self.seeds is not None else [None]
        out = []
        for base in self.points or [{}]:
            for combo in combos:
                for s in seeds:
                    args = {**self.fixed, **base, **dict(zip(names, combo))}
                    if s is not None:
                        args["seed"] = s
                    out.append(args)
        keys = [point_key(a) for a in out]
        if len(set(keys)) != len(keys):
            raise SpecError("the spec lists the same point more than once")
        return out

    def manifest(self) -> dict[str, Any]:
        return {"name": self.name, "function": self.function, "setup": self.setup, "grid": dict(self.grid),
                "fixed": dict(self.fixed), "points": list(self.points), "seeds": self.seeds}
