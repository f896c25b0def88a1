#!/bin/sh
# Instructions per call of a callgrind bench script, both profiles: (Ir of N calls - Ir of 0) / N.
# Usage: bench/callgrind_per_call.sh SCRIPT N WHAT [python binary]   (from the repository root; valgrind needed)
# SCRIPT takes PROFILE and a count (bench/callgrind_sizing.py, bench/callgrind_exits.py); WHAT names a call.
set -e
script=$1 n=$2 what=$3
py=${4:-.venv/bin/python}  # the interpreter itself: a pyenv shim is a shell script, which valgrind would measure instead
out=$(mktemp -d)
for profile in 0dte 7dte; do
  for count in 0 "$n"; do
    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$out/$profile.$count" \
      "$py" "$script" "$profile" "$count" 2>"$out/$profile.$count.log"
  done
  a=$(grep -m1 '^summary:' "$out/$profile.0" | cut -d' ' -f2)
  b=$(grep -m1 '^summary:' "$out/$profile.$n" | cut -d' ' -f2)
  if [ -z "$a" ] || [ -z "$b" ]; then echo "$script: no callgrind summary (logs in $out)" >&2; exit 1; fi
  echo "$profile $(( (b - a) / n )) instructions per $what"
done
rm -rf "$out"
