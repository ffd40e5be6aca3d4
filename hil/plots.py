"""Heatmap figures for people (PNG, matplotlib Agg): conductance maps, fault maps, ISPP traces."""
from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from .faultmap import CODE_NAMES, FaultMap  # noqa: E402

_FAULT_COLOURS = {-1: "#dddddd", 0: "#2a9d8f", 1: "#264653", 2: "#e9c46a", 3: "#e76f51"}


def conductance_heatmap(g: ArrayLike, path: str | os.PathLike, title: str = "conductance",
                        log: bool = True) -> str:
    """Save a heatmap of a conductance map (S, shown in uS) and return the path."""
    g_us = np.asarray(g, dtype=float) * 1e6
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    finite = g_us[np.isfinite(g_us) & (g_us > 0)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if log and finite.size and finite.min() < finite.max() else None
    im = ax.imshow(g_us, norm=norm, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="G (uS)")
    ax.set_xlabel("column (bit line)")
    ax.set_ylabel("row (word line)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)
    return os.fspath(path)


def faultmap_heatmap(fm: FaultMap, path: str | os.PathLike, title: str | None = None) -> str:
    """Save the fault classes of a map as a categorical heatmap with counts in the legend."""
    codes = sorted(CODE_NAMES)
    cmap = ListedColormap([_FAULT_COLOURS[c] for c in codes])
    norm = BoundaryNorm(np.arange(codes[0] - 0.5, codes[-1] + 1.5), cmap.N)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=110)
    ax.imshow(fm.codes, cmap=cmap, norm=norm, interpolation="nearest")
    counts = {c: int(np.count_nonzero(fm.codes == c)) for c in codes}
    handles = [matplotlib.patches.Patch(color=_FAULT_COLOURS[c], label=f"{CODE_NAMES[c]} ({counts[c]})")
               for c in codes if counts[c]]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    ax.set_xlabel("column (bit line)")
    ax.set_ylabel("row (word line)")
    ax.set_title(title or f"fault map {fm.chip_id}".strip())
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)
    return os.fspath(path)


def ispp_trace(levels: Sequence[dict], path: str | os.PathLike, title: str = "ISPP") -> str:
    """Seed-004 Fig. 5 style trace: read conductance against pulse number, targets and bands.

    ``levels``: one dict per target with ``target`` (S), ``tol`` (relative), ``g`` (reads
    after each pulse, S) and ``polarity`` (+1 SET, -1 RESET per pulse).
    """
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    n0 = 0
    for lv in levels:
        g = np.asarray(lv["g"], dtype=float) * 1e6
        pol = np.asarray(lv["polarity"])
        x = n0 + np.arange(1, g.size + 1)
        t = lv["target"] * 1e6
        ax.fill_between([n0 + 0.5, n0 + max(g.size, 1) + 0.5], t * (1 - lv["tol"]), t * (1 + lv["tol"]),
                        color="#e9c46a", alpha=0.4, lw=0)
        ax.plot(x, g, "-", color="#555555", lw=0.8)
        ax.plot(x[pol > 0], g[pol > 0], "^", color="#2a9d8f", ms=4)
        ax.plot(x[pol < 0], g[pol < 0], "v", color="#e76f51", ms=4)
        n0 += g.size
    ax.set_xlabel("verify read (after each pulse; unmarked: confirmation read)")
    ax.set_ylabel("G read (uS)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)
    return os.fspath(path)
