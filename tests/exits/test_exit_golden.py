"""Every exit evaluation of the bench's seeded walk (both profiles) keeps exactly its result.

`golden/exit_results.json.gz` was written by main's code (4bc3348) before the exits7 speed work: one
JSON line per evaluation of `bench.bench_exits`' walk (the looks `figures()` times, closes applied as
fills, a closed position replaced), `[profile, index, actions' records, the new state's record]`.
Records carry Decimals as text, so a change of exponent (3.0 vs 3.00) fails here too, and so does
any change of reason wording, rule id or key order. Regenerate only for an intended rule change:
`python -m tests.exits.test_exit_golden --write` (the file was written before the bench's loop
became `bench_exits.ride`; the same looks, the same fills).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from bench.bench_exits import _looks, ride
from config.loader import load_settings
from exits import ExitAction, ExitPosition, ExitState, MarketSnapshot, evaluate
from tests.golden import assert_same_lines, read_lines, write_main

GOLDEN = Path(__file__).parent / "golden" / "exit_results.json.gz"
PROFILES = ("0dte", "7dte")
LOOKS = 5_000


def records() -> list[str]:
    lines: list[str] = []
    for profile in PROFILES:
        settings = load_settings(profile, env={})

        def recorded(position: ExitPosition, state: ExitState, market: MarketSnapshot, when: datetime,
                     profile: str = profile) -> tuple[tuple[ExitAction, ...], ExitState]:
            fired, state = evaluate(position, state, market, when, settings)
            index = len(lines) - (LOOKS if profile == PROFILES[1] else 0)
            lines.append(json.dumps([profile, index, [a.to_record() for a in fired], state.to_record()]))
            return fired, state

        ride(profile, settings, _looks(profile, LOOKS), recorded)
    return lines


def _golden() -> list[str]:
    return read_lines(GOLDEN)


def test_golden_exercises_the_rules() -> None:
    # A walk where nothing fires would prove nothing about the rules' arithmetic.
    golden = _golden()
    rules: Counter[tuple[str, str]] = Counter()
    for line in golden:
        profile, _, actions, _ = json.loads(line)
        rules.update((profile, a["rule"]) for a in actions)
    assert len(golden) == 2 * LOOKS
    for profile in PROFILES:
        assert sum(n for (p, _), n in rules.items() if p == profile) > 20, rules
    assert {("7dte", "partial_profit"), ("7dte", "trailing_stop")} <= set(rules), rules


def test_results_identical_to_golden() -> None:
    assert_same_lines(_golden(), records())


if __name__ == "__main__":
    write_main(GOLDEN, records, "tests.exits.test_exit_golden")
