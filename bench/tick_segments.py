"""Where tick-to-order goes, segment by segment (room tick; not part of `make bench`).

Runs one round of bench_tick (`python bench/tick_segments.py 400|4000`) with `perf_counter` stamps on
`Effects.carry_out` (the core's order joins the lane), `Effects._intent` (the lane starts and ends the
write-ahead), `Journal._write` (the writer thread's transaction that carries the intent) and
`SimBroker.place`, and prints each segment's p50 / p90 / max. docs/performance.md holds the figures.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEGMENTS = ("decided->istart", "istart->wstart", "write", "wend->iend", "iend->place")


def main(rate: int) -> None:
    from bench import bench_tick
    from broker.sim import SimBroker
    from daemon import live_effects
    from daemon.store.journal import Journal

    stamps: list[tuple[str, float]] = []
    write, intent, carry_out, place = (Journal._write, live_effects.Effects._intent,
                                       live_effects.Effects.carry_out, SimBroker.place)

    def timed_write(self: Any, batch: Any) -> Any:
        t = time.perf_counter()
        try:
            return write(self, batch)
        finally:
            if any(r.durable for r in batch):
                stamps.extend((("wstart", t), ("wend", time.perf_counter())))

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

    Journal._write = timed_write  # type: ignore[method-assign]
    live_effects.Effects._intent = timed_intent  # type: ignore[method-assign]
    live_effects.Effects.carry_out = timed_carry_out  # type: ignore[method-assign]
    SimBroker.place = timed_place  # type: ignore[method-assign]
    asyncio.run(bench_tick._round(rate))
    spans: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    last: dict[str, float] = {}
    for name, t in stamps:
        last[name] = t
        if name == "place" and {"decided", "istart", "wstart", "wend", "iend"} <= last.keys():
            spans["decided->istart"].append(last["istart"] - last["decided"])
            spans["istart->wstart"].append(last["wstart"] - last["istart"])
            spans["write"].append(last["wend"] - last["wstart"])
            spans["wend->iend"].append(last["iend"] - last["wend"])
            spans["iend->place"].append(last["place"] - last["iend"])
            last = {}
    for name, values in spans.items():
        values.sort()
        if values:
            print(f"{name:16} p50 {statistics.median(values) * 1e3:.3f}  p90 {values[int(len(values) * 0.9)] * 1e3:.3f}"
                  f"  max {values[-1] * 1e3:.3f} ms  (n={len(values)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 400)
