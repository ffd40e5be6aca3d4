"""Figure of a service run: fidelity over time, alarms, repairs and devices re-programmed."""
from __future__ import annotations

from typing import Sequence

import numpy as np


WRITING_EVENTS = ("repair", "scan", "maintain", "rewrite_cell", "program")


def writes_over_time(log: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Chip time (h) and cumulative device writes after it, from a session's event log: each
    event's ``writes`` (+ ``restored``) counted once; the initial programming (time 0) is left out."""
    writes = [(e["chip_time_s"] / 3600, e.get("writes", 0) + e.get("restored", 0)) for e in log
              if e["event"] in WRITING_EVENTS]
    writes = sorted(w for w in writes if w[0] > 0 or w[1] == 0) or [(0.0, 0)]
    t, n = zip(*writes)
    return np.asarray(t, float), np.cumsum(n)


def patched_over_time(log: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Chip time (h) and the devices the host patches digitally after it (the hybrid repair's
    ``MappedMatrix.patch_counts``, recorded by each ``repair`` and ``patch`` event); empty for an
    analog-only run."""
    pts = [(e["chip_time_s"] / 3600, (e["patch"] if e["event"] == "repair" else e)["weights"]) for e in log
           if (e["event"] == "repair" and isinstance(e.get("patch"), dict) and "weights" in e["patch"])
           or (e["event"] == "patch" and "weights" in e)]
    if not pts:
        return np.zeros(0), np.zeros(0)
    t, n = zip(*sorted(pts))
    return np.asarray(t, float), np.asarray(n, float)


def service_figure(hours: Sequence[float], fidelity: Sequence[float], log: Sequence[dict], path: str,
                   fidelity_label: str = "1 - cos (true conductances)", title: str = "service run",
                   log_scale: bool = True, aim: tuple[float, str] | None = None,
                   extra_kinds: Sequence[tuple[str, str, str]] = ()) -> str:
    """Save a three-panel figure: fidelity vs chip time; alarms / drift compensations / repairs as
    event marks; cumulative devices re-programmed (and, for a hybrid repair, the devices patched digitally). ``log`` is a session's event log; ``aim`` = (value,
    label) draws a dashed line on the fidelity panel; ``extra_kinds`` = (event, colour, label) adds mark rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(3, 1, figsize=(9.5, 7.5), sharex=True, constrained_layout=True)
    ax[0].plot(hours, fidelity, "-", color="C0")
    f = np.asarray(fidelity, float)
    if log_scale and np.all(f > 0) and f.max() > 10 * f.min():
        ax[0].set_yscale("log")
    if aim is not None:
        ax[0].axhline(aim[0], ls="--", color="0.4", lw=1)
        ax[0].annotate(aim[1], (hours[0], aim[0]), textcoords="offset points", xytext=(2, 3), fontsize=8,
                       color="0.3")
    ax[0].set_ylabel(fidelity_label)
    ax[0].set_title(title)
    kinds = [("alarm", "C3", "alarms"), ("drift_compensation", "C2", "drift compensations (0 writes)"),
             ("repair", "C1", "repairs"), ("maintain", "C4", "drift refresh checks"), *extra_kinds]
    for y, (kind, color, label) in enumerate(kinds):
        t = [e["chip_time_s"] / 3600 for e in log if e["event"] == kind]
        ax[1].plot(t, np.full(len(t), y), "|", color=color, markersize=14, label=f"{label} ({len(t)})")
    ax[1].set_yticks(range(len(kinds)), [k[2].split(" (")[0] for k in kinds])
    ax[1].set_ylim(-0.7, len(kinds) - 0.3)
    ax[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the marks, not over them
    t, n = writes_over_time(log)
    end = max(float(np.max(hours)), float(t[-1]))
    # from none at the start to the run's end, so a single event still draws a step
    ax[2].step(np.r_[0.0, t, end], np.r_[0, n, n[-1]], where="post", color="C1")
    ax[2].set_ylim(bottom=0)
    ax[2].set_ylabel("devices re-programmed\n(cumulative, after the first write)")
    tp, n_patched = patched_over_time(log)
    if tp.size:  # the hybrid repair's digital side, on its own axis: host multiply-adds per VMM, not writes
        twin = ax[2].twinx()
        twin.step(np.r_[0.0, tp, max(end, tp[-1])], np.r_[0.0, n_patched, n_patched[-1]], where="post", color="C0",
                  ls="--")
        twin.set_ylim(bottom=0)
        twin.set_ylabel("devices patched digitally\n(host MACs per VMM)", color="C0")
    ax[2].set_xlabel("chip time (h)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


__all__ = ["service_figure", "writes_over_time", "patched_over_time"]
