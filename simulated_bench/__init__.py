"""The simulated chip and bench: compact models, 1T1R cells, arrays, faults, instrument emulators.

Stands on numpy/scipy (and spicelib for the SPICE engine) only; nothing of ours.
"""
from .array import NO_VARIATION, ChipTiming, SimulatedArray, VariationParams, default_cell, make_model
from .cell import CellConfig, CellParams, solve_cell
from .devices.cute_multilevel import CuTeMultilevelModel, CuTeParams
from .devices.stanford import StanfordGapModel, StanfordGapParams
from .faults import (PATTERN_SIZES, PATTERNS, STUCK_OFF, STUCK_ON, WORKING, PatternGeometry, pattern_fault_codes,
                     pattern_mask, random_fault_codes, validate_codes)
from .transistor import NmosParams, sized_for

__all__ = [
    "SimulatedArray", "VariationParams", "NO_VARIATION", "ChipTiming", "default_cell", "make_model",
    "CellConfig", "CellParams", "solve_cell", "CuTeMultilevelModel", "CuTeParams", "StanfordGapModel",
    "StanfordGapParams", "PATTERN_SIZES", "PATTERNS", "STUCK_OFF", "STUCK_ON", "WORKING", "PatternGeometry",
    "pattern_fault_codes", "pattern_mask", "random_fault_codes", "validate_codes", "NmosParams", "sized_for",
]
