"""The operator page (SPEC §11) against a running engine: an open position, a refused signal,
today's decisions with their breakdown, each position's exit plan, and halt behind the admin
token with a confirmation. In Debian's headless Chromium (skips, saying so, where it is absent),
and over plain HTTP for the access rules."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import aiohttp
import pytest
import structlog

from daemon.api import start_api
from daemon.auth import Tokens
from daemon.metrics import Metrics
from daemon.page.routes import COOKIE, session_value
from tests.daemon.cdp import chromium_binary, headless_chromium
from tests.daemon.test_live_rig import RIDE, Rig, at

DAY = date(2019, 2, 11)
HOLD = {**RIDE, "exits.zero_dte.bands": [{"starts": "00:00:00", "tiers": [
    {"target": 2, "share": 0.5}, {"target": 3, "share": 0.25}, {"target": 4, "share": 0.25}]}]}
READ, ADMIN = "read-token-5b7e1d0c9f", "admin-token-3c0a84e2d1"


@dataclass
class Running:
    rig: Rig
    url: str


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    """The real engine on the bundled 2019-02-11 morning: one bought SPY call, one refused signal,
    serving the API (and the page) on a free loopback port."""
    # Greek limits and position levels out of the way (RIDE), take-profit tiers far off: the position
    # stays open for the page to show it.
    rig = Rig(tmp_path, "0dte", ["SPY"], overrides=HOLD)
    await rig.start()
    runner = None
    try:
        await rig.until(at(DAY, 10, 0))
        bought = await rig.engine.submit_signal(rig.signal("buy-1", "SPY", "bullish", 0.9, rig.clock.now()), "api")
        assert bought.accepted, bought
        refused = await rig.engine.submit_signal(rig.signal("low-1", "SPY", "bullish", 0.5, rig.clock.now()), "api")
        assert refused.reason == "confidence_below_threshold"
        await rig.until(at(DAY, 10, 6))  # the entry fills, a checkpoint or two land on the curve
        assert len(rig.engine.positions()) == 1
        with structlog.testing.capture_logs():
            runner, port = await start_api(rig.engine, rig.settings, Metrics("0dte"), Tokens(api=READ, admin=ADMIN))
            yield Running(rig, f"http://127.0.0.1:{port}")
    finally:
        if runner is not None:
            await runner.cleanup()
        await rig.close()


async def test_the_page_needs_the_read_token_and_never_shows_a_token(running: Running) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(running.url + "/") as r:
            assert r.status == 200 and 'action="/login"' in await r.text()  # the sign-in form only
            assert "session P&amp;L" not in await r.text()
        async with http.get(running.url + "/", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with http.get(running.url + "/", headers={"Authorization": f"Bearer {READ}"}) as r:
            html = await r.text()
            assert r.status == 200 and 'id="trading-state"' in html
            assert READ not in html and ADMIN not in html and session_value(READ) not in html
            assert "script" not in html.lower()  # server-rendered, no JavaScript
            assert 'http-equiv="refresh"' not in html
        async with http.get(running.url + "/?refresh=30", headers={"Authorization": f"Bearer {READ}"}) as r:
            assert '<meta http-equiv="refresh" content="30">' in await r.text()
        async with http.get(running.url + "/?refresh=1", headers={"Authorization": f"Bearer {READ}"}) as r:
            assert 'http-equiv="refresh"' not in await r.text()  # faster than 5 s is not honoured
        async with http.post(running.url + "/login", data={"token": READ}, allow_redirects=False) as r:
            assert r.status == 303
            cookie = r.cookies[COOKIE]
            assert cookie.value == session_value(READ) != READ and cookie["httponly"] and cookie["samesite"] == "Strict"
        # The read token signs in, but an action needs the admin token typed at confirmation.
        async with http.post(running.url + "/page/halt/confirm",
                             data={"reason": "x", "confirm": "yes", "admin_token": READ}) as r:
            assert r.status == 403 and "not the admin token" in await r.text()
        async with http.post(running.url + "/page/halt/confirm", data={"reason": "x", "admin_token": ADMIN}) as r:
            assert r.status == 400  # not confirmed
    assert running.rig.engine.control.state.value == "ACTIVE"


@pytest.mark.timeout(180)
async def test_the_page_in_headless_chromium(running: Running, tmp_path: Path) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("headless Chromium not installed (Debian package `chromium`; .ci/run installs it)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    async with headless_chromium(profile, binary) as browser:
        await browser.navigate(running.url + "/")
        assert await browser.eval("document.getElementById('sign-in') !== null")
        await browser.submit(f"document.getElementById('token').value = {READ!r}; "
                             "document.querySelector('form').submit()")
        assert await browser.eval("document.getElementById('trading-state').textContent") == "ACTIVE"
        assert await browser.eval("document.cookie") == ""  # the session cookie is HttpOnly

        # Today's decisions with their full breakdown: the refused one and the bought one.
        refused = await browser.eval("document.querySelector('details[data-signal-id=\"low-1\"]').textContent")
        assert "REFUSED confidence_below_threshold" in refused and "confidence 0.5" in refused
        bought = await browser.eval("document.querySelector('details[data-signal-id=\"buy-1\"]').textContent")
        for part in ("ACCEPTED", "Factors", "confidence", "Multiplier caps", "Contract caps", "Strike walk",
                     "Gate checks", "minimum bet"):
            assert part in bought, part
        assert re.search(r"Chosen: SPY \d{8} \d+(\.\d+)? C", bought) or "Chosen: SPY" in bought

        # The open position and its exit plan.
        plan = await browser.eval(
            "(() => { const r = document.querySelector('tr.position'); return {"
            "target: r.querySelector('.next-target').textContent, stop: r.querySelector('.stop').textContent,"
            "trailing: r.querySelector('.trailing-stop').textContent,"
            "forced: r.querySelector('.forced-close').textContent}; })()")
        assert re.match(r"\d+\.\d{2} \(tier 1/\d \+\d+\.\d%\)", plan["target"]), plan
        assert re.match(r"\d+\.\d{2} \(hard_stop\)", plan["stop"]), plan
        assert plan["forced"] == "2019-02-11 15:43", plan  # the close-out starts 120 s before flat-by 15:45
        assert await browser.eval("document.querySelectorAll('#equity-curve polyline').length") == 1
        html = await browser.eval("document.documentElement.outerHTML")
        assert READ not in html and ADMIN not in html
        await browser.screenshot(tmp_path / "operator-page.png")

        # Halt: reason, confirmation page, the admin token, confirm.
        await browser.submit("document.getElementById('halt-reason').value = 'page drill'; "
                             "document.getElementById('halt-button').click()")
        assert "Halt trading?" in await browser.eval("document.body.textContent")
        await browser.submit(f"document.getElementById('admin-token').value = {ADMIN!r}; "
                             "document.getElementById('confirm').click()")
        assert await browser.eval("document.getElementById('trading-state').textContent") == "HALTED"
        assert "page drill" in await browser.eval("document.getElementById('halt-reason').textContent")
        assert "halt: done" in await browser.eval("document.getElementById('flash').textContent")
        await browser.screenshot(tmp_path / "operator-page-halted.png")
    assert running.rig.engine.control.state.value == "HALTED"
    assert (tmp_path / "operator-page.png").stat().st_size > 10_000
    print(f"screenshots: {tmp_path / 'operator-page.png'} {tmp_path / 'operator-page-halted.png'}")
