"""Every exit evaluation of the bench's seeded walk (both profiles) keeps exactly its result.

`golden/exit_results.json.gz` was written by main's code (4bc3348) before the exits7 speed work: one
JSON line per evaluation of `bench.bench_exits`' walk (the looks `figures()` times, closes applied as
fills, a closed position replaced), `[profile, index, actions' records, the new state's record]`.
Records carry Decimals as text, so a change of exponent (3.0 vs 3.00) fails here too, and so does
any change of reason wording, rule id or key order. Regenerate only for an intended rule change:
`python -m tests.exits.test_exit_golden --write`.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from bench.bench_exits import EXPIRY, UNDERLYING, _looks
from config.loader import load_settings
from exits import ExitPosition, evaluate, new_state

GOLDEN = Path(__file__).parent / "golden" / "exit_results.json.gz"
PROFILES = ("0dte", "7dte")
LOOKS = 5_000


def records() -> list[str]:
    lines = []
    for profile in PROFILES:
        settings = load_settings(profile, env={})
        position: ExitPosition | None = None
        for i, (when, market) in enumerate(_looks(profile, LOOKS)):
            if position is None or position.open_quantity == 0 or when < position.entry_time:
                entry = market.option_price or Decimal(3)
                position = ExitPosition(entry, when, 20, 20, EXPIRY[profile], UNDERLYING[profile], profile)  # type: ignore[arg-type]
                state = new_state(position, settings)
            fired, state = evaluate(position, state, market, when, settings)
            lines.append(json.dumps([profile, i, [a.to_record() for a in fired], state.to_record()]))
            sold = sum(a.quantity for a in fired if a.kind in ("close", "partial_close"))
            if sold:
                position = replace(position, open_quantity=max(0, position.open_quantity - sold))
    return lines


def _golden() -> list[str]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def test_golden_exercises_the_rules() -> None:
    # A walk where nothing fires would prove nothing about the rules' arithmetic.
    rules: Counter[tuple[str, str]] = Counter()
    for line in _golden():
        profile, _, actions, _ = json.loads(line)
        rules.update((profile, a["rule"]) for a in actions)
    assert len(_golden()) == 2 * LOOKS
    for profile in PROFILES:
        assert sum(n for (p, _), n in rules.items() if p == profile) > 20, rules
    assert {("7dte", "partial_profit"), ("7dte", "trailing_stop")} <= set(rules), rules


def test_results_identical_to_golden() -> None:
    golden, now = _golden(), records()
    assert len(now) == len(golden)
    for expected, got in zip(golden, now):
        assert got == expected


if __name__ == "__main__":
    if "--write" not in sys.argv:
        sys.exit("usage: python -m tests.exits.test_exit_golden --write")
    with gzip.open(GOLDEN, "wt", encoding="utf-8") as f:
        f.write("\n".join(records()) + "\n")
