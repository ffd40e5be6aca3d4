"""Speed of the simulated chip (issue 2): whole-array read, whole-array pulse, single-cell pulse.

Run: python benchmarks/chip.py   (writes benchmarks/results/chip.json)
Aims: read-all 64x64 < 5 ms, 4096-cell pulse < 20 ms, single-cell pulse < 50 us.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import best_time, write_results  # noqa: E402
from simulated_bench import SimulatedArray, random_fault_codes  # noqa: E402


def main() -> dict:
    chip = SimulatedArray(64, 64, fault_codes=random_fault_codes(64, 64, 0.05, 0.02, rng=1), seed=1)
    read_all = best_time(lambda: chip.read_all(0.2, 3.0), repeat=20)
    chip.apply_lines(1.2, 2.0, 0.0, 1e-8)  # first call builds the table for these voltages
    pulse_all = best_time(lambda: chip.apply_lines(1.2, 2.0, 0.0, 1e-9), repeat=20)
    cells = [(k % 64, (7 * k) % 64) for k in range(10_000)]
    it = iter(cells * 10)

    def one_pulse() -> None:
        r, c = next(it)
        chip.pulse_row(r, c, 2.0, 1e-9, 1.2)

    single = best_time(one_pulse, repeat=3, number=10_000)
    res = {"read_all_64x64_s": read_all, "pulse_4096_cells_s": pulse_all, "pulse_single_cell_s": single}
    path = write_results("chip", res)
    print(f"read_all_64x64_s     {read_all * 1e3:8.3f} ms   (aim < 5 ms)")
    print(f"pulse_4096_cells_s   {pulse_all * 1e3:8.3f} ms   (aim < 20 ms)")
    print(f"pulse_single_cell_s  {single * 1e6:8.2f} us   (aim < 50 us)")
    print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
