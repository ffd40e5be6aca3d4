"""Parameters of the factorization mapping, with seed 003 defaults."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceWindow:
    """Conductance window of one crossbar device (seed 003: 0..150 uS)."""

    g_max: float = 150e-6  #: largest programmable conductance, S; stuck-ON devices sit here


@dataclass(frozen=True)
class SolverParams:
    """Settings of the structured solver (bounded quasi-Newton on the free conductances)."""

    tol: float = 1e-12         #: stop once 1 - cos <= tol
    max_iter: int = 20000      #: projected L-BFGS iterations per attempt (~70 us each at 64x64)
    restarts: int = 3          #: fresh random starts tried when an attempt misses tol;
    #: more while all attempts together stay below (restarts + 1) * max_iter iterations
    #: (attempts that stall early; see solver._fresh_start_due); 0: one attempt only
    memory: int = 8            #: L-BFGS correction pairs (8 measured faster than 4 or 20)
    sign_init: str = "data"    #: MA's starting row signs: "data" (signs of M @ a fresh random
    #: vector per attempt) or "random" (coin flips, like the paper's predetermined signs)
    choose_signs: bool = False  #: re-choose MA's row signs by per-row NNLS after warm_iter
    #: (on Re(DFT64) the data signs did as well at k = 33 and 64 and saved the NNLS time)
    warm_iter: int = 300       #: iterations before the per-row sign choice of MA
    screen_starts: int = 8     #: after a near miss each restart goes on from the best of
    screen_iter: int = 3000    #: this many fresh starts after this many iterations each
    screen_below: float = 1e-3  #: a near miss: the best attempt's 1 - cos below this
    #: (solver._screen_restart; 0 or screen_starts = 1 turns screening off)
    init_norm: float = 1.0     #: ||MA0 @ MB0|| / ||target|| of the random start (stuck-OFF
    #: only); with the projected L-BFGS a full-scale start reached Adam's fidelity ~1.3x
    #: sooner than the 0.002 start L-BFGS-B preferred, at the same time to 1e-10
    inner: str = "auto"        #: "auto": probe a fit through rank(M) inner lines first
    #: (no stuck-ON only); "all": always use all k
    probe_iter: int = 200      #: iterations of that probe before judging it
    probe_omc: float = 1e-3    #: the probe goes on only if 1 - cos is below this by then
    probe_max_iter: int = 3000  #: and gives way to the full k if not converged by then
    stall_iter: int = 5000     #: an attempt ends when 1 - cos fell by less than
    stall_ratio: float = 0.5   #: this factor over the last stall_iter iterations (0: never)
    converging_iter: int = 200000  #: an attempt still converging at max_iter goes on up to
    #: this many iterations while its rate reaches tol within them (solver.on_course);
    #: at or below max_iter: never (the service's fixed-budget remaps pass 0)
    probe_dof_margin: float = 1.05  #: probe only when the subset's working devices exceed
    #: the dimension of rank(M) products by this factor (see solver._worth_probing)

    def __post_init__(self):
        if self.inner not in ("auto", "all"):
            raise ValueError(f"inner must be 'auto' or 'all', got {self.inner!r}")
        if self.sign_init not in ("data", "random"):
            raise ValueError(f"sign_init must be 'data' or 'random', got {self.sign_init!r}")
        if self.stall_iter < 0 or not 0 < self.stall_ratio <= 1:
            raise ValueError("stall_iter >= 0 and 0 < stall_ratio <= 1 required")
        if self.screen_starts < 1 or self.screen_iter < 1 or not self.screen_below >= 0:
            raise ValueError("screen_starts >= 1, screen_iter >= 1 and screen_below >= 0 required")
        if self.converging_iter < 0:
            raise ValueError("converging_iter >= 0 required")
        if self.tol < 0 or self.max_iter < 1 or self.restarts < 0 or self.memory < 1:
            raise ValueError("tol >= 0, max_iter >= 1, restarts >= 0 and memory >= 1 required")


@dataclass(frozen=True)
class AdamParams:
    """The paper's optimiser (seed 003 Methods): Adam, lr 1e-4, 5000 epochs."""

    lr: float = 1e-4
    epochs: int = 5000
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    init: float = 0.01     #: initial magnitudes uniform in [0, init * Gmax]; at this
    #: scale lr 1e-4 reproduces the paper's Fig. 2 level (~1e-5 at 39 % stuck-OFF)
