"""Step 3: program a mapping, serve VMMs, let a device stick, and watch the checks find it.

    python3 examples/service/03_detect_and_localise.py
"""
import numpy as np

from hil.factorization import random_fault_codes
from hil.service import ServiceSession, WindowEngine, map_factorized
from hil.service.workflow import MappingSpec, target_matrix
from simulated_bench.window_array import WindowArray

n = k = 32
m = target_matrix(MappingSpec(target="dft_real", n=n))
ca, cb = random_fault_codes(n, k + 2, 0.10, rng=1), random_fault_codes(k, n + 2, 0.10, rng=2)
mm = map_factorized(m, k, ca, cb, rng=0)
arrays = {"A": WindowArray(n, k + 2, fault_codes=ca, seed=1), "B": WindowArray(k, n + 2, fault_codes=cb, seed=2)}
s = ServiceSession(mm, WindowEngine(arrays))
s.program()
s.calibrate(0)
rng = np.random.default_rng(0)
_, alarms = s.serve(rng.uniform(-1, 1, (2000, n)), handle_alarms=False)
print(f"2000 fault-free VMMs: {len(alarms)} alarms")
st = mm.stages[1]
row, col = np.unravel_index(np.argmax(np.where(st.codes == 0, st.g_ref, 0)[:, :n]), (k, n))
arrays["B"].stick(row, col, 1)  # the most conductive working device of B sticks OFF
print(f"device B({row}, {col}) stuck OFF (was {st.g_ref[row, col] * 1e6:.0f} uS)")
for i in range(1, 50):
    _, alarms = s.serve(rng.uniform(-1, 1, (1, n)), handle_alarms=False)
    if alarms:
        print(f"alarm after {i} VMM(s): stage {alarms[0].stage}, check {alarms[0].check}")
        loc = s.localise(alarms[0])
        print(f"localised to B({loc.row}, {loc.col}), change {loc.delta_g * 1e6:+.0f} uS, "
              f"{loc.explained:.0%} of the residual explained by that one device")
        break
