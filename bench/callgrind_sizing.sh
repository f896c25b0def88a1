#!/bin/sh
# Instructions per sizing decision, both profiles: (Ir of 1,000 decisions - Ir of 0) / 1,000 (bench/callgrind_sizing.py).
# Usage: bench/callgrind_sizing.sh [python binary]   (from the repository root; valgrind needed)
set -e
py=${1:-.venv/bin/python}  # the interpreter itself: a pyenv shim is a shell script, which valgrind would measure instead
out=$(mktemp -d)
for profile in 0dte 7dte; do
  for n in 0 1000; do
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$out/$profile.$n" \
      "$py" bench/callgrind_sizing.py "$profile" "$n" 2>"$out/$profile.$n.log"
  done
  a=$(grep -m1 '^summary:' "$out/$profile.0" | cut -d' ' -f2)
  b=$(grep -m1 '^summary:' "$out/$profile.1000" | cut -d' ' -f2)
  if [ -z "$a" ] || [ -z "$b" ]; then echo "callgrind_sizing: no callgrind summary (logs in $out)" >&2; exit 1; fi
  echo "$profile $(( (b - a) / 1000 )) instructions per decision"
done
rm -rf "$out"
