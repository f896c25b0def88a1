"""Where tick-to-order goes, segment by segment (room tick; not part of `make bench`).

Runs one round of bench_tick (`python bench/tick_segments.py 400|4000`) with `perf_counter` stamps on
`Effects.carry_out` (the core's order joins the lane), `Effects._intent` (the lane starts and ends the
exit's write-ahead), `Journal.write_ahead` (the intent log's pickle + `os.write`) and `SimBroker.place`,
and prints each segment's p50 / p90 / max. docs/performance.md holds the figures.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEGMENTS = ("decided->lane", "write_ahead", "lane: intent", "intent->place")


def main(rate: int) -> None:
    from bench import bench_tick
    from broker.sim import SimBroker
    from daemon import live_effects
    from daemon.store.journal import Journal

    stamps: list[tuple[str, float]] = []
    write_ahead, intent, carry_out, place = (Journal.write_ahead, live_effects.Effects._intent,
                                             live_effects.Effects.carry_out, SimBroker.place)

    def timed_write_ahead(self: Any) -> bool:
        t = time.perf_counter()
        try:
            return write_ahead(self)
        finally:
            stamps.append(("wa", time.perf_counter() - t))

    async def timed_intent(self: Any, request: Any, durable: bool) -> Any:
        stamps.append(("istart", time.perf_counter()))
        try:
            return await intent(self, request, durable)
        finally:
            stamps.append(("iend", time.perf_counter()))

    def timed_carry_out(self: Any, effects: Any) -> None:
        if any(type(e).__name__ == "PlaceOrder" for e in effects):
            stamps.append(("decided", time.perf_counter()))
        carry_out(self, effects)

    async def timed_place(self: Any, order: Any) -> None:
        stamps.append(("place", time.perf_counter()))
        await place(self, order)

    Journal.write_ahead = timed_write_ahead  # type: ignore[method-assign]
    live_effects.Effects._intent = timed_intent  # type: ignore[method-assign]
    live_effects.Effects.carry_out = timed_carry_out  # type: ignore[method-assign]
    SimBroker.place = timed_place  # type: ignore[method-assign]
    asyncio.run(bench_tick._round(rate))
    spans: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    last: dict[str, float] = {}
    for name, t in stamps:
        last[name] = t
        if name == "place" and {"decided", "istart", "iend"} <= last.keys():
            spans["decided->lane"].append(last["istart"] - last["decided"])
            spans["write_ahead"].append(last.get("wa", 0.0))
            spans["lane: intent"].append(last["iend"] - last["istart"])
            spans["intent->place"].append(last["place"] - last["iend"])
            last = {}
    for name, values in spans.items():
        values.sort()
        if values:
            print(f"{name:16} p50 {statistics.median(values) * 1e3:.3f}  p90 {values[int(len(values) * 0.9)] * 1e3:.3f}"
                  f"  max {values[-1] * 1e3:.3f} ms  (n={len(values)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
