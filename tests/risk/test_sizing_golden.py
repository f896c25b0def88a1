"""Every sizing decision of the bench's 500 seeded requests (both profiles) keeps exactly its record.

`golden/sizing_records.json.gz` was written by main's code (4000135) before the sizing speed work:
one JSON line per decision, `to_record()` (the store's strings) and `to_record(numbers=True)` (the
CLI's numbers). A change to any decision's content, wording or key order fails here. Regenerate only
for an intended rule change: `python -m tests.risk.test_sizing_golden --write`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from bench.bench_sizing import SEED, requests
from config.loader import load_settings
from risk.sizing import evaluate
from tests.golden import assert_same_lines, read_lines, write_main

GOLDEN = Path(__file__).parent / "golden" / "sizing_records.json.gz"
PROFILES = ("0dte", "7dte")


def records() -> list[str]:
    """One canonical line per decision: profile, index, both records (key order kept: it is content)."""
    rng = random.Random(SEED)  # the bench's order: 0dte's requests first, then 7dte's from the same stream
    lines = []
    for profile in PROFILES:
        settings = load_settings(profile, env={})
        for i, request in enumerate(requests(settings, rng)):
            decision = evaluate(request, settings)
            lines.append(json.dumps([profile, i, decision.to_record(), decision.to_record(numbers=True)]))
    return lines


def _golden() -> list[str]:
    return read_lines(GOLDEN)


def test_golden_covers_accepts_and_refusals() -> None:
    # A golden file of refusals only would not prove the sizer's numbers unchanged.
    golden = [json.loads(line) for line in _golden()]
    assert len(golden) == 1000
    for profile in PROFILES:
        rows = [r for r in golden if r[0] == profile]
        assert any(r[2]["accepted"] for r in rows) and any(not r[2]["accepted"] for r in rows)
        assert any(r[2]["caps"] for r in rows)


def test_records_identical_to_golden() -> None:
    assert_same_lines(_golden(), records())


if __name__ == "__main__":
    write_main(GOLDEN, records, "tests.risk.test_sizing_golden")
