#!/bin/sh
# Instructions per exit evaluation, both profiles: (Ir of 2,000 evaluations - Ir of 0) / 2,000 (bench/callgrind_exits.py).
# Usage: bench/callgrind_exits.sh [python binary]   (from the repository root; valgrind needed)
set -e
py=${1:-.venv/bin/python}  # the interpreter itself: a pyenv shim is a shell script, which valgrind would measure instead
out=$(mktemp -d)
for profile in 0dte 7dte; do
  for n in 0 2000; do
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$out/$profile.$n" \
      "$py" bench/callgrind_exits.py "$profile" "$n" 2>"$out/$profile.$n.log"
  done
  a=$(grep -m1 '^summary:' "$out/$profile.0" | cut -d' ' -f2)
  b=$(grep -m1 '^summary:' "$out/$profile.2000" | cut -d' ' -f2)
  if [ -z "$a" ] || [ -z "$b" ]; then echo "callgrind_exits: no callgrind summary (logs in $out)" >&2; exit 1; fi
  echo "$profile $(( (b - a) / 2000 )) instructions per evaluation"
done
rm -rf "$out"
