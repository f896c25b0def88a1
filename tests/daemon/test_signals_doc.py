"""docs/signals.md and the daemon agree: every reason code the code can answer is in the doc's
table and nothing else is (the list derived from the code), and real requests to the real
engine's API answer the status and code the doc says. The example signal files load."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

import broker.selection as selection
import daemon.api as api
import risk.reasons as reasons
from daemon.api import start_api
from daemon.auth import Tokens
from daemon.control import INTERNAL_ERROR
from daemon.metrics import Metrics
from daemon.signals.jsonl import load_signal_file
from tests.daemon.test_live_rig import RIDE, Rig, at

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "signals.md"
_CODE = re.compile(r"^[a-z][a-z0-9_]+$")
READ, ADMIN = "doc-read-token", "doc-admin-token"


def doc_table() -> dict[str, int]:
    """reason code -> HTTP status, from the doc's "Reason codes" table."""
    section = DOC.read_text().split("## Reason codes", 1)[1]
    table: dict[str, int] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].isdigit():
            for code in re.findall(r"`([a-z0-9_]+)`", cells[1]):
                assert code not in table, f"{code} listed twice"
                table[code] = int(cells[0])
    return table


def _constants(module: Any) -> set[str]:
    return {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str) and _CODE.match(v)}


def codes_from_the_code() -> set[str]:
    # The strike walk's own codes reach the decision, but for these two, answered as stale_market_data
    # (daemon/entries.py: no price to size against).
    walk = _constants(selection) - {selection.LIQUIDITY, selection.NO_UNDERLYING_PRICE}
    engine = {"not_accepting", "not_halted", "not_blocked", INTERNAL_ERROR}
    return _constants(reasons) | walk | _constants(api) | engine


def test_the_doc_lists_every_code_the_daemon_answers_and_no_other() -> None:
    documented, derived = set(doc_table()), codes_from_the_code()
    assert derived - documented == set(), "answered by the code, missing from docs/signals.md"
    assert documented - derived == set(), "in docs/signals.md, answered by no code"


def test_the_doc_gives_rule_refusals_422_and_duplicates_409() -> None:
    table = doc_table()
    for code in _constants(reasons) - {reasons.DUPLICATE_SIGNAL}:
        assert table[code] == 422, code
    assert table[reasons.DUPLICATE_SIGNAL] == 409


def test_operations_doc_names_no_code_the_daemon_does_not_answer() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"^\| [1-5]\d\d \|", line)]
    named = {code for row in rows for code in re.findall(r"`([a-z][a-z0-9_]+)`", row)}
    named |= set(re.findall(r"\b[1-5]\d\d `([a-z][a-z0-9_]+)`", text))
    assert named, "operations.md names no reason codes: the check would prove nothing"
    assert named <= codes_from_the_code() | {"not_found", "method_not_allowed"}, named


def test_the_example_files_load_and_are_for_their_profile() -> None:
    for profile in ("0dte", "7dte"):
        timed = load_signal_file(REPO / "examples" / f"signals-{profile}.jsonl")
        assert len(timed) >= 5
        assert {t.raw["profile"] for t in timed} == {profile}
        assert all(t.at.date() >= date(2019, 2, 11) for t in timed)  # inside the bundled week


@pytest.fixture
async def engine_api(tmp_path: Path) -> AsyncIterator[tuple[Rig, str]]:
    rig = Rig(tmp_path, "0dte", ["SPY"], overrides=RIDE)  # greek limits off: the good signal is bought
    await rig.start()
    try:
        await rig.until(at(date(2019, 2, 11), 10, 0))
        with structlog.testing.capture_logs():
            runner, port = await start_api(rig.engine, rig.settings, Metrics("0dte"), Tokens(api=READ, admin=ADMIN))
            yield rig, f"http://127.0.0.1:{port}"
            await runner.cleanup()
    finally:
        await rig.close()


async def test_real_requests_answer_what_the_doc_says(engine_api: tuple[Rig, str]) -> None:
    rig, url = engine_api
    table = doc_table()
    good = rig.signal("doc-1", "SPY", "bullish", 0.5, rig.clock.now())
    auth = {"Authorization": f"Bearer {READ}", "Content-Type": "application/json"}
    cases: list[tuple[str, dict[str, str], str | bytes, str]] = [
        ("/v1/signals", {"Content-Type": "application/json"}, json.dumps(good), "missing_token"),
        ("/v1/signals", {**auth, "Authorization": "Bearer nope"}, json.dumps(good), "invalid_token"),
        ("/v1/signals", {**auth, "Content-Type": "text/plain"}, json.dumps(good), "unsupported_content_type"),
        ("/v1/signals", auth, "{not json", "malformed_json"),
        ("/v1/signals", auth, b"{" + b" " * 70_000 + b"}", "body_too_large"),
        ("/v1/signals", auth, "[1, 2]", "invalid_signal"),
        ("/v1/signals", auth, json.dumps({**good, "id": "doc-2"}).replace("0.5", "NaN"), "invalid_confidence"),
        ("/v1/signals", auth, json.dumps({**good, "id": "doc-3", "colour": "red"}), "unknown_field"),
        ("/v1/signals", auth, json.dumps({**good, "id": "doc-4", "underlying": "TSLA"}), "unknown_underlying"),
        ("/v1/signals", auth, json.dumps(good), "confidence_below_threshold"),
        ("/v1/signals", auth, json.dumps(good), "duplicate_signal"),
        ("/v1/halt", auth, "{}", "admin_required"),
        ("/v1/halt", {**auth, "Authorization": f"Bearer {ADMIN}"}, "[]", "body_not_object"),
        ("/v1/halt", {**auth, "Authorization": f"Bearer {ADMIN}"}, "{}", "missing_reason"),
        ("/v1/resume", {**auth, "Authorization": f"Bearer {ADMIN}"}, "{}", "not_halted"),
        ("/v1/acknowledge", {**auth, "Authorization": f"Bearer {ADMIN}"}, '{"underlying": "SPY"}', "not_blocked"),
    ]
    async with aiohttp.ClientSession() as http:
        for path, headers, body, code in cases:
            async with http.post(url + path, headers=headers, data=body) as response:
                answer = await response.json()
                assert (response.status, answer["reason"]) == (table[code], code), (path, code, answer)
        async with http.post(url + "/v1/signals", headers=auth,
                             data=json.dumps(rig.signal("doc-ok", "SPY", "bullish", 0.9, rig.clock.now()))) as response:
            answer = await response.json()
            assert response.status == 200 and answer["accepted"] is True and answer["reason"] is None
