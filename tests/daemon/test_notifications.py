"""Notifications (SPEC §11) through apprise to a local HTTP receiver started here (`json://`):
one message per event kind from the real engine, none that ever blocks the core, retries with
backoff, and a per-kind rate limit so a flapping gateway cannot spam."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from config.models import NOTIFICATION_EVENTS, NotificationsConfig
from daemon import notifications
from daemon.notifications import NotificationError, Notifier
from tests.daemon.test_live_rig import RIDE, Rig, at, breaker_levels


class Receiver:
    """A webhook on 127.0.0.1:<free port> that records each JSON body; can stall or fail on purpose."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.stall_s = 0.0
        self.fail_next = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(receiver.stall_s)
                with receiver.lock:
                    failing = receiver.fail_next > 0
                    receiver.fail_next -= failing
                    if not failing:
                        receiver.messages.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def kinds(self) -> list[str]:
        with self.lock:
            return [m["title"].split(": ", 1)[1].replace(" ", "_") for m in self.messages]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _notifier(receiver: Receiver, **cfg: Any) -> Notifier:
    config = NotificationsConfig(urls=(receiver.url,), **cfg)
    notifier = Notifier.from_settings(config, "0dte")
    assert notifier is not None
    notifier.start()
    return notifier


async def test_the_engine_sends_one_message_per_event_kind(tmp_path: Path, receiver: Receiver) -> None:
    # burst 1 and a long interval: a kind that happens again (the flatten's several fills) sends once.
    notifier = _notifier(receiver, events=NOTIFICATION_EVENTS, burst=1, per_kind_interval_s=3600)
    notifications.install(notifier)
    rig = Rig(tmp_path, "0dte", ["SPY"], overrides={**RIDE, **breaker_levels(0.0001, 0.0002, 0.0003, 0.0004)})
    await rig.start()
    try:
        await rig.until(at(date(2019, 2, 11), 10, 0))
        engine = rig.engine
        await engine.halt("test halt", "test")
        await engine.resume("test")
        await engine.flatten("test flatten", "test")
        engine.on_connection(False, "gateway dropped")  # the sim is never inside a restart window
        engine.on_connection(True, "back")
        await engine.settle()  # reconciled after the reconnect
        notifications.notify("store_fault", "store unavailable: disk full (journal's listener)")
        outcome = await engine.submit_signal(rig.signal("n-1", "SPY", "bullish", 0.9, rig.clock.now()), "t")
        assert outcome.accepted, outcome
        # The entry's spread marks the position a few dollars down: past every tiny level; level 4 flattens.
        await rig.until(at(date(2019, 2, 11), 10, 20))
        assert engine.control.level == 4
        await rig.until(at(date(2019, 2, 11), 16, 16))  # the core's daily_report timer (16:15): the shell sends it
        await engine.settle()
        assert notifier.wait_idle(30)
    finally:
        notifications.install(None)
        notifier.stop()
        await rig.close()
    # every kind the engine's own flow raises; the inversion needs option chains (tests/daemon/test_regime_notify.py)
    assert sorted(receiver.kinds()) == sorted(set(NOTIFICATION_EVENTS) - {"vol_term_inversion"})
    by_kind = dict(zip(receiver.kinds(), receiver.messages, strict=True))
    assert "HALTED by test: test halt" in by_kind["halt"]["message"]
    assert "breaker level 0 -> 4 (emergency_halt, tripped): session P&L -$" in by_kind["breaker"]["message"]
    assert "closing every position" in by_kind["emergency_flatten"]["message"]
    assert "2019-02-11: signals" in by_kind["daily_report"]["message"]
    assert notifier.stats.failed == notifier.stats.dropped_full == 0


async def test_a_stalled_receiver_never_blocks_the_core(receiver: Receiver) -> None:
    receiver.stall_s = 1.0  # every send takes a second
    notifier = _notifier(receiver, burst=50)
    lags: list[float] = []

    async def ticker() -> None:  # the core's loop: how late does it wake while messages go out?
        for _ in range(40):
            started = time.perf_counter()
            await asyncio.sleep(0.02)
            lags.append(time.perf_counter() - started - 0.02)

    try:
        task = asyncio.create_task(ticker())
        worst_call = 0.0
        for n in range(5):
            started = time.perf_counter()
            assert notifier.notify("halt", f"message {n}")
            worst_call = max(worst_call, time.perf_counter() - started)
            await asyncio.sleep(0.05)
        await task
        assert len(receiver.messages) <= 1  # the receiver is still busy with the first ...
        assert worst_call < 0.01 and max(lags) < 0.1  # ... and the core never waited for it
        assert notifier.wait_idle(30)
    finally:
        notifier.stop()
    assert [m["message"] for m in receiver.messages] == [f"message {n}" for n in range(5)]


async def test_messages_go_out_even_while_the_core_is_blocked(receiver: Receiver) -> None:
    """The sender is a thread of its own: a core stuck in a long synchronous call (the case a
    store-fault or disconnect message matters most) does not hold the message back."""
    notifier = _notifier(receiver)
    try:
        notifier.notify("store_fault", "store unavailable")
        deadline = time.monotonic() + 10
        while not receiver.messages and time.monotonic() < deadline:
            time.sleep(0.01)  # blocking the event loop on purpose: no await anywhere in here
        assert [m["message"] for m in receiver.messages] == ["store unavailable"]
    finally:
        notifier.stop()


def test_a_failed_send_is_retried_with_backoff(receiver: Receiver) -> None:
    receiver.fail_next = 2
    waits: list[float] = []
    config = NotificationsConfig(urls=(receiver.url,), retries=3, backoff_s=2)
    notifier = Notifier(config, "0dte", notifications.apprise_sender(config.urls, 5), sleep=waits.append)
    notifier.start()
    try:
        notifier.notify("disconnect", "gateway dropped")
        assert notifier.wait_idle(30)
    finally:
        notifier.stop()
    assert waits == [2.0, 4.0] and len(receiver.messages) == 1 and notifier.stats.sent == 1


def test_a_flapping_gateway_is_rate_limited_per_kind() -> None:
    sent: list[tuple[str, str]] = []
    now = [0.0]
    notifier = Notifier(NotificationsConfig(burst=2, per_kind_interval_s=60), "0dte",
                        lambda title, body, kind: sent.append((kind, body)) is None, monotonic=lambda: now[0])
    notifier.start()
    try:
        results = [notifier.notify("disconnect", f"drop {n}") for n in range(10)]
        assert notifier.notify("halt", "halted")  # another kind has its own bucket
        now[0] = 61.0
        assert notifier.notify("disconnect", "drop 10")
        assert notifier.wait_idle(10)
    finally:
        notifier.stop()
    assert results == [True, True] + [False] * 8
    assert [b for k, b in sent if k == "disconnect"][-1] == "drop 10\n(8 earlier disconnect messages held back by the rate limit)"


def test_configuration_errors_are_clear(tmp_path: Path) -> None:
    assert Notifier.from_settings(NotificationsConfig(), "0dte") is None  # no URL: off
    with pytest.raises(NotificationError) as bad:
        Notifier.from_settings(NotificationsConfig(urls=("nonsense-scheme://x",)), "0dte")
    assert bad.value.code == "bad_notification_url"
    missing = tmp_path / "nope"
    with pytest.raises(NotificationError) as unreadable:
        Notifier.from_settings(NotificationsConfig(urls_file=str(missing)), "0dte")
    assert unreadable.value.code == "notification_urls_unreadable"
    secrets = tmp_path / "urls"
    secrets.write_text("# webhook\njson://127.0.0.1:9/\n")
    assert notifications.read_urls(NotificationsConfig(urls_file=str(secrets))) == ["json://127.0.0.1:9/"]
    assert notifications.notify("halt", "no notifier installed") is False


async def test_tradingd_run_sends_through_the_profiles_configured_urls(receiver: Receiver, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from daemon.app import App, RunOptions

    monkeypatch.setenv("TRADINGD_NOTIFICATIONS__URLS", f'["{receiver.url}"]')
    monkeypatch.setenv("TRADINGD_DAEMON__STATE_DIR", str(tmp_path))
    app = App(RunOptions(profile="0dte", broker="sim", db=f"sqlite:///{tmp_path / 'n.db'}", api=False,
                         json_logs=True), out=io.StringIO())
    run = asyncio.ensure_future(app.run())
    try:
        for _ in range(300):
            if app.engine is not None and app.engine.phase == "RUNNING":
                break
            await asyncio.sleep(0.05)
        assert notifications.installed() is not None
        await app.engine.halt("wired from the profile", "test")  # type: ignore[union-attr]
    finally:
        app.stop()
        assert await asyncio.wait_for(run, 30) == 0
    assert notifications.installed() is None  # a stopped daemon leaves no notifier behind
    assert [m["message"] for m in receiver.messages] == [
        "HALTED by test: wired from the profile. No entries until resume."]
