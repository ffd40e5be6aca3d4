"""Keeping a mapped matrix correct in service: checksums, syndromes, localisation, incremental repair.

Modules, one job each: ``mapping`` (stages and checksum columns on the faulty arrays),
``checks`` (syndromes, drift estimate, CUSUM), ``localise`` (line then cell from a few
VMMs), ``refit`` (incremental re-factorization with the fewest writes), ``engine`` (what
the loop needs from a chip, and the conductance-level chip behind it), ``session`` (the
loop's decisions, recorded), ``loop`` (scan, map, program, verify, serve hour by hour: the
one loop both backends run; the bench's engine is ``protocols.service_engine.BenchEngine``).
"""
from .checks import Alarm, CheckParams, Detector, DriftEvent, StageChecks
from .engine import EngineParams, WindowEngine
from .localise import Localisation, localise
from .mapping import MappedMatrix, Stage, map_direct, map_factorized, stage_checksum_columns
from .refit import RefitParams, RepairPlan, plan_full_remap, plan_repair
from .session import ServiceParams, ServiceSession

__all__ = ["Alarm", "CheckParams", "Detector", "DriftEvent", "StageChecks", "EngineParams", "WindowEngine",
           "Localisation", "localise", "MappedMatrix", "Stage", "stage_checksum_columns", "map_direct", "map_factorized",
           "RefitParams", "RepairPlan", "plan_full_remap", "plan_repair", "ServiceParams",
           "ServiceSession"]
