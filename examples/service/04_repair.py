"""Step 4: repair with the fewest writes, beside a full re-map of the same arrays.

    python3 examples/service/04_repair.py
"""
import numpy as np

from hil.factorization import random_fault_codes
from hil.service import map_factorized, plan_full_remap, plan_repair
from hil.service.workflow import MappingSpec, target_matrix

n = k = 32
m = target_matrix(MappingSpec(target="dft_real", n=n))
ca, cb = random_fault_codes(n, k + 2, 0.10, rng=1), random_fault_codes(k, n + 2, 0.10, rng=2)
mm = map_factorized(m, k, ca, cb, rng=0)
new = [ca.copy(), cb.copy()]
rng = np.random.default_rng(3)
for st, codes in zip(mm.stages, new):  # one new stuck-OFF device in each array
    cells = np.argwhere((codes[:, :st.n_data] == 0) & (st.g_ref[:, :st.n_data] > 50e-6))
    r, c = cells[rng.integers(len(cells))]
    codes[r, c] = 1
    print(f"{st.array}({r}, {c}) stuck OFF")
plan = plan_repair(mm, new)
stuck = [np.where(c == 1, 0.0, st.g_ref) for c, st in zip(new, mm.stages)]
after = [np.where(np.isfinite(t), t, g) for t, g in zip(plan.targets, stuck)]
print(f"1 - cos: before {mm.one_minus_cos():.2e}, with the faults {mm.one_minus_cos(stuck):.2e}, "
      f"after the repair {mm.one_minus_cos(after):.2e}")
print(f"incremental repair writes {plan.writes} of {mm.devices} devices ({plan.writes / mm.devices:.2%})")
for line in plan.lines:
    print(f"  stage {line.stage} line {line.line}: moved {len(line.moved)} devices")
_, full = plan_full_remap(mm, new, k, 1)
print(f"a full re-map of the same arrays writes {full.writes} ({full.writes / mm.devices:.1%})")
