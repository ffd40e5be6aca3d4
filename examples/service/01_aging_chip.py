"""Step 1: a simulated chip that ages. Open the simulated bench with aging on, program a row, fast-forward.

    python3 examples/service/01_aging_chip.py
"""
import numpy as np

import hil

bench = hil.open_bench(chip={
    "arrays": [{"name": "A", "rows": 16, "cols": 16}],
    "aging": {"stuck": {"per_hour": 1e-3, "on_fraction": 0.5, "cluster_fraction": 0.2},
              "drift": {"nu_mean": -0.003, "nu_sigma": 0.005}},
})
try:
    bench.use_array("A")
    bench.pulse_row(0, list(range(16)), 1.6, 1e-6, 1.5)  # SET row 0 to mid-window
    g0 = bench.read_row(0, list(range(16)), 0.05, 3.0) / 0.05
    events = bench.sim.advance(24 * 7)  # a week on the shelf (simulated bench only)
    g1 = bench.read_row(0, list(range(16)), 0.05, 3.0) / 0.05
    print(f"row 0 after a week: median conductance change {np.median(g1 / g0 - 1):+.2%}")
    for e in events["A"][:10]:
        print(f"  t = {e.time_s / 3600:7.1f} h  cell ({e.row}, {e.col}) stuck {'ON' if e.code == 2 else 'OFF'} ({e.cause})")
    print(f"{len(events['A'])} new stuck devices in {bench.sim.arrays['A'].time_s / 3600:.0f} h")
finally:
    bench.close()
