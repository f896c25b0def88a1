"""Instructions per sizing decision, for callgrind (deterministic, so load-free).

Usage: PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=OUT python bench/callgrind_sizing.py PROFILE N
Per decision: (Ir with N=1000 - Ir with N=0) / 1000. Each run builds the bench's 500 requests for
PROFILE (the same seeded mix as `bench_sizing.figures`), warms up on 50 decisions, then makes N
decisions: gate + sizer + `to_record()`, what the figure times. `bench/callgrind_sizing.sh` runs both.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_sizing import PROFILES, SEED, VARIANTS, requests  # noqa: E402
from config.loader import load_settings  # noqa: E402
from risk.sizing import evaluate  # noqa: E402


def main(profile: str, decisions: int) -> None:
    rng = random.Random(SEED)
    for name in PROFILES:  # the figure draws both profiles' requests from one generator, in this order
        settings = load_settings(name, env={})
        batch = requests(settings, rng)
        if name == profile:
            break
    for request in batch[:50]:
        evaluate(request, settings).to_record()
    for i in range(decisions):
        evaluate(batch[i % VARIANTS], settings).to_record()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
