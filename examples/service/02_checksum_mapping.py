"""Step 2: map Re(DFT32) around stuck devices with checksum outputs on both arrays (seed 003 factorization).

    python3 examples/service/02_checksum_mapping.py
"""
import numpy as np

from hil.factorization import random_fault_codes
from hil.service import map_factorized
from hil.service.workflow import target_matrix, MappingSpec

n = k = 32
m = target_matrix(MappingSpec(target="dft_real", n=n))
codes_a = random_fault_codes(n, k + 2, 0.10, rng=1)  # the last two columns hold A's checksums
codes_b = random_fault_codes(k, n + 2, 0.10, rng=2)  # and of B: half sums of each array's rows
mm = map_factorized(m, k, codes_a, codes_b, rng=0)
a, b = mm.stages
print(f"1 - cos of the solved mapping: {mm.one_minus_cos():.2e}")
print(f"checksum devices: {mm.check_devices} of {mm.devices} ({mm.check_devices / (mm.devices - mm.check_devices):.1%} "
      f"of the mapped devices)")
# B's checksum outputs compute (its data outputs @ weights) / gain through the same faulty array; a stuck
# checksum device stays as it is and the host's reference (g_ref) knows it, so the check is data vs reference
x = np.random.default_rng(0).uniform(-1, 1, (4, n))
u = x @ a.logical()[:, :k]
out = u @ b.logical()
print(f"checksum gains: A {a.checksum_gain.round(1)}, B {b.checksum_gain.round(1)}")
print("syndrome of B's first check (out @ t - u @ (g_ref @ t)) / |out| -- zero while B holds its reference:")
t = np.r_[-b.checksum_weights[:, 0], b.checksum_gain[0], 0.0]
print((out @ t - u @ (b.logical() @ t)) / np.abs(out).max())
