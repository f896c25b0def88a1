"""Wiring for `tradingd run`: settings, clock, quote book, broker, store, the core's shell, API.

Live (`--broker ib|sim` without `--replay`): LiveClock, the deterministic core in its asyncio
shell (`daemon.live.LiveShell`; the core's timers are the scheduler's job definitions), runs
until SIGTERM/SIGINT. Replay (`--replay DATA`): the same core in a plain loop over the recorded
bars (`daemon.replay`), the sim venue, and a per-day summary at the end.

Under systemd (`Type=notify`): READY=1 once the engine has started (start-up reconciliation
done), STATUS=<trading state> whenever it changes, WATCHDOG=1 pings while the engine says it
is healthy, STOPPING=1 on shutdown. Outside systemd these are no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal as os_signal
import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.engine import make_url

from broker.quote_model import OptionQuoteModel
from broker.quotes import QuoteBook
from broker.sim import SimBroker, stored_account_state
from config.loader import load_settings
from config.models import Settings
from market import calendar
from daemon import notifications
from daemon import notify as sd
from daemon.bars import Bar, DailyBar, available_symbols, load_daily_bars, load_minute_bars, resolve_data_dir
from market.clock import EXCHANGE_TZ, Clock, LiveClock, VirtualClock
from daemon.live import LiveShell
from daemon.feed import ReplayClock, replay_start
from daemon.logging import configure_logging, get_logger
from daemon.metrics import Metrics
from daemon.regime_report import effects_lines, regime_effects
from daemon.report import summary_json, summary_text
from daemon.signals.jsonl import load_signal_file
from daemon.signals.reference import SOURCE as REFERENCE, OpeningRangeBreakout
from daemon.store import Store, StoreError, default_url
from daemon.store.lock import StoreLock


class RunError(Exception):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class RunOptions:
    profile: str
    broker: str | None = None  # None: the profile's broker.kind
    replay: str | None = None  # "bundled" or a folder of Alpha Vantage CSVs
    speed: float = 0.0
    signals: str | None = None  # "reference" or a JSONL file
    db: str | None = None
    api_port: int | None = None
    json_logs: bool | None = None
    api: bool = True
    summary_json: bool = False
    log_level: str = "info"


def make_settings(options: RunOptions) -> Settings:
    overrides: dict[str, Any] = {}
    if options.broker:
        overrides["broker.kind"] = options.broker
    if options.api_port is not None:
        overrides["daemon.api.port"] = options.api_port
    if options.db:
        overrides["daemon.store.url"] = options.db
    return load_settings(options.profile, overrides=overrides)


def quote_source_problem(options: RunOptions) -> str | None:
    """Why this run would trade blind, or None (SPEC §4.3: `--broker sim` needs a quote source).

    The sim fills against recorded quotes (`--replay`); live, it has none (IB market data for
    the sim is not built), so every signal would be refused `stale_market_data` without a word.
    """
    if options.replay is not None:
        return None
    kind = options.broker or make_settings(options).broker.kind
    if kind != "sim":
        return None
    return ("--broker sim needs a quote source and has none: give --replay DATA (recorded bars, "
            "e.g. --replay bundled), or trade through IB Gateway with --broker ib; without quotes "
            "every signal would be refused stale_market_data")


def replay_store_url(settings: Settings) -> str:
    """A replay without --db starts from an empty database of its own (never the live one)."""
    path = Path(settings.daemon.state_dir) / f"replay-{settings.profile.name}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()
    return f"sqlite:///{path}"


@dataclass
class ReplayData:
    folder: Path
    bars: dict[str, list[Bar]]
    daily: dict[str, list[DailyBar]]
    missing: list[str]

    def closes_before(self, day: date) -> dict[str, list[Decimal]]:
        """Daily closes of every traded symbol strictly before `day` (what is known before the open)."""
        return {s: [b.close for b in bars if b.day < day] for s, bars in self.daily.items() if bars}


def load_replay(spec: str, settings: Settings) -> ReplayData:
    folder = resolve_data_dir(spec)
    have = available_symbols(folder)
    wanted = [*settings.profile.underlyings, settings.profile.vix_symbol]
    missing = [s for s in wanted if s not in have]
    traded = [s for s in settings.profile.underlyings if s in have]
    if not traded:
        raise RunError("replay_no_underlyings", f"{folder} has no 1-minute bars for any of "
                                                f"{', '.join(settings.profile.underlyings)}")
    bars = {s: load_minute_bars(folder, s) for s in wanted if s in have}
    daily = {s: load_daily_bars(folder, s) for s in traded}
    return ReplayData(folder, bars, daily, missing)


class App:
    """One daemon process; `run()` returns the exit code."""

    def __init__(self, options: RunOptions, out: TextIO | None = None):
        self.options = options
        self.out = out or sys.stdout
        self.settings = make_settings(options)
        self.replay = load_replay(options.replay, self.settings) if options.replay else None
        if self.replay is None and options.signals and options.signals != REFERENCE:
            raise RunError("signals_need_replay", "--signals FILE is replayed at its times: it needs --replay")
        if self.replay is None and options.signals == REFERENCE:
            raise RunError("reference_needs_replay", "the reference signal source reads recorded bars: use --replay")
        self.timed_signals = (load_signal_file(options.signals)
                              if options.signals and options.signals != REFERENCE else [])
        kind = self.settings.broker.kind
        if self.replay is not None and kind != "sim":
            raise RunError("replay_needs_sim", "a replay trades against recorded data: use --broker sim")
        self.clock: Clock = LiveClock()
        if self.replay is not None:
            start = replay_start(self.replay.bars, self.timed_signals)
            assert start is not None  # load_replay refuses a folder without bars
            self.clock = ReplayClock(start)
        self.engine: LiveShell | None = None
        self.metrics = Metrics(self.settings.profile.name)
        self.api_port: int | None = None
        self._runner: Any = None
        self._stop = asyncio.Event()
        self.store_lock: StoreLock | None = None
        self.stopped_by: str | None = None  # the signal that ended a replay early
        self._replay_loop: Any = None  # daemon.replay.Replay while one runs
        self.json_logs = False

    def build(self) -> LiveShell:
        """The live daemon: the deterministic core in its asyncio shell (`daemon.live`), over IB or the sim."""
        settings = self.settings
        quotes = QuoteBook()
        model = OptionQuoteModel(quotes, self.clock, settings.broker.sim.model, settings.profile.vix_symbol,
                                 settings.profile.contract_multiplier)
        url = self._locked_store_url()
        store = Store(settings.profile.name, url, state_dir=settings.daemon.state_dir,
                      busy_timeout_ms=settings.daemon.store.busy_timeout_ms)
        if settings.broker.kind == "sim":
            # Live, a restarted sim takes over the paper account the store says it held (IB keeps it at
            # the broker); a replay starts from its own fresh account.
            prior = None if self.replay is not None else (
                lambda: stored_account_state(store, settings, self.clock.now()))
            broker: Any = SimBroker(quotes, self.clock, settings, quote_model=model, prior=prior)
        else:
            from broker.ib.broker import IBBroker

            broker, model = IBBroker(settings, self.clock), None
        self.engine = LiveShell(settings, self.clock, store, broker, quotes, metrics=self.metrics)
        return self.engine

    def _locked_store_url(self) -> str:
        """The store's URL, once this process holds the one-daemon-per-store lock (SPEC §6.2): before
        the store is opened (or a replay's old database cleared) and before the broker is touched."""
        settings = self.settings
        url = settings.daemon.store.url
        fresh_replay = url is None and self.replay is not None
        if fresh_replay:
            url = f"sqlite:///{(Path(settings.daemon.state_dir) / f'replay-{settings.profile.name}.db').resolve()}"
        elif url is None:
            url = default_url(settings.daemon.state_dir, settings.profile.name)
        try:
            self.store_lock = StoreLock(url, settings.profile.name).acquire()
        except StoreError as exc:
            raise RunError(exc.code, str(exc)) from None
        return replay_store_url(settings) if fresh_replay else url

    async def _relock(self, engine: LiveShell) -> None:
        assert self.store_lock is not None
        if await asyncio.to_thread(self.store_lock.reacquire):
            engine.log.info("store_lock_held", where=self.store_lock.where)
            return
        engine.log.error("store_lock_lost", code="store_locked",
                         reason="another tradingd holds this database's lock since the store came back")
        await engine.halt("store lock lost: another tradingd runs on this database", "tradingd")

    def _relock_when_back(self, sink: Any, log: Any) -> None:
        """PostgreSQL: a server restart ends the session holding the advisory lock. When the store is back,
        take it again; if another daemon took it meanwhile, stop (two writers on one store corrupt it)."""
        lock = self.store_lock
        if lock is None or make_url(lock.url).get_backend_name() != "postgresql":
            return

        serial = threading.Lock()  # the store may come back twice in a row: one re-take at a time

        def relock() -> None:
            with serial:
                held = lock.reacquire()
            if held:
                log.info("store_lock_held", where=lock.where)
                return
            log.error("store_lock_lost", code="store_locked",
                      reason="another tradingd holds this database's lock since the store came back")
            self.stop("store_lock_lost")

        def on_change(available: bool, _reason: str | None) -> None:
            if available:  # off the journal's writer thread: taking the lock is I/O of its own
                threading.Thread(target=relock, name="tradingd-relock", daemon=True).start()

        sink.journal.add_listener(on_change)

    async def run(self) -> int:
        if self.replay is not None:
            return await self.run_replay()
        # `--json`: stdout carries the summary and nothing else, the logs go to stderr.
        log_stream = sys.stderr if self.options.summary_json else self.out
        self.json_logs = configure_logging(self.options.json_logs, level=self.options.log_level, stream=log_stream,
                                           clock=self.clock)
        # The XNYS calendar takes a second of pandas to build: on a thread, before the loop has work.
        await asyncio.to_thread(calendar.session_for, self.clock.now().date())
        engine = self.build()
        log = get_logger("tradingd.run", profile=self.settings.profile.name)
        notifier = self._start_notifier()
        engine.on_state = sd.status
        try:
            await engine.start()
        except BaseException:
            self._stop_notifier(notifier)
            raise
        if self.store_lock is not None and make_url(self.store_lock.url).get_backend_name() == "postgresql":
            # A PostgreSQL restart ends the session holding the advisory lock: take it again when the
            # store comes back; if another daemon took it meanwhile, stop trading (SPEC §6.2).
            engine.journal.add_listener(lambda ok, _why: ok and engine.spawn(self._relock(engine), "store-relock"))
        watchdog = None
        try:
            if self.options.api:
                from daemon.api import start_api

                self._runner, self.api_port = await start_api(engine, self.settings, self.metrics)
            sd.ready(engine.state_text())
            log.info("engine_ready", shell="core", trading_state=engine.core.control.state.value)
            watchdog = sd.start_watchdog(engine.healthy)
            await self._live(engine)
        finally:
            sd.stopping()
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            await engine.stop()
            if self._runner is not None:
                await self._runner.cleanup()
                forget_api_url(self.settings, self.api_port)
            await engine.store.close()
            if self.store_lock is not None:
                self.store_lock.release()
            await asyncio.to_thread(self._stop_notifier, notifier)
            if not self.options.summary_json:  # JSON output carries it inside the summary
                where = database_location(engine.store.url)
                self._print_line(f"database: {where}", event="database", database=where)
        return 0

    async def run_replay(self) -> int:
        """A replay: the deterministic core in a plain loop over the recorded week (`daemon.replay`)."""
        from daemon.replay import Replay, StepClock, recorded_events, run_id
        from daemon.store.core_sink import CoreSink, ReplayStoreMismatch
        from daemon.store.journal import JournalSettings

        assert self.replay is not None and isinstance(self.clock, VirtualClock)
        settings = self.settings
        step = StepClock(self.clock.now())
        # `--json`: stdout carries the summary and nothing else, the logs go to stderr.
        log_stream = sys.stderr if self.options.summary_json else self.out
        self.json_logs = configure_logging(self.options.json_logs, level=self.options.log_level, stream=log_stream,
                                           clock=step)
        log = get_logger("tradingd.run", profile=settings.profile.name)
        await asyncio.to_thread(calendar.session_for, self.clock.now().date())
        url = self._locked_store_url()  # one daemon per store (SPEC §6.2), before the store is opened
        store = Store(settings.profile.name, url, state_dir=settings.daemon.state_dir,
                      busy_timeout_ms=settings.daemon.store.busy_timeout_ms)
        await store.upgrade()
        # Every record through the write-behind journal (SPEC 6.2): a store that cannot write stops
        # entries, never exits; the batch's record count commits with it (SPEC 6.3).
        sink = CoreSink(store, JournalSettings.from_config(settings.daemon.journal))
        self._relock_when_back(sink, log)
        signals_bytes = Path(self.options.signals).read_bytes() if self.timed_signals else None
        rid = run_id(settings, [p for p in self.replay.folder.iterdir() if p.is_file()], signals_bytes,
                     str(self.options.signals))
        try:
            resumed = await asyncio.to_thread(sink.claim, rid)
        except ReplayStoreMismatch as exc:
            sink.close()
            await store.close()
            if self.store_lock is not None:
                self.store_lock.release()
            raise RunError(exc.code, str(exc)) from None
        if resumed:
            log.warning("replay_resumed", records_already_stored=resumed, run_id=rid[:12],
                        note="re-running the inputs from the start; what the store holds is not written again")
        listener = None
        if self.options.signals == REFERENCE:
            log.info("reference_signals", note="DEMONSTRATION signal source: an opening-range breakout on the "
                                               "recorded bars; it shows the daemon working, it predicts nothing")
            listener = OpeningRangeBreakout(settings.profile.name, settings.profile.underlyings).on_bar
        source = REFERENCE if self.options.signals == REFERENCE else f"replay:{self.options.signals}"

        def report(day: date) -> None:
            from daemon.report import day_lines
            from daemon.store.store import Store as _Store

            # The report reads the store: only once it holds the day (a store away is not waited for).
            if not sink.flush(settings.daemon.journal.durable_timeout_s):
                log.warning("daily_report_skipped", code="store_unavailable", session=day.isoformat(),
                            reason=sink.journal.reason, pending=sink.pending)
                return
            try:
                with store.transaction() as session:
                    days = _Store.summary_by_day.__store_op__(session, store.profile)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - a report must never stop the replay
                log.warning("daily_report_skipped", code="store_unavailable", session=day.isoformat(),
                            reason=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                return
            for summary in days:
                if summary.session_date == day:
                    for line in day_lines(summary):
                        log.info("daily_report", line=line)

        from daemon.shell import CoreControl, Inbox

        inbox = Inbox()
        replay = Replay(settings, self.clock.now(), sink=sink, bar_listener=listener, signal_source=source,
                        daily_closes=self.replay.closes_before, on_report=report, clock=step, inbox=inbox,
                        speed=self.options.speed)
        if self.options.api:
            from daemon.api import start_api

            control = CoreControl(replay.core, inbox, step.now, extra=lambda: {"store": sink.status()})
            self._runner, self.api_port = await start_api(control, settings, self.metrics)
        await replay.core.regime.refresh_calendar()  # the operator's calendar source (I/O: the shell's part)
        if self.replay.missing:
            log.warning("replay_symbols_missing", symbols=self.replay.missing,
                        note="these underlyings have no recorded bars and are not traded in this replay")
        events = recorded_events(self.replay.bars, self.timed_signals, frozenset({settings.profile.vix_symbol}))
        last = max(b[-1].end for b in self.replay.bars.values() if b).astimezone(EXCHANGE_TZ).date()
        self._replay_loop = replay
        self._on_signals(self.stop)
        try:
            stats = await asyncio.to_thread(replay.run, events, datetime.combine(last, time(23, 59),
                                                                                  tzinfo=EXCHANGE_TZ))
            # Everything the run decided is written before the summary reads it, however long the store
            # is away (SIGTERM gives up: a resumed replay writes what is missing).
            sink.journal.retry_now()
            flushed = await asyncio.to_thread(sink.wait_flushed, lambda: self.stopped_by is not None)
            log.info("replay_done", quotes=stats.quotes, option_quotes=stats.option_quotes, bars=stats.bars,
                     signals=stats.signals, fills=stats.fills, events_per_s=round(stats.events_per_s),
                     wall_s=round(stats.wall_s, 2))
            self._print_line(f"replay: {stats.quotes} quotes in {stats.wall_s:.2f} s = "
                             f"{stats.events_per_s:,.0f} quote events/s", event="replay_speed", quotes=stats.quotes,
                             wall_s=round(stats.wall_s, 2), events_per_s=round(stats.events_per_s))
            if self.stopped_by is not None:
                self._print_line(f"replay stopped by {self.stopped_by} at {step.now():%Y-%m-%d %H:%M:%S %Z}"
                                 "; partial summary follows", event="replay_stopped",
                                 signal=self.stopped_by, at=step.now().isoformat())
            if not flushed:  # stopped while the store was away: its summary would be short of what was decided
                self._print_line(f"no summary: the store is unavailable ({sink.journal.reason}); "
                                 f"{sink.pending} records not written (run the replay again on this --db to "
                                 "write them)", event="replay_summary_skipped", code="store_unavailable",
                                 pending=sink.pending)
                return 1
            await self.print_summary_of(store)
        finally:
            inbox.close()
            if self._runner is not None:
                await self._runner.cleanup()
                forget_api_url(self.settings, self.api_port)
            sink.close()
            await store.close()
            if self.store_lock is not None:
                self.store_lock.release()
            if not self.options.summary_json:  # JSON output carries it inside the summary
                where = database_location(store.url)
                self._print_line(f"database: {where}", event="database", database=where)
        return 0

    async def print_summary_of(self, store: Store) -> None:
        await store.drain()
        days = await store.summary_by_day()
        effects = regime_effects(await store.recent_decisions(limit=1_000_000),
                                 await store.list_exit_events(limit=1_000_000))
        if self.options.summary_json or self.json_logs:  # stdout is JSON only: the summary is a JSON line too
            import json

            extra = {"event": "replay_summary", "level": "info"} if not self.options.summary_json else {}
            print(json.dumps({**extra, "profile": self.settings.profile.name, "days": summary_json(days),
                              "regime_effects": {d.isoformat(): v for d, v in effects.items()},
                              "database": database_location(store.url),
                              "complete": self.stopped_by is None}), file=self.out)
        else:
            print(summary_text(days, self.settings.profile.name), file=self.out)
            print("\n".join(effects_lines(effects, self.settings.profile.name)), file=self.out)
        self.out.flush()

    def _start_notifier(self) -> notifications.Notifier | None:
        """The profile's notifier, installed for `notifications.notify`; None when none is configured.
        A replay tells nobody: its events happened years ago."""
        if self.replay is not None:
            return None
        try:
            notifier = notifications.Notifier.from_settings(self.settings.notifications, self.settings.profile.name)
        except notifications.NotificationError as exc:
            raise RunError(exc.code, str(exc)) from None
        if notifier is not None:
            notifier.start()
            notifications.install(notifier)
        return notifier

    @staticmethod
    def _stop_notifier(notifier: notifications.Notifier | None) -> None:
        """Send what is queued (a few seconds at most), then stop telling anyone."""
        if notifier is not None:
            notifications.install(None)
            notifier.stop()

    def _on_signals(self, stop: Any) -> None:
        """SIGTERM/SIGINT call `stop(name)`: a clean end (summary, database line), not a dead process."""
        loop = asyncio.get_running_loop()
        for sig in (os_signal.SIGTERM, os_signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop, sig.name)

    def _print_line(self, text: str, **fields: Any) -> None:
        """One line of our own on stdout: a JSON line when the logs are JSON (stdout then holds
        JSON only), else the text."""
        if self.options.summary_json:  # stdout holds the summary's JSON alone
            print(text, file=sys.stderr)
            return
        if self.json_logs:
            import json

            print(json.dumps({"level": "info", **fields}), file=self.out)
        else:
            print(text, file=self.out)
        self.out.flush()

    async def _live(self, engine: LiveShell) -> None:
        """Until SIGTERM/SIGINT (or `stop()`): the core's own timers drive the jobs (no APScheduler here)."""
        self._on_signals(self.stop)
        await self._stop.wait()

    def stop(self, by: str | None = None) -> None:
        if by is not None and self.stopped_by is None:
            self.stopped_by = by
        self._stop.set()
        if self._replay_loop is not None:
            self._replay_loop.stop()


def forget_api_url(settings: Settings, port: int | None) -> None:
    """A stopped daemon leaves no URL behind for the CLI to find (only its own: another daemon of
    the profile may have written the file since)."""
    from daemon.auth import api_url_file

    path = api_url_file(settings)
    with contextlib.suppress(OSError):
        if port is not None and path.read_text().strip().endswith(f":{port}"):
            path.unlink()


def database_location(url: str) -> str:
    """Where the state is: the file of a SQLite URL, else the URL without its password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).resolve())
    return parsed.render_as_string(hide_password=True)


def main_async(options: RunOptions) -> int:
    return asyncio.run(App(options).run())
