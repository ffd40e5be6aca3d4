"""One service loop, two backends: the conductance-level study chip runs the same ServiceLoop as the bench."""
import numpy as np

from hil.service.engine import WindowEngine
from hil.service.loop import ServiceLoop, block_shapes, window_engine
from hil.service.workflow import parse_workflow

STUDY = """name: study
seed: 2
chip: {initial_fault_rate: 0.05, aging: {stuck: {per_hour: 5.0e-3}, drift: {}}}
mapping: {target: dft_real, n: 16, k: 16}
stream: {workload: random, vectors_per_hour: 40, hours: 4}
"""


def run_loop(wf):
    events = []
    loop = ServiceLoop(wf, window_engine(wf), events.append)
    loop.setup()
    rows = [loop.serve_hour(h) for h in range(loop.hours)]
    return loop, rows, events


def test_the_bench_loop_runs_on_the_window_chip_and_replays():
    wf = parse_workflow(STUDY)
    loop, rows, events = run_loop(wf)
    assert isinstance(loop.engine, WindowEngine) and loop.engine.shapes == block_shapes(wf) == {"A": (16, 18),
                                                                                                "B": (16, 18)}
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["scan_array", "scan_array"] and kinds.count("hour") == 4
    appeared = sum(r[8] for r in rows)
    found = rows[-1][7]
    assert appeared > 0 and 0 < found <= appeared + 1  # the aging chip grew stuck devices; the loop found them
    verify = next(e for e in events if e["event"] == "verify")["fidelity"]
    assert rows[-1][2] < 1.5 * verify  # kept correct: 1 - cos of the true conductances
    assert loop.summary()["repairs"] == rows[-1][5] > 0
    _, rows2, events2 = run_loop(wf)  # same seed, same decisions
    assert events2 == events and rows2 == rows


def test_a_fractional_stream_ages_the_chip_by_its_length():
    wf = parse_workflow(STUDY.replace("hours: 4", "hours: 0.5"))
    loop = ServiceLoop(wf, window_engine(wf), lambda e: None)
    loop.setup()
    t0 = loop.engine.time_s
    row = loop.serve_hour(0)
    assert loop.hours == 1 and np.isclose(loop.engine.time_s - t0, 0.5 * 3600, rtol=1e-3) and row[0] == 0


DIGITS = """name: digits study
seed: 1
chip: {initial_fault_rate: 0.02, aging: {stuck: {per_hour: 2.0e-3}, drift: {}}}
mapping: {target: digits}
stream: {workload: digits, vectors_per_hour: 40, hours: 4, maintain_every_hours: 2}
corrector: {fit_images: 400, val_images: 100}
"""


def test_the_digits_loop_trains_its_corrector_after_programming_and_checks_it_at_each_maintenance():
    wf = parse_workflow(DIGITS)
    loop, rows, events = run_loop(wf)
    kinds = [e["event"] for e in events]
    trained = kinds.index("corrector_trained")
    assert trained < kinds.index("verify") and kinds.count("corrector_check") == 2  # hours 2 and 4
    checks = [e for e in events if e["event"] == "corrector_check"]
    assert all(e["decision"] in ("kept", "kept (fine-tune no better)", "fine-tuned") for e in checks)
    # a check after a repair that wrote devices fine-tunes whatever the test says; without writes it follows the test
    for e in checks:
        assert e["decision"] != "kept" or (e["writes_since"] == 0 and e["p_value"] >= e["alpha"])
    # the corrector wins back the pairs' write-and-verify error on the test images (never among its 500)
    plain = ServiceLoop(parse_workflow(DIGITS.replace("fit_images: 400, val_images: 100", "enabled: false")),
                        window_engine(wf), lambda e: None)
    plain.setup()
    assert plain.served.corrector is None
    assert events[kinds.index("verify")]["fidelity"] > plain.fidelity()[0] + 0.01
