"""SPICE netlists built from the same parameter dataclasses the numpy models use.

Elements
--------
* Stanford-PKU gap memristor (:class:`StanfordGapParams`) as behavioural sources. The
  gap is a voltage on a state node, one volt per nanometre, integrated on a 1 nF
  capacitor fed by a current equal to dg/dt in m/s (so dV/dt is dg/dt in nm/s). The
  rate keeps the model's ``F_min`` field threshold and steady-state self-heating and
  stops at the gap bounds; a per-instance factor ``kr`` scales it (a cell's
  device-to-device and cycle-to-cycle rate factor, 0 for a cell that must not move).
  A frozen-state variant (gap as a subcircuit parameter) serves DC operating points,
  where read voltages stay below the switching threshold anyway.
* NMOS access transistor (:class:`NmosParams`) as a SPICE level-1 MOSFET: KP, VTO and
  LAMBDA are the square law of ``simulated_bench.transistor`` (W = W/L um, L = 1 um),
  bulk junction currents off, and a drain-source resistor of ``1/g_off``.
* 1T1R cell in MOD or MOS (:class:`CellParams`), and a crossbar of rows x cols cells.

Expressions use only functions LTspice and ngspice share (``u()``, ``sinh``, ``exp``,
``abs``), and node names are flat (no subcircuit-internal nodes are ever read), so the
same text runs on both simulators.

Crossbar geometry (the fast solver in ``simulated_bench.crossbar`` uses the same):
row i has word line WL_i and source line SL_i, both driven from the column-0 end,
``wld{i}`` -R- ``wl{i}_0`` -R- ... -R- ``wl{i}_{C-1}`` (likewise ``sld``/``sl``);
column j has bit line BL_j, terminated at the last row's end,
``bld{j}`` -R- ``bl{j}_{R-1}`` -R- ... -R- ``bl{j}_0``. Cell (i, j) sits between
``bl{j}_{i}`` and ``sl{i}_{j}`` with its gate on ``wl{i}_{j}``. A zero segment
resistance merges a line's nodes with its driver. The drivers are the voltage sources
``vwl{i}``, ``vbl{j}``, ``vsl{i}`` from the driver node to ground; SPICE reports their
current into the driver node, so the current a driver delivers is minus that.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..cell import CellConfig, CellParams
from ..crossbar import WireParams
from ..devices.stanford import K_B, NM, Q_E, StanfordGapParams
from ..transistor import NmosParams

#: capacitance of the gap integrator (F): with a current equal to dg/dt in m/s, the
#: node voltage moves at dg/dt in nm/s, i.e. one volt per nanometre of gap
GAP_CAP = 1e-9
#: channel length used to express W/L as W and L (m)
CHANNEL_LENGTH = 1e-6

#: rise and fall time of a pulse as a fraction of its width
EDGE_FRACTION = 1e-5

MEM_DYN = "rram_gap"  # memristor with a gap state node (pins: te be gap)
MEM_READ = "rram_gap_read"  # memristor with a frozen gap (pins: te be; parameter gap in nm)
NMOS_MODEL = "nmos_cell"


def num(x: float) -> str:
    """A float written exactly enough for SPICE (17 significant digits)."""
    return f"{float(x):.17g}"


# memristor ---------------------------------------------------------------------------------
def _current_expr(p: StanfordGapParams, gap_nm: str, v: str) -> str:
    """Device current (A) for a gap expression in nm and a voltage expression in V."""
    return f"{num(p.I0)}*exp(-({gap_nm})/{num(p.g0 / NM)})*sinh(({v})/{num(p.V0)})"


def _rate_expr(p: StanfordGapParams, gap_nm: str, v: str) -> str:
    """dg/dt in m/s (the integrator's current), with F_min threshold, self-heating and bounds."""
    gamma = f"({num(p.gamma0)}-{num(p.beta)}*({gap_nm})*({gap_nm})*({gap_nm}))"
    temp = f"({num(p.T0)}+abs(({v})*{_current_expr(p, gap_nm, v)})*{num(p.Rth)})"
    kt_q = f"({num(K_B / Q_E)}*{temp})"  # thermal voltage, V
    rate = (f"-{num(p.v0)}*exp(-{num(p.Ea)}/{kt_q})"
            f"*sinh({gamma}*{num(p.a0 / p.tox)}*({v})/{kt_q})")
    threshold = f"u({gamma}*abs({v})/{num(p.tox)}-{num(p.F_min)})"
    # SET (v > 0) shrinks the gap down to g_min, RESET grows it up to g_max
    bounds = (f"(u({v})*u(({gap_nm})-{num(p.g_min / NM)})"
              f"+u(-({v}))*u({num(p.g_max / NM)}-({gap_nm})))")
    return f"{rate}*{threshold}*{bounds}"


def stanford_subckts(p: StanfordGapParams) -> str:
    """Both memristor subcircuits: dynamic (gap state node pinned out) and frozen-gap."""
    v = "v(te,be)"
    return "\n".join([
        "* Stanford-PKU gap memristor; gap node in volts = nanometres",
        f".subckt {MEM_DYN} te be gap params: kr=1",
        f"Bmem te be i={_current_expr(p, 'v(gap)', v)}",
        f"Bgap 0 gap i=kr*{_rate_expr(p, 'v(gap)', v)}",
        f"Cgap gap 0 {num(GAP_CAP)}",
        f".ends {MEM_DYN}",
        f".subckt {MEM_READ} te be params: gap={num(p.g_max / NM)}",
        f"Bmem te be i={_current_expr(p, 'gap', v)}",
        f".ends {MEM_READ}",
    ])


def nmos_model(p: NmosParams) -> str:
    """Level-1 MOSFET model card with the square law of ``NmosParams``."""
    return (f".model {NMOS_MODEL} nmos (level=1 kp={num(p.k_prime)} vto={num(p.v_th)} "
            f"lambda={num(p.lambda_clm)} is=0 js=0)")


def cell_lines(cell: CellParams, name: str, bl: str, sl: str, wl: str, x: str,
               gap: str | float, dynamic: bool, rate_factor: float = 1.0, sense: bool = False) -> list[str]:
    """Element lines of one 1T1R cell between nodes ``bl`` and ``sl``, gate ``wl``, mid node ``x``.

    ``gap`` is the state node name (dynamic) or the frozen gap in metres. With ``sense``
    a 0 V source ``vs{name}`` in series at the bit-line side carries the cell current
    (BL -> SL positive).
    """
    nm = cell.nmos
    lines = []
    if sense:
        lines.append(f"Vs{name} {bl} t{name} 0")
        bl = f"t{name}"
    te, be = (bl, x) if cell.config is CellConfig.MOD else (x, sl)
    d, s = (x, sl) if cell.config is CellConfig.MOD else (bl, x)
    mem = (f"Xm{name} {te} {be} {gap} {MEM_DYN} kr={num(rate_factor)}" if dynamic
           else f"Xm{name} {te} {be} {MEM_READ} gap={num(float(gap) / NM)}")
    return lines + [
        mem,
        f"Mn{name} {d} {wl} {s} 0 {NMOS_MODEL} w={num(nm.w_over_l * CHANNEL_LENGTH)} l={num(CHANNEL_LENGTH)}",
        f"Rn{name} {d} {s} {num(1.0 / nm.g_off)}",
    ]


def header(p: StanfordGapParams, cell: CellParams, title: str) -> list[str]:
    return [f"* {title}", stanford_subckts(p), nmos_model(cell.nmos)]


def accuracy_options(reltol: float = 1e-9) -> str:
    """Tight Newton tolerances: the agreement checks compare at 1e-6 relative."""
    return f".options reltol={num(reltol)} abstol=1e-15 vntol=1e-12 chgtol=1e-20 gmin=1e-15 itl1=500 itl4=200"


def transient_cards(width: float, edge: float, points: int = 2000) -> str:
    """Options and ``.tran`` for a pulse of ``width`` (s) with edges ``edge``: ``points`` steps at most.

    Tight tolerances and second-order Gear keep the integrated gap within about 1e-4 of
    its change (1e-6 for SET); the run ends after the falling edge.
    """
    t_stop = 3 * edge + (width - edge)
    return "\n".join([
        ".options reltol=1e-7 abstol=1e-15 vntol=1e-12 chgtol=1e-22 gmin=1e-15 method=gear maxord=2",
        f".tran {num(width / points)} {num(t_stop)} 0 {num(width / points)}",
    ])


# one cell: pulse transient -----------------------------------------------------------------
def cell_pulse_netlist(p: StanfordGapParams, cell: CellParams, gap0: float, v_bl: float, v_sl: float,
                       v_wl: float, width: float, edge: float | None = None) -> str:
    """Transient of one rectangular pulse on one 1T1R cell starting at gap ``gap0`` (m).

    Line voltages (V) are parameters ``vbl``, ``vsl``, ``vwl`` a SpiceEditor can change;
    all three lines rise together after 1 edge time and stay for ``width`` seconds
    (plateau plus one edge, which is what a rectangular pulse of that width delivers).
    The state trace is ``v(gap)`` in nm.
    """
    edge = width * EDGE_FRACTION if edge is None else edge
    plateau = width - edge
    lines = header(p, cell, "1T1R cell pulse")
    lines += [
        f".param vbl={num(v_bl)} vsl={num(v_sl)} vwl={num(v_wl)}",
        f".param tedge={num(edge)} tplat={num(plateau)}",
        "Vbl bl 0 pulse(0 {vbl} {tedge} {tedge} {tedge} {tplat} 1)",
        "Vsl sl 0 pulse(0 {vsl} {tedge} {tedge} {tedge} {tplat} 1)",
        "Vwl wl 0 pulse(0 {vwl} {tedge} {tedge} {tedge} {tplat} 1)",
        *cell_lines(cell, "0", "bl", "sl", "wl", "x", "gap", dynamic=True),
        f".ic v(gap)={num(gap0 / NM)}",
        transient_cards(width, edge),
        ".save v(gap)",
        ".end",
    ]
    return "\n".join(lines) + "\n"


# crossbar ----------------------------------------------------------------------------------
def _line_nodes(prefix: str, driver: str, count: int, r: float, order: range) -> tuple[list[str], list[tuple[str, str]]]:
    """Node names along one line (listed in ``order`` from the driver) and its segments."""
    names = [driver] * count
    segments = []
    if r > 0:
        prev = driver
        for k in order:
            names[k] = f"{prefix}_{k}"
            segments.append((prev, names[k]))
            prev = names[k]
    return names, segments


def crossbar_netlist(p: StanfordGapParams, cell: CellParams, state: ArrayLike, v_wl: ArrayLike,
                     v_bl: ArrayLike, v_sl: ArrayLike, wires: WireParams | None = None,
                     analysis: str = ".op", dynamic: bool = False, pulse: tuple[float, float] | None = None,
                     rate_factor: ArrayLike = 1.0, sense: bool = False, save: Sequence[str] = (),
                     title: str = "1T1R crossbar") -> str:
    """A rows x cols 1T1R crossbar with wire resistance and DC (or pulsed) line drivers.

    ``state`` is the gap map (m); ``v_wl``/``v_sl`` have one voltage per row, ``v_bl``
    one per column (V). With ``dynamic`` every cell gets a gap state node ``g{i}_{j}``
    (initialised by ``.ic``) and its rate scaled by ``rate_factor`` (broadcast to the
    array); with ``pulse=(width, edge)`` the drivers rise from 0 V after one edge and
    hold for ``width`` (for transients). With ``sense`` each cell's current is the
    trace ``i(vs{i}_{j})``. ``analysis`` is the analysis card(s) appended; ``save`` names
    the only traces the simulator writes (all of them when empty).
    """
    state = np.asarray(state, float)
    rows, cols = state.shape
    kr = np.broadcast_to(np.asarray(rate_factor, float), state.shape)
    v_wl = np.broadcast_to(np.asarray(v_wl, float), (rows,))
    v_sl = np.broadcast_to(np.asarray(v_sl, float), (rows,))
    v_bl = np.broadcast_to(np.asarray(v_bl, float), (cols,))
    wires = wires or WireParams()
    lines = header(p, cell, f"{title} {rows}x{cols}")

    def source(name: str, node: str, v: float) -> str:
        if pulse is None:
            return f"V{name} {node} 0 dc {num(v)}"
        width, edge = pulse
        return f"V{name} {node} 0 pulse(0 {num(v)} {num(edge)} {num(edge)} {num(edge)} {num(width - edge)} 1)"

    resistors: list[str] = []
    wl_nodes, sl_nodes, bl_nodes = [], [], []
    for i in range(rows):
        lines += [source(f"wl{i}", f"wld{i}", v_wl[i]), source(f"sl{i}", f"sld{i}", v_sl[i])]
        for kind, r, store in (("wl", wires.r_wl, wl_nodes), ("sl", wires.r_sl, sl_nodes)):
            names, segs = _line_nodes(f"{kind}{i}", f"{kind}d{i}", cols, r, range(cols))
            store.append(names)
            resistors += [f"R{b} {a} {b} {num(r)}" for a, b in segs]
    for j in range(cols):
        lines.append(source(f"bl{j}", f"bld{j}", v_bl[j]))
        names, segs = _line_nodes(f"bl{j}", f"bld{j}", rows, wires.r_bl, range(rows - 1, -1, -1))
        bl_nodes.append(names)
        resistors += [f"R{b} {a} {b} {num(wires.r_bl)}" for a, b in segs]
    lines += resistors
    for i in range(rows):
        for j in range(cols):
            gap = f"g{i}_{j}" if dynamic else state[i, j]
            lines += cell_lines(cell, f"{i}_{j}", bl_nodes[j][i], sl_nodes[i][j], wl_nodes[i][j],
                                f"x{i}_{j}", gap, dynamic, kr[i, j], sense)
    if dynamic:
        lines += [f".ic v(g{i}_{j})={num(state[i, j] / NM)}" for i in range(rows) for j in range(cols)]
    lines += [f".save {' '.join(save[k:k + 32])}" for k in range(0, len(save), 32)]
    lines += [analysis, ".end"]
    return "\n".join(lines) + "\n"


def gap_traces(rows: int, cols: int) -> list[str]:
    """Trace names of the gap state nodes of a dynamic crossbar, row-major."""
    return [f"v(g{i}_{j})" for i in range(rows) for j in range(cols)]


def cell_current_traces(rows: int, cols: int) -> list[str]:
    """Trace names of the cell-current sense sources (``sense=True``), row-major, BL -> SL positive."""
    return [f"i(vs{i}_{j})" for i in range(rows) for j in range(cols)]


def driver_current_traces(rows: int, cols: int) -> dict[str, list[str]]:
    """Trace names of the driver currents (SPICE sign: into the driver, i.e. minus what it delivers)."""
    return {"wl": [f"i(vwl{i})" for i in range(rows)], "bl": [f"i(vbl{j})" for j in range(cols)],
            "sl": [f"i(vsl{i})" for i in range(rows)]}
