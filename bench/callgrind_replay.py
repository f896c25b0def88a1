"""The stream replay over its first N events, for callgrind (bench/callgrind_replay.sh): the stream bench's own
setup (`bench_stream_replay.measure`, digest sink), its event list cut to N. Prints the bench's JSON line (with
the digest of those N events' records). Usage: python bench/callgrind_replay.py PROFILE N [--cprofile=FILE]"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import bench_stream_replay as bench  # noqa: E402


def main() -> None:
    profile, count = sys.argv[1], int(sys.argv[2])
    full = bench.stream_events
    bench.stream_events = lambda folder, index: full(folder, index)[:max(1, count)]
    out = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--cprofile=")]
    print(json.dumps(bench.measure(profile, store=False, digest=True, cprofile=out[0] if out else None), default=str))


if __name__ == "__main__":
    main()
