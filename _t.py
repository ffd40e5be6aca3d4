import time, numpy as np, cProfile, pstats
import benchmarks.bench_time as bt
b = bt.BoardBench("2450", 2, 16)
i_t = bt.targets(2, 16)
pr = cProfile.Profile(); pr.enable()
f = bt.ispp_fast_board(b, i_t)
pr.disable()
import json; print(json.dumps(b.sim.bench_time(), indent=1))
pstats.Stats(pr).sort_stats("cumtime").print_stats(12)
