#!/bin/sh
# Instructions per exit evaluation, both profiles: (Ir of 2,000 evaluations - Ir of 0) / 2,000 (bench/callgrind_exits.py).
# Usage: bench/callgrind_exits.sh [python binary]   (from the repository root; valgrind needed)
exec sh bench/callgrind_per_call.sh bench/callgrind_exits.py 2000 evaluation "$@"
