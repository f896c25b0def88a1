#!/bin/sh
# Instructions per sizing decision, both profiles: (Ir of 1,000 decisions - Ir of 0) / 1,000 (bench/callgrind_sizing.py).
# Usage: bench/callgrind_sizing.sh [python binary]   (from the repository root; valgrind needed)
exec sh bench/callgrind_per_call.sh bench/callgrind_sizing.py 1000 decision "$@"
