#!/bin/sh
# Step 5: the whole loop. Scan, map, program, verify, then serve a simulated day with detection and repair.
set -e
hil service examples/service/dft64_day.yaml --out dft64_day.h5          # progress, one line per hour
hil service examples/service/dft64_day.yaml --out dft64_day.h5 --replay # every decision reproduced
hil faults history dft64_day.h5.faults.h5                                # one line per fault-map version
hil faults diff dft64_day.h5.faults.h5@0 dft64_day.h5.faults.h5@-1      # what the day added
hil service examples/service/digits_day.yaml --out digits_day.h5        # the seed-000 network, same loop
