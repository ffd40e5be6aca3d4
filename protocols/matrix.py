"""Program a matrix onto the chip and measure what it computes (seed 003 Fig. 1, 3, 4).

Two mappings of a target M (m x n), both applied as ``u @ M`` (rows of M are inputs):

* factorized (seed 003): M ~ MA @ MB on two crossbars, MA (m x k) on array A, MB (k x n)
  on array B, each row one sign, so no differential pairs. MA's row signs are the input
  polarity (the voltage driven on that source line is ``sign * u``); MB's row signs are the
  bridge's sign register (Fig. 1e): the currents out of A are digitised and the sign is
  applied digitally before they drive B (this bench has no analog bridge; the digital
  bridge also rescales each vector to the input range, like an auto-ranging TIA + DAC).
  Compensation layers (Fig. 3b) sit on further arrays, share their stage's inputs and
  are summed with gains k_i after the TIAs (digitally here); each layer is fitted by
  :func:`hil.factorization.compensate` against the read-back of the layers before it.
* direct (seed 003 Fig. 1a, c): differential pairs, rows 2i / 2i+1 of a (2m x n) region
  carry M's row i positive / negative part and are driven with +u_i / -u_i; a
  compensation layer maps the read-back residual onto another pair array.

Conductance window and the zero entry: a fully RESET Stanford cell reads ~4.6 uS and a
stuck-OFF one ~4.5 uS, not 0. Every region is RESET first and its per-row floor read
back; matrix entries are conductances *above* that floor (target = floor + entry), and
the VMM subtracts the floor digitally (``sum_i v_i floor_i`` per output, from the read-back,
no reference column). Entries too small for ISPP (floor + entry below ``g_prog_min``)
round to the floor or to ``g_prog_min``, whichever is nearer. A stuck-OFF cell then
counts as ~0 as the factorization assumes. Stuck-ON cells read ~1.6 mS, far above the window
ISPP can reach, while the factorization pins them at ``g_max``: only compensation layers,
fitted against the read-back, see their true value (stuck-ON chips are not benchmarked).

Fault codes come from scans (:func:`scan_arrays`) or saved fault maps, never from the
chip's ground truth; unreliable cells are treated as stuck-OFF and left RESET.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hil.factorization import (CompensationParams, DeviceWindow, SolverParams, choose_layout, compensate,
                               direct_map, one_minus_cos, tile_groups, zero_tile)
from hil.factorization.verdict import tiled_exactness
from hil.faultmap import NOT_SCANNED, STUCK_OFF, STUCK_ON, UNRELIABLE, FaultMap
from hil.bench import Bench

from .ispp import ISPPParams, device_model, preset_for, program
from .read import ReadParams, read_all
from .scan import SCAN_PRESETS, STANFORD_SCAN, scan


@dataclass(frozen=True)
class MatrixParams:
    """How matrices are written and read (SI units). Defaults: Stanford 1T1R window."""

    g_max: float = 400e-6  # S above the floor: the top of the mapped window
    g_prog_min: float = 10e-6  # S, lowest absolute level ISPP is asked for
    v_in: float = 0.05  # V, largest input on a source line (the read voltage: same linear regime)
    v_gate: float = 3.0  # V on every word line during a VMM and the reads
    n_read: int = 4  # reads averaged for the floor and read-back
    n_vmm: int = 4  # VMMs averaged per input vector (read noise ~0.3-1.5 % per cell and read)
    ispp: ISPPParams | None = None  # None: the bench's device preset
    layer_gain: float = 0.125  # k_i / k_(i-1) of factorized compensation layers
    delta_g: float = 12e-6  # S, undershoot of non-final factorized layers (~3 sigma of ISPP at g_max)
    #: largest gain of a direct-mapping compensation layer (None: whatever its residual needs,
    #: so a second full-scale pair array patches the first one's stuck devices)
    direct_layer_gain: float | None = 0.125

    def window(self) -> DeviceWindow:
        return DeviceWindow(g_max=self.g_max)


@dataclass(frozen=True)
class Placement:
    """Where a crossbar block lives: array name and top-left cell."""

    array: str
    row0: int = 0
    col0: int = 0


@dataclass
class ChipLayer:
    """One programmed block: physical rows driven by logical inputs with signs, read-back conductances."""

    placement: Placement
    row_index: NDArray[np.intp]  # physical row -> logical input
    row_sign: NDArray[np.float64]  # +-1 per physical row (input polarity / sign register)
    gain: float  # weight of this layer's output in its stage (compensation k_i)
    floor: NDArray[np.float64]  # S per physical row, subtracted from every cell
    g_read: NDArray[np.float64]  # S, read-back after programming (absolute)
    codes: NDArray[np.int8]
    pulses: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        return self.g_read.shape  # type: ignore[return-value]

    def effective(self) -> NDArray[np.float64]:
        """Read-back conductance above the floor (S)."""
        return self.g_read - self.floor[:, None]

    def signed(self, n_in: int) -> NDArray[np.float64]:
        """The (n_in x cols) matrix this layer computes from its logical inputs, per the read-back (S)."""
        out = np.zeros((n_in, self.shape[1]))
        np.add.at(out, self.row_index, self.row_sign[:, None] * self.effective())
        return out


@dataclass
class ChipStage:
    layers: list[ChipLayer]
    n_in: int

    def readback(self) -> NDArray[np.float64]:
        return sum(l.gain * l.signed(self.n_in) for l in self.layers)


@dataclass
class ChipMatrix:
    """A matrix as programmed: stages applied in turn, ``scale`` S (direct) or S^2 (factorized) per unit of M."""

    kind: str  # "direct" | "factorized"
    stages: list[ChipStage]
    scale: float
    params: MatrixParams
    meta: dict = field(default_factory=dict)

    @property
    def devices(self) -> int:
        return sum(int(np.prod(l.shape)) for s in self.stages for l in s.layers)

    @property
    def pulses(self) -> int:
        return sum(l.pulses for s in self.stages for l in s.layers)

    def readback_matrix(self) -> NDArray[np.float64]:
        """The matrix the read-back conductances represent (M units)."""
        out = self.stages[0].readback()
        for s in self.stages[1:]:
            out = out @ s.readback()
        return out / self.scale

    def truncated(self, n_layers: int) -> "ChipMatrix":
        """The same chip matrix using only its first ``n_layers`` layers per stage (no reprogramming)."""
        stages = [ChipStage(s.layers[:n_layers], s.n_in) for s in self.stages]
        return dataclasses.replace(self, stages=stages, meta={**self.meta, "layers": n_layers})


# --- fault maps -----------------------------------------------------------------------------------
def scan_arrays(bench: Bench, arrays: Sequence[str] | None = None) -> dict[str, FaultMap]:
    """Scan every named array (default: all) for stuck devices; returns array name -> FaultMap."""
    out = {}
    for name in arrays or list(bench.arrays):
        bench.use_array(name)
        out[name] = scan(bench).faultmap
    return out


def region_codes(fm: FaultMap, pl: Placement, shape: tuple[int, int]) -> NDArray[np.int8]:
    """Codes 0 / 1 / 2 of a block for the mapping: unreliable cells count as stuck-OFF (left RESET)."""
    r, c = shape
    codes = fm.codes[pl.row0:pl.row0 + r, pl.col0:pl.col0 + c]
    if codes.shape != (r, c):
        raise ValueError(f"block {shape} at ({pl.row0}, {pl.col0}) does not fit array {pl.array} {fm.shape}")
    if np.any(codes == NOT_SCANNED):
        raise ValueError(f"array {pl.array}: cells of the block were never scanned")
    return np.where(codes == UNRELIABLE, STUCK_OFF, codes).astype(np.int8)


# --- writing one block ------------------------------------------------------------------------------
def _region(pl: Placement, shape: tuple[int, int]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    return np.arange(pl.row0, pl.row0 + shape[0]), np.arange(pl.col0, pl.col0 + shape[1])


def _read(bench: Bench, rows, cols, p: MatrixParams, ispp: ISPPParams) -> NDArray[np.float64]:
    return read_all(bench, ReadParams(ispp.v_read, p.v_gate, p.n_read), rows=rows, cols=cols).g


def write_block(bench: Bench, pl: Placement, targets: ArrayLike, codes: NDArray[np.int8],
                p: MatrixParams) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """RESET the block, read its per-row floor, ISPP ``floor + targets`` (S above the floor) into its
    working cells, read it back. Returns (absolute read-back S, floor S per row, pulses)."""
    tgt = np.asarray(targets, dtype=float)
    bench.use_array(pl.array)
    rows, cols = _region(pl, tgt.shape)
    ispp = p.ispp or preset_for(bench)
    sp = SCAN_PRESETS.get(device_model(bench), STANFORD_SCAN)
    for r in rows:
        bench.pulse_row(int(r), cols, -sp.reset_amp, sp.reset_width, sp.reset_gate)
    g0 = _read(bench, rows, cols, p, ispp)
    working = codes == 0
    floor = np.array([np.median(g0[i, working[i]]) if working[i].any() else np.nan for i in range(len(rows))])
    floor = np.where(np.isfinite(floor), floor, np.median(g0[working]) if working.any() else np.median(g0))
    absolute = floor[:, None] + np.maximum(tgt, 0.0)
    low = absolute < p.g_prog_min
    # too small for ISPP: the nearer of the floor (leave RESET) and the lowest programmable level
    to_floor = low & (absolute - floor[:, None] < (p.g_prog_min - floor[:, None]) / 2)
    absolute = np.where(low, p.g_prog_min, absolute)
    absolute[to_floor | ~working] = np.nan
    pulses = 0
    if np.isfinite(absolute).any():
        res = program(bench, absolute, ispp, rows=rows, cols=cols)
        pulses = int(res.pulses.sum())
    return _read(bench, rows, cols, p, ispp), floor, pulses


def _layer(bench, pl, targets, codes, p, row_index, row_sign, gain) -> ChipLayer:
    g, floor, pulses = write_block(bench, pl, targets, codes, p)
    return ChipLayer(pl, np.asarray(row_index, np.intp), np.asarray(row_sign, float), float(gain), floor, g,
                     codes, pulses)


# --- the two mappings --------------------------------------------------------------------------------
def program_direct(bench: Bench, matrix: ArrayLike, faultmaps: Mapping[str, FaultMap],
                   placements: Sequence[Placement], params: MatrixParams | None = None) -> ChipMatrix:
    """Differential-pair mapping of ``matrix`` with one layer per placement (later ones compensate).

    Layer 1 maps the largest |M| to ``g_max``; layer i > 1 maps the read-back residual
    alpha * M - (layers so far) onto its own pair block with gain max|residual| / g_max,
    at most ``direct_layer_gain`` (the residual clipped to what that gain can reach).
    """
    p = params or MatrixParams()
    m_ = np.asarray(matrix, dtype=float)
    m, n = m_.shape
    row_index, row_sign = np.repeat(np.arange(m), 2), np.tile([1.0, -1.0], m)
    layers: list[ChipLayer] = []
    alpha = p.g_max / np.abs(m_).max()
    for pl in placements:
        codes = region_codes(faultmaps[pl.array], pl, (2 * m, n))
        done = ChipStage(layers, m).readback() if layers else np.zeros_like(m_)
        residual = alpha * m_ - done
        if not np.any(residual):
            break
        if layers and p.direct_layer_gain is not None:
            # the compensation layer's fixed feedback ratio bounds what it can add (seed 003's
            # analog slicing): a residual beyond gain * g_max, e.g. from a stuck device, stays
            residual = np.clip(residual, -p.direct_layer_gain * p.g_max, p.direct_layer_gain * p.g_max)
        dm = direct_map(residual, codes, p.window())
        gain = 1.0 / dm.scale  # (G+ - G-) ~ dm.scale * residual
        targets = np.where(codes == 0, dm.g, 0.0)
        layers.append(_layer(bench, pl, targets, codes, p, row_index, row_sign, gain))
    return ChipMatrix("direct", [ChipStage(layers, m)], alpha, p, {"layers": len(layers)})


def program_factorized(bench: Bench, matrix: ArrayLike, k: int, faultmaps: Mapping[str, FaultMap],
                       placements_a: Sequence[Placement], placements_b: Sequence[Placement],
                       params: MatrixParams | None = None, rng: np.random.Generator | int = 0,
                       solver: SolverParams = SolverParams(max_iter=1000, converging_iter=0)) -> ChipMatrix:
    """Fault-aware factorization M ~ MA @ MB with one layer per (A, B) placement pair.

    The fault codes of every block come from ``faultmaps``; each layer after the first
    is fitted against the read-back of the layers before it (seed 003 Methods). The
    iteration cap bounds the compensation fits, which cannot reach the solver's tolerance
    (the read-back carries programming error) and gain nothing from more iterations
    (Re(DFT32), k = 17: 1 - cos 1.24e-4 after 1500 iterations, 1.20e-4 after 6000, 3x the time);
    the first layer's exact fit needs far fewer.
    """
    p = params or MatrixParams()
    rng = np.random.default_rng(rng)
    m_ = np.asarray(matrix, dtype=float)
    m, n = m_.shape
    if len(placements_a) != len(placements_b) or not placements_a:
        raise ValueError("need one A and one B placement per layer")
    codes_a = [region_codes(faultmaps[pl.array], pl, (m, k)) for pl in placements_a]
    codes_b = [region_codes(faultmaps[pl.array], pl, (k, n)) for pl in placements_b]
    queue = [(pl, c) for pair in zip(zip(placements_a, codes_a), zip(placements_b, codes_b)) for pl, c in pair]
    written: list[tuple[Placement, NDArray, NDArray, NDArray, int]] = []

    def chip_programmer(g_target: NDArray, _rng: np.random.Generator) -> NDArray:
        pl, codes = queue[len(written)]
        g, floor, pulses = write_block(bench, pl, g_target, codes, p)
        written.append((pl, codes, g, floor, pulses))
        return g - floor[:, None]  # what is there, stuck cells included: later layers fit against it

    comp = CompensationParams(layer_gain=p.layer_gain, delta_g=p.delta_g, enforce_stuck=False)
    cm = compensate(m_, codes_a, codes_b, chip_programmer, rng, p.window(), solver, comp)
    sa, sb = cm.sign_a.astype(float), cm.sign_b.astype(float)
    stages = [ChipStage([], m), ChipStage([], k)]
    for idx, (pl, codes, g, floor, pulses) in enumerate(written):
        layer_no, is_b = divmod(idx, 2)
        signs, n_rows = (sb, k) if is_b else (sa, m)
        stages[is_b].layers.append(ChipLayer(pl, np.arange(n_rows), signs, cm.gains[layer_no], floor, g, codes,
                                             pulses))
    meta = {"k": k, "layers": len(placements_a), "solver_one_minus_cos": cm.first.one_minus_cos if cm.first else None,
            "solver_tol": solver.tol, "readback_one_minus_cos_per_layer": cm.one_minus_cos_per_layer}
    return ChipMatrix("factorized", stages, cm.scale, p, meta)


@dataclass
class TiledChipMatrix:
    """A matrix larger than one array: block (i, j) of M is its own factorized ChipMatrix.

    ``blocks[(i, j)] = (rows, cols, cm)`` with ``rows``/``cols`` the line indices of M it covers;
    its inputs are ``u[rows]`` and its outputs add into ``y[cols]`` (digitally, as the
    periphery sums the tiles' outputs), each block in its own scale.
    """

    shape: tuple[int, int]
    blocks: dict[tuple[int, int], tuple[NDArray[np.intp], NDArray[np.intp], ChipMatrix]]
    kind: str = "factorized-tiled"
    meta: dict = field(default_factory=dict)

    @property
    def devices(self) -> int:
        return sum(cm.devices for _, _, cm in self.blocks.values())

    @property
    def pulses(self) -> int:
        return sum(cm.pulses for _, _, cm in self.blocks.values())

    def readback_matrix(self) -> NDArray[np.float64]:
        out = np.zeros(self.shape)
        for rows, cols, cm in self.blocks.values():
            out[np.ix_(rows, cols)] = cm.readback_matrix()
        return out


def program_tiled_factorized(bench: Bench, matrix: ArrayLike, k: int, faultmaps: Mapping[str, FaultMap],
                             pairs: Sequence[tuple[str, str]], tile: tuple[int, int],
                             params: MatrixParams | None = None, rng: np.random.Generator | int = 0,
                             solver: SolverParams = SolverParams(tol=1e-10)) -> TiledChipMatrix:
    """Factorized mapping of a matrix too large for one array: one (A, B) array pair per tile.

    M's rows and columns are cut into near-equal groups of at most ``tile`` (rows, cols), in
    the layout whose blocks are easiest to fit (``choose_layout``: contiguous or strided per
    axis), taken row-major; block t goes to ``pairs[t]`` as MA (block rows x k) and MB
    (k x block cols), each fitted to its own faults by the full solver (no compensation layers).
    An all-zero block is not programmed (``zero_tile``; listed in ``meta["zero_tiles"]``).
    """
    m_ = np.asarray(matrix, dtype=float)
    layout = choose_layout(m_, tile, solver.tol)
    rg, cg = tile_groups(m_.shape[0], tile[0], layout[0]), tile_groups(m_.shape[1], tile[1], layout[1])
    index = [(i, j) for i in range(len(rg)) for j in range(len(cg))]
    if len(pairs) < len(index):
        raise ValueError(f"{len(index)} tiles of {tile[0]} x {tile[1]} need {len(index)} array pairs, "
                         f"got {len(pairs)}")
    seeds = np.random.default_rng(rng).integers(0, 2**63, size=len(index))
    blocks = {}
    for (i, j), (a, b), seed in zip(index, pairs, seeds):
        rows, cols = rg[i], cg[j]
        if zero_tile(m_[np.ix_(rows, cols)]):
            continue  # adds nothing to any output: its pair stays unprogrammed
        blocks[(i, j)] = (rows, cols, program_factorized(bench, m_[np.ix_(rows, cols)], k, faultmaps, [Placement(a)],
                                                         [Placement(b)], params, rng=int(seed), solver=solver))
    return TiledChipMatrix(m_.shape, blocks, meta={"k": k, "tiles": len(index), "tile": list(tile),
                                                   "layout": list(layout),
                                                   "zero_tiles": [list(ix) for ix in index if ix not in blocks]})


def exactness(cm: ChipMatrix | TiledChipMatrix, matrix: ArrayLike) -> tuple[dict, list[str]] | None:
    """Whether the first layer's factorization of each tile could be exact on its arrays'
    fault maps: ``hil map``'s verdict per tile (``hil.factorization.verdict``), judged on
    the solver's fit against the solver's tol (programming error is the measured 1 - cos's
    business). An untiled factorized matrix is one tile (0, 0); None for the direct mapping.
    """
    m_ = np.asarray(matrix, dtype=float)
    if isinstance(cm, TiledChipMatrix):
        blocks = {ix: (m_[np.ix_(rows, cols)], c) for ix, (rows, cols, c) in cm.blocks.items()}
    elif cm.kind == "factorized":
        blocks = {(0, 0): (m_, cm)}
    else:
        return None
    tols = {c.meta["solver_tol"] for _, c in blocks.values()}
    fits = {ix: (blk, c.stages[0].layers[0].codes, c.stages[1].layers[0].codes, c.meta["solver_one_minus_cos"])
            for ix, (blk, c) in blocks.items()}
    return tiled_exactness(fits, max(tols))


# --- computing with it ----------------------------------------------------------------------------------
def apply(bench: Bench, cm: ChipMatrix, inputs: ArrayLike) -> NDArray[np.float64]:
    """``inputs @ M`` computed by the chip, one VMM per input vector and layer (M units).

    Each stage scales every vector to ``v_in`` at its largest entry, drives it with each
    row's sign, subtracts the floor current, sums its layers with their gains and undoes
    the input scale: the digital bridge between the crossbars.
    """
    if isinstance(cm, TiledChipMatrix):
        return _apply_tiled(bench, cm, inputs)
    x = np.atleast_2d(np.asarray(inputs, dtype=float)).copy()
    p = cm.params
    for stage in cm.stages:
        if x.shape[1] != stage.n_in:
            raise ValueError(f"inputs have {x.shape[1]} entries, the stage takes {stage.n_in}")
        peak = np.abs(x).max(axis=1)
        c = np.where(peak > 0, p.v_in / np.where(peak > 0, peak, 1.0), 0.0)
        out = None
        for layer in stage.layers:
            bench.use_array(layer.placement.array)
            r0, c0 = layer.placement.row0, layer.placement.col0
            n_r, n_c = layer.shape
            acc = np.zeros((x.shape[0], n_c))
            for v, (xi, ci) in enumerate(zip(x, c)):
                if ci == 0:
                    continue
                v_rows = ci * xi[layer.row_index] * layer.row_sign
                v_full = np.zeros(bench.rows)
                v_full[r0:r0 + n_r] = v_rows
                i_out = np.mean([bench.vmm(v_full, p.v_gate)[c0:c0 + n_c] for _ in range(p.n_vmm)], axis=0)
                acc[v] = i_out - v_rows @ layer.floor
            out = layer.gain * acc if out is None else out + layer.gain * acc
        x = out / np.where(c > 0, c, 1.0)[:, None]
    bench.outputs_off()
    return x / cm.scale


def _apply_tiled(bench: Bench, cm: TiledChipMatrix, inputs: ArrayLike) -> NDArray[np.float64]:
    x = np.atleast_2d(np.asarray(inputs, dtype=float))
    if x.shape[1] != cm.shape[0]:
        raise ValueError(f"inputs have {x.shape[1]} entries, the matrix takes {cm.shape[0]}")
    y = np.zeros((x.shape[0], cm.shape[1]))
    for rows, cols, block in cm.blocks.values():
        y[:, cols] += apply(bench, block, x[:, rows])
    return y


def measure_matrix(bench: Bench, cm: ChipMatrix) -> NDArray[np.float64]:
    """The represented matrix, row by row: the chip's output for each basis input."""
    n_in = cm.shape[0] if isinstance(cm, TiledChipMatrix) else cm.stages[0].n_in
    return apply(bench, cm, np.eye(n_in))


def r_squared(measured: ArrayLike, expected: ArrayLike) -> float:
    """Coefficient of determination of measured against expected outputs (the y = x line)."""
    y, e = np.ravel(measured), np.ravel(expected)
    return float(1.0 - np.sum((y - e) ** 2) / np.sum((e - e.mean()) ** 2))


def evaluate(bench: Bench, cm: ChipMatrix, matrix: ArrayLike, rng: np.random.Generator | int = 0,
             n_random: int = 64) -> dict:
    """Fidelity of a programmed matrix: 1 - cos of the measured matrix (basis inputs) and of the
    read-back, and r^2 of a VMM with ``n_random`` uniform [-1, 1] input vectors (seed 003 Fig. 3f)."""
    m_ = np.asarray(matrix, dtype=float)
    rng = np.random.default_rng(rng)
    measured = measure_matrix(bench, cm)
    x = rng.uniform(-1.0, 1.0, size=(n_random, m_.shape[0]))
    y = apply(bench, cm, x)
    layers = 1 if isinstance(cm, TiledChipMatrix) else len(cm.stages[0].layers)
    return {"kind": cm.kind, "layers": layers, "devices": cm.devices, "pulses": cm.pulses,
            "one_minus_cos": one_minus_cos(measured, m_), "one_minus_cos_readback": one_minus_cos(cm.readback_matrix(), m_),
            "r2": r_squared(y, x @ m_), "measured": measured, "vmm_expected": x @ m_, "vmm_measured": y, **{
                k: v for k, v in cm.meta.items() if k not in ("layers",)}}


# --- the 2D-DFT image workload (seed 003 Fig. 4) -------------------------------------------------------
def dft_parts(n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """C = cos(2 pi jk / n) and S = sin(2 pi jk / n): the n-point DFT matrix is C - iS."""
    jk = np.outer(np.arange(n), np.arange(n))
    return np.cos(2 * np.pi * jk / n), np.sin(2 * np.pi * jk / n)


Apply = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def block_dft2(image: ArrayLike, apply_c: Apply, apply_s: Apply, block: int = 32) -> NDArray[np.complex128]:
    """2D DFT of every ``block`` x ``block`` tile by two 1D passes through real matrices.

    ``apply_c(U)`` / ``apply_s(U)`` return U @ C / U @ S (on the chip, or exactly). With W = C - iS
    (symmetric): P = C X, Q = S X (columns of X as inputs), then Y = (P - iQ) W gives
    Re Y = P C - Q S and Im Y = -(P S + Q C) (rows of P, Q as inputs).
    """
    img = np.asarray(image, dtype=float)
    h, w = img.shape
    if h % block or w % block:
        raise ValueError(f"image {img.shape} is not a whole number of {block}x{block} blocks")
    tiles = img.reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3).reshape(-1, block, block)
    # stage 1: columns of each tile as input rows; P^T = X^T C
    cols_in = tiles.transpose(0, 2, 1).reshape(-1, block)
    p_rows = apply_c(cols_in).reshape(-1, block, block).transpose(0, 2, 1).reshape(-1, block)
    q_rows = apply_s(cols_in).reshape(-1, block, block).transpose(0, 2, 1).reshape(-1, block)
    both = np.vstack([p_rows, q_rows])
    pc_qc = apply_c(both)
    ps_qs = apply_s(both)
    half = p_rows.shape[0]
    re = pc_qc[:half] - ps_qs[half:]
    im = -(ps_qs[:half] + pc_qc[half:])
    y = (re + 1j * im).reshape(-1, block, block)
    return y.reshape(h // block, w // block, block, block).transpose(0, 2, 1, 3).reshape(h, w)


def block_idft2(spectrum: ArrayLike, block: int = 32) -> NDArray[np.float64]:
    """Ideal inverse of :func:`block_dft2` (real part), tile by tile."""
    y = np.asarray(spectrum)
    h, w = y.shape
    t = y.reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3)
    x = np.real(np.fft.ifft2(t, axes=(-2, -1)))
    return x.transpose(0, 2, 1, 3).reshape(h, w)


def snr_db(reference: ArrayLike, reconstructed: ArrayLike) -> float:
    """10 log10(sum ref^2 / sum (ref - rec)^2)."""
    ref, rec = np.asarray(reference, float), np.asarray(reconstructed, float)
    err = float(np.sum((ref - rec) ** 2))
    return float("inf") if err == 0 else float(10 * np.log10(np.sum(ref ** 2) / err))


__all__ = ["MatrixParams", "Placement", "ChipLayer", "ChipStage", "ChipMatrix", "scan_arrays", "region_codes",
           "write_block", "program_direct", "program_factorized", "apply", "measure_matrix", "r_squared", "evaluate",
           "dft_parts", "block_dft2", "block_idft2", "snr_db"]
