"""The command line of the per-profile benchmarks: `python bench/bench_X.py [count] [--json]`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

PROFILES = ("0dte", "7dte")


def main(run: Callable[[int], dict[str, Any]], default_count: int) -> None:
    """Run `run(count)` and print one line of figures per profile (or the whole result as JSON)."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    result = run(int(args[0]) if args else default_count)
    if "--json" in sys.argv:
        print(json.dumps(result))
        return
    for profile in PROFILES:
        print(profile, "  ".join(f"{k}={v}" for k, v in result[profile].items()))
