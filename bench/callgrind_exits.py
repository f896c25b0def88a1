"""Instructions per exit evaluation, for callgrind (deterministic, so load-free).

Usage: PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=OUT python bench/callgrind_exits.py PROFILE N
Per evaluation: (Ir with N=2000 - Ir with N=0) / 2000. Each run draws the bench's seeded walk for
PROFILE (`bench_exits._looks`, what `figures()` times), warms up on its first 200 looks, then makes N
evaluations along it (at most 2,000; closes applied as fills, a closed position replaced, as the figure does).
`bench/callgrind_exits.sh` runs both profiles.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_exits import EXPIRY, UNDERLYING, _looks  # noqa: E402
from config.loader import load_settings  # noqa: E402
from exits import ExitPosition, evaluate, new_state  # noqa: E402

WARM_UP = 200
MOST = 2000  # the looks are always drawn for the longest run, so N=0 and N=2000 differ by evaluations only


def main(profile: str, evaluations: int) -> None:
    settings = load_settings(profile, env={})
    looks = _looks(profile, WARM_UP + MOST)[:WARM_UP + min(evaluations, MOST)]
    position: ExitPosition | None = None
    for when, market in looks:
        if position is None or position.open_quantity == 0 or when < position.entry_time:
            entry = market.option_price or Decimal(3)
            position = ExitPosition(entry, when, 20, 20, EXPIRY[profile], UNDERLYING[profile], profile)  # type: ignore[arg-type]
            state = new_state(position, settings)
        fired, state = evaluate(position, state, market, when, settings)
        sold = sum(a.quantity for a in fired if a.kind in ("close", "partial_close"))
        if sold:
            position = replace(position, open_quantity=max(0, position.open_quantity - sold))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
