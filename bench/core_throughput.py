"""Core-only throughput: the 1-second stream into Core.handle, 5 positions held, each held option's quote
(a linear function of its underlying) fed after every quote of its underlying."""
import sys
import time
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from _core_stream import one_second
from daemon.bars import resolve_data_dir, available_symbols
from config.loader import load_settings
from daemon.core.core import Core
from daemon.core.events import QuoteEvent
from daemon.core.timers import Timers
from daemon.core.ledger import new_position
from daemon.replay import SimChains, _closeout
from daemon.scheduler import job_specs
from broker.working import Working
from market import calendar
from market.types import OptionContract, Quote
from dataclasses import replace
from decimal import Decimal
from datetime import datetime, date, time as dtime
from market.session import EXCHANGE_TZ
profile = sys.argv[1] if len(sys.argv) > 1 else "7dte"
settings = load_settings(profile)
folder = resolve_data_dir("bundled")
syms = sorted(available_symbols(folder))
stream = list(one_second(folder, syms))
start = datetime.combine(stream[0][0].date(), dtime(0), tzinfo=EXCHANGE_TZ)
spots = {"SPY": 270, "QQQ": 170, "AAPL": 170, "MSFT": 105, "AMZN": 1640}
first = {}
for at, _, _, q in stream:
    if q.key in spots and q.key not in first: first[q.key] = q.mid
keys = {}
records = []
expiry = date(2019, 3, 15)
for i, u in enumerate(spots, 1):
    c = OptionContract(u, expiry, Decimal(spots[u]), "C")
    keys[u] = c.key
    records.append(replace(new_position(i, c, start, f"s{i}"), open_qty=10, original_qty=10, entry_price=Decimal("5.00")))
# 0dte: every position is closed at the 15:45 close-out, so the 0dte figure replays each session up to
# 15:44 (and fires no timers) to keep the 5 positions open all week; 7dte replays everything with its timers.
if profile == "0dte":
    stream = [e for e in stream if e[0].time() < dtime(15, 44)]
timers_on = profile != "0dte"
events = []
for at, _, _, q in stream:
    events.append(QuoteEvent(q))
    if q.key in keys:  # the option moves 1 % per 1 % of its underlying (inside every exit level)
        m = (Decimal(5) + (q.mid / first[q.key] - 1) * 5).quantize(Decimal("0.01"))
        events.append(QuoteEvent(Quote(keys[q.key], m - Decimal("0.02"), m + Decimal("0.02"), m, at, 50, 50,
                                       delta=Decimal("0.5"), gamma=Decimal("0.05"))))
timers = Timers(job_specs(settings, calendar.session_for, _closeout(settings)), calendar.session_for, start)
core = Core(settings, execution=None, chains=SimChains(100), timers=timers, sessions=calendar.session_for,
            sessions_between=calendar.sessions_between)
core.orders.execution = Working(settings.execution, quotes=core.quotes, max_quote_age_s=settings.gate.max_quote_age_s)
core.restore(positions=records, highest={"position": 5})
core.start(start)
core.take_effects()
import daemon.core.exits as ex
n = [0]
orig = ex.policy.evaluate
def counted(*a, **k):
    n[0] += 1
    return orig(*a, **k)
ex.policy.evaluate = counted
handle, advance, nxt, take = core.handle, core.advance, core.next_timer_at, core.take_effects
prof = len(sys.argv) > 2
def run():
    effects = 0
    due = nxt()
    for e in events:
        at = e.quote.received_at
        if timers_on and due is not None and at >= due:
            advance(at); due = nxt()
        handle(e)
        if core.out.items:
            effects += len(take())
    return effects
if prof:
    import cProfile
    import pstats
    cProfile.run("run()", "/tmp/perf/core.out"); pstats.Stats("/tmp/perf/core.out").sort_stats("tottime").print_stats(15)
else:
    t = time.perf_counter(); effects = run(); dt = time.perf_counter() - t
    print(f"{profile}: {len(stream)} stream quotes + {len(events)-len(stream)} option quotes in {dt:.2f}s = {len(stream)/dt:,.0f} stream quotes/s, {len(events)/dt:,.0f} events/s; exact evaluations {n[0]}, open {len(core.book)}, effects {effects}")
