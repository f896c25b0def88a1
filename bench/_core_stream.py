# The 1-second stream of INTERFACES.md (used by bench/core_throughput.py until bench/stream.py lands).
from datetime import timedelta
from decimal import Decimal
import heapq
import itertools
from daemon.bars import load_minute_bars
from daemon.feed import underlying_quote
CENT = Decimal("0.01")
def one_second(folder, symbols):
    seq = itertools.count()
    def per(sym):
        for bar in load_minute_bars(folder, sym):
            o, c = bar.open, bar.close
            for k in range(60):
                at = bar.start + timedelta(seconds=k + 1)
                p = (o + (c - o) * k / 59).quantize(CENT)
                yield at, 0, next(seq), underlying_quote(sym, p, at, sym == "VIX")
    return heapq.merge(*[per(s) for s in symbols], key=lambda e: (e[0], e[1], e[2]))
