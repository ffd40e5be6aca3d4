"""The simulated chip of a bench file: its arrays, device model, variation and faults.

Takes the ``chip`` section of a simulated bench file as a plain mapping (validated for
names and types by ``hil.benchfile``) and builds one :class:`SimulatedArray` per array.
Every random draw derives from the chip seed, so the same file gives the same chip.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..aging import AgingParams
from ..array import SimulatedArray, VariationParams
from ..crossbar import WireParams
from ..faults import pattern_fault_codes, random_fault_codes, validate_codes

FAULT_KINDS = ("none", "random", "pattern", "file")


def fault_codes_for(spec: Mapping[str, Any] | None, rows: int, cols: int, seed: int,
                    base_dir: Path | None = None) -> np.ndarray | None:
    """Fault codes of one array from a ``faults`` mapping (``kind`` none/random/pattern/file)."""
    if not spec or spec.get("kind", "none") == "none":
        return None
    kind = spec["kind"]
    if kind == "random":
        return random_fault_codes(rows, cols, float(spec.get("rate_off", 0.0)), float(spec.get("rate_on", 0.0)),
                                  rng=int(spec.get("seed", seed)))
    if kind == "pattern":
        return pattern_fault_codes(spec["pattern"], rows, cols, spec.get("size"), spec.get("stuck", "off"))
    if kind == "file":
        path = Path(spec["path"])
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return validate_codes(np.load(path, allow_pickle=False), (rows, cols))
    raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(FAULT_KINDS)}")


def build_arrays(chip: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, SimulatedArray]:
    """One SimulatedArray per entry of ``chip["arrays"]`` (name, rows, cols, optional faults/seed).

    ``chip["engine"]`` "spice" builds SPICE-backed arrays (ngspice; small arrays only);
    ``chip["wires"]`` ({r_wl, r_bl, r_sl} ohms per segment) gives the lines resistance;
    ``chip["aging"]`` ({stuck: {...}, drift: {...}, read_disturb: {...}}, see
    :mod:`simulated_bench.aging`) makes the chip age with use and time.
    """
    array_cls = SimulatedArray
    if chip.get("engine", "numpy") == "spice":
        from ..spice.engine import SpiceArray  # spicelib loads only for SPICE benches
        array_cls = SpiceArray
    wires = WireParams(**chip["wires"]) if chip.get("wires") else None
    seed = int(chip.get("seed", 0))
    variation = VariationParams(**chip.get("variation", {}))
    model = chip.get("device_model", "stanford_gap")
    aging = AgingParams.from_mapping(chip["aging"]) if chip.get("aging") is not None else None
    arrays = {}
    children = np.random.SeedSequence(seed).spawn(len(chip["arrays"]))
    for k, (entry, child) in enumerate(zip(chip["arrays"], children)):
        rows, cols = int(entry["rows"]), int(entry["cols"])
        faults = entry.get("faults", chip.get("faults"))
        if "faults" not in entry and faults and "seed" in faults:
            # a chip-level seed names the chip, not one map: each array draws its own
            faults = {**faults, "seed": int(faults["seed"]) + k}
        codes = fault_codes_for(faults, rows, cols, seed + k, base_dir)
        arrays[str(entry["name"])] = array_cls(
            rows, cols, model=model, variation=variation, fault_codes=codes, wires=wires, aging=aging,
            seed=np.random.default_rng(entry.get("seed", child)),
            initial_state=entry.get("initial_state", chip.get("initial_state", "off")))
    return arrays
