"""Instructions per exit evaluation, for callgrind (deterministic, so load-free).

Usage: PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=OUT python bench/callgrind_exits.py PROFILE N
Per evaluation: (Ir with N=2000 - Ir with N=0) / 2000. Each run draws the bench's seeded walk for
PROFILE (`bench_exits._looks`, what `figures()` times), warms up on its first 200 looks, then makes N
evaluations along it (at most 2,000; `bench_exits.ride`: closes applied as fills, a closed position
replaced, as the figure does; the count includes `ride`'s per-look
bookkeeping, the same for any version of `exits`). `bench/callgrind_exits.sh` runs both profiles.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_exits import _looks, ride  # noqa: E402
from config.loader import load_settings  # noqa: E402
from exits import ExitAction, ExitPosition, ExitState, MarketSnapshot, evaluate  # noqa: E402

WARM_UP = 200
MOST = 2000  # the looks are always drawn for the longest run, so N=0 and N=2000 differ by evaluations only


def main(profile: str, evaluations: int) -> None:
    settings = load_settings(profile, env={})
    looks = _looks(profile, WARM_UP + MOST)[:WARM_UP + min(evaluations, MOST)]
    def look(position: ExitPosition, state: ExitState, market: MarketSnapshot,
             when: datetime) -> tuple[tuple[ExitAction, ...], ExitState]:
        return evaluate(position, state, market, when, settings)

    ride(profile, settings, looks, look)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
