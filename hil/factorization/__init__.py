"""Fault-aware factorization mapping (seed 003): M ~ MA @ MB on two faulty crossbars.

Modules, one job each: ``faults`` (codes and the seed-003 random generator), ``metrics``
(1 - cos), ``rank`` (k versus rank(M)), ``solver`` (the structured solver), ``direct``
(differential-pair baseline), ``adam`` (the paper's optimiser as a baseline),
``programming`` (programming models), ``compensation`` (compensation layers), ``tiling``.
"""
from .adam import adam_factorize
from .compensation import CompensatedMapping, CompensationParams, compensate
from .direct import DirectMapping, direct_map
from .faults import STUCK_OFF, STUCK_ON, WORKING, no_faults, random_fault_codes, validate_codes
from .metrics import cosine_similarity, one_minus_cos
from .params import AdamParams, DeviceWindow, SolverParams
from .programming import GaussianProgramming, ideal_programming
from .rank import RankError, check_rank, numerical_rank
from .solver import Factorization, factorize
from .tiling import (TiledFactorization, choose_layout, map_tiled, random_blocked_codes, random_tile_codes,
                     remap_changed, tile_edges, tile_groups, zero_tile)

__all__ = [
    "AdamParams", "CompensatedMapping", "CompensationParams", "DeviceWindow", "DirectMapping",
    "Factorization", "GaussianProgramming", "RankError", "STUCK_OFF", "STUCK_ON",
    "SolverParams", "TiledFactorization", "WORKING", "adam_factorize", "check_rank",
    "compensate", "cosine_similarity", "direct_map", "factorize", "ideal_programming",
    "choose_layout", "map_tiled", "no_faults", "numerical_rank", "one_minus_cos", "random_fault_codes",
    "random_blocked_codes", "random_tile_codes", "remap_changed", "tile_edges", "tile_groups", "zero_tile", "validate_codes",
]
