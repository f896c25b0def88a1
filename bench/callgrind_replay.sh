#!/bin/sh
# Instructions of the stream replay over its first N events (default 60,000), less those of 1 event (the setup):
# deterministic, so an A/B under other rooms' load holds. Usage: bench/callgrind_replay.sh [PROFILE] [N] [python]
# (from the repository root; valgrind needed). Prints the replay's instructions and its digest over those events.
set -e
profile=${1:-7dte} n=${2:-60000}
py=${3:-.venv/bin/python}  # the interpreter itself: a pyenv shim is a shell script, which valgrind would measure instead
out=$(mktemp -d)
for count in 1 "$n"; do
  PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file="$out/$count" \
    "$py" bench/callgrind_replay.py "$profile" "$count" >"$out/$count.json" 2>"$out/$count.log"
done
a=$(grep -m1 '^summary:' "$out/1" | cut -d' ' -f2)
b=$(grep -m1 '^summary:' "$out/$n" | cut -d' ' -f2)
if [ -z "$a" ] || [ -z "$b" ]; then echo "callgrind_replay: no callgrind summary (logs in $out)" >&2; exit 1; fi
echo "$profile $n events: $(( b - a )) instructions (setup $a); $(tail -1 "$out/$n.json" | sed 's/.*"records": \([0-9]*\).*"digest": "\([0-9a-f]*\)".*/records \1 digest \2/')"
rm -rf "$out"
