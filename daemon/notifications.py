"""Telling the operator (SPEC §11): breaker level changes, halts and resumes, emergency flatten,
broker disconnects outside the restart windows, store faults, fills (optional), the daily report.

Sent through apprise (one library for ntfy, Telegram, Slack, e-mail, webhooks...) to the URLs
the profile configures (`[notifications]`). Never blocking the core: `notify()` only puts the
message on a bounded queue and returns; one daemon thread drains it, so a slow or dead
receiver, its retries and their backoff never touch the event loop. A full queue drops the
message and counts it. Each event kind has its own token bucket (`burst`, refilled one per
`per_kind_interval_s`): a flapping gateway sends a few messages, then one per interval saying
how many were held back.

Entry point for every module: `notify(event_kind, text)`. It goes to the process's installed
Notifier (`install()`, done by `tradingd run`) and is a no-op without one (tests, tools).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.models import NOTIFICATION_EVENTS, NotificationsConfig
from daemon.logging import get_logger

log = get_logger("daemon.notifications")

# What a send is: (title, body, kind) -> delivered?  apprise's by default; a test may pass its own.
Sender = Callable[[str, str, str], bool]
Monotonic = Callable[[], float]
Sleep = Callable[[float], None]

_STOP = object()


class NotificationError(ValueError):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass
class _Bucket:
    tokens: float
    updated: float
    held_back: int = 0


@dataclass
class NotifierStats:
    queued: int = 0
    sent: int = 0
    failed: int = 0  # gave up after every retry
    dropped_full: int = 0  # the queue was full
    held_back: int = 0  # over a kind's rate
    by_kind: dict[str, int] = field(default_factory=dict)


def read_urls(cfg: NotificationsConfig) -> list[str]:
    """The configured URLs plus those of `urls_file` (blank lines and # comments skipped)."""
    urls = list(cfg.urls)
    if cfg.urls_file:
        path = Path(cfg.urls_file).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise NotificationError("notification_urls_unreadable",
                                    f"cannot read notifications.urls_file {path}: {exc.strerror or exc}") from None
        urls += [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return urls


def apprise_sender(urls: Sequence[str], timeout_s: float) -> Sender:
    """One Apprise object for all URLs; a URL apprise does not understand is refused at start."""
    import apprise

    client = apprise.Apprise()
    for url in urls:
        if not client.add(url):
            raise NotificationError("bad_notification_url",
                                    f"apprise does not understand the notification URL {_redact(url)}")
    for server in client:  # each plugin's own HTTP timeouts: a dead receiver costs seconds, not minutes
        server.socket_connect_timeout = timeout_s
        server.socket_read_timeout = timeout_s

    def send(title: str, body: str, kind: str) -> bool:
        notify_type = apprise.NotifyType.FAILURE if kind in ("breaker", "emergency_flatten", "disconnect",
                                                              "store_fault") else apprise.NotifyType.INFO
        return bool(client.notify(body=body, title=title, notify_type=notify_type))

    return send


class Notifier:
    """The bounded queue and its draining thread. `start()` once, `stop()` at shutdown."""

    def __init__(self, cfg: NotificationsConfig, profile: str, sender: Sender | None = None, *,
                 monotonic: Monotonic = time.monotonic, sleep: Sleep | None = None):
        self.cfg = cfg
        self.profile = profile
        self.events = frozenset(cfg.events)
        self._sender = sender
        self._monotonic = monotonic
        self._stopping = threading.Event()
        # Backoff waits on the stop event: shutdown does not sit out a retry schedule.
        self._sleep = sleep or (lambda s: self._stopping.wait(s) and None)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=cfg.queue_size)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stats = NotifierStats()

    @classmethod
    def from_settings(cls, cfg: NotificationsConfig, profile: str) -> Notifier | None:
        """None when no URL is configured (notifications off)."""
        urls = read_urls(cfg)
        if not urls:
            return None
        return cls(cfg, profile, apprise_sender(urls, float(cfg.timeout_s)))

    # ------------------------------------------------------------------ the core's side: never blocks

    def notify(self, kind: str, text: str) -> bool:
        """Queue one message; True when queued. Never raises, never waits."""
        try:
            if kind not in NOTIFICATION_EVENTS:
                log.warning("notification_unknown_kind", kind=kind)
                return False
            if kind not in self.events:
                return False
            allowed, held = self._take(kind)
            if not allowed:
                return False
            if held:
                text = f"{text}\n({held} earlier {kind} message{'s' if held != 1 else ''} held back by the rate limit)"
            self._queue.put_nowait((kind, text))
            with self._lock:
                self.stats.queued += 1
            return True
        except queue.Full:
            with self._lock:
                self.stats.dropped_full += 1
            log.warning("notification_dropped", kind=kind, code="notification_queue_full",
                        queue_size=self.cfg.queue_size)
            return False
        except Exception as exc:  # noqa: BLE001 - telling the operator must never stop trading
            log.warning("notification_failed", kind=kind, code="notification_error", error=repr(exc))
            return False

    def _take(self, kind: str) -> tuple[bool, int]:
        """The kind's token bucket: (allowed, how many were held back since the last one allowed)."""
        now = self._monotonic()
        interval = float(self.cfg.per_kind_interval_s)
        with self._lock:
            bucket = self._buckets.setdefault(kind, _Bucket(float(self.cfg.burst), now))
            bucket.tokens = min(float(self.cfg.burst), bucket.tokens + (now - bucket.updated) / interval)
            bucket.updated = now
            if bucket.tokens < 1:
                bucket.held_back += 1
                self.stats.held_back += 1
                return False, 0
            bucket.tokens -= 1
            held, bucket.held_back = bucket.held_back, 0
            return True, held

    # ------------------------------------------------------------------ the thread's side

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name=f"notifications-{self.profile}", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is queued (within `timeout_s`), then end the thread."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
        self._stopping.set()
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
        self._thread = None

    def wait_idle(self, timeout_s: float) -> bool:
        """True once every queued message was sent or given up (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                kind, text = item
                self._deliver(kind, text)
            finally:
                self._queue.task_done()

    def _deliver(self, kind: str, text: str) -> None:
        title = f"tradingd {self.profile}: {kind.replace('_', ' ')}"
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self._sleep(float(self.cfg.backoff_s) * 2 ** (attempt - 1))
            try:
                sent = self._sender(title, text, kind) if self._sender is not None else False
            except Exception as exc:  # noqa: BLE001 - a plugin's bug is a failed send, not a dead thread
                log.warning("notification_send_error", kind=kind, attempt=attempt + 1, error=repr(exc))
                sent = False
            if sent:
                with self._lock:
                    self.stats.sent += 1
                    self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
                return
            if self._stopping.is_set() and attempt:
                break
        with self._lock:
            self.stats.failed += 1
        log.warning("notification_undelivered", kind=kind, code="notification_undelivered",
                    attempts=self.cfg.retries + 1)


# ------------------------------------------------------------------ the process's notifier

_installed: Notifier | None = None


def install(notifier: Notifier | None) -> None:
    """Make `notify()` go to `notifier` (None: back to a no-op)."""
    global _installed
    _installed = notifier


def installed() -> Notifier | None:
    return _installed


def notify(event_kind: str, text: str) -> bool:
    """Tell the operator, if notifications are on. Never blocks, never raises. Kinds:
    breaker, halt, resume, flatten, emergency_flatten, disconnect, store_fault, fill, daily_report,
    vol_term_inversion (SPEC §10.2: told once per inversion)."""
    notifier = _installed
    return notifier.notify(event_kind, text) if notifier is not None else False


def _redact(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://…" if rest else url
