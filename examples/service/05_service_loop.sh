#!/bin/sh
# Step 5: the whole loop. Scan, map, program, verify, then serve a simulated day with detection and
# repair, every operation through the bench file's instruments (aging_bench.yaml: a simulated bench).
set -e
hil service examples/service/dft16_day.yaml --out dft16_day.h5          # progress, one line per hour, bench clock
hil service examples/service/dft16_day.yaml --out dft16_day.h5 --replay # every decision reproduced
hil faults history dft16_day.h5.faults.h5                                # one line per fault-map version
hil faults diff dft16_day.h5.faults.h5@0 dft16_day.h5.faults.h5@-1      # what the day added
hil service examples/service/digits_day.yaml --out digits_day.h5        # the seed-000 network, same loop
