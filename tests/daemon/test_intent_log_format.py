"""The intent log's record format (room tidy, issue 8): JSON with explicitly typed values, versioned in
every frame, so a release that moves or renames a class still reads the log an older one left.

Every payload type the journal's operations carry comes back as itself (the same types, the same
Decimal text, the same zone), including all the live shell writes through a real morning; a log left
by session 4 (pickled frames, made by its `IntentLog.append` at a1ad1f0) still folds in; a value the
log has no tag for fails when it is written, not at the next start; a whole frame this release cannot
read is kept aside with its reason, never dropped.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import pickle
import zlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import structlog

from daemon.store import Store, intent_codec, intent_log
from daemon.store.journal import Journal
from exits.state import ExitState
from market.clock import EXCHANGE_TZ
from market.types import ComboLeg, Fill, OptionContract, OrderRequest, OrderStatus, OrderUpdate
from tests.daemon.test_intent_log import FAST, T0, _fresh, _hold, _next_run, _url
from tests.daemon.test_live_rig import DAY1, Rig, at

CONTRACT = OptionContract("SPY", date(2024, 3, 6), Decimal("470"), "C", con_id=756733, trading_class="SPY")
PUT = OptionContract("SPY", date(2024, 3, 6), Decimal("465.5"), "P")
REQUEST = OrderRequest(21, "tradingd:0dte:s1:exit-21", CONTRACT, "SELL", 3, "LMT", Decimal("3.30"))
COMBO = OrderRequest(22, "tradingd:0dte:s2:1", CONTRACT, "BUY", 2, "LMT", Decimal("-0.45"),
                     legs=(ComboLeg(CONTRACT, "BUY", 1), ComboLeg(PUT, "SELL", 2)))
STOP = OrderRequest(23, "tradingd:0dte:s1:stop", CONTRACT, "SELL", 3, "STP", stop_price=Decimal("1.20"), tif="GTC")
FILL = Fill("0001f4e8.65d2a1b3.01.01", 20, "tradingd:0dte:s1:1", CONTRACT, "BUY", 6, Decimal("2.75"), T0,
            Decimal("3.90"))
FALL_BACK = datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=EXCHANGE_TZ)  # the second 01:30 (EST) of the DST change
STATE = ExitState(fired=frozenset({"take_profit_1", "stop_moved"}), quantity_closed=3, peak_price=Decimal("3.450"),
                  stop_price=Decimal("2.10"), stop_rule="breakeven", exit_at_open_since=T0).to_record()

# One payload per operation the journal writes (the core's Persist effects and the live shell's own records),
# with the odd values each field can take.
PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    ("write_intent", {"request": REQUEST, "at": T0, "parent_ref": "tradingd:0dte:s1", "position_id": 7}),
    ("write_intent", {"request": COMBO, "at": T0, "parent_ref": None, "position_id": None}),
    ("write_intent", {"request": STOP, "at": FALL_BACK, "parent_ref": "tradingd:0dte:s1", "position_id": 7}),
    ("update_order", {"update": OrderUpdate(21, REQUEST.order_ref, OrderStatus.REJECTED, 0, 3, None, T0, "201")}),
    ("update_order", {"update": OrderUpdate(20, FILL.order_ref, OrderStatus.FILLED, 6, 0, Decimal("2.75"), T0)}),
    ("apply_fill", {"fill": FILL, "position_id": 7, "contract_key": "SPY 240306 C470"}),
    ("record_leg_fill", {"fill": dataclasses.replace(FILL, contract=PUT, side="SELL"), "position_id": 8}),
    ("open_position", {"contract": CONTRACT, "opened_at": T0, "signal_id": "s1"}),
    ("close_position", {"position_id": 7, "closed_at": T0, "exit_price": Decimal("0"), "reason": "expired"}),
    ("record_combo", {"position_id": 8, "combo": {"strategy": "strangle", "structure": "strangle",
                                                  "value_offset": "0", "legs": [{"contract": "SPY", "ratio": 1}]}}),
    ("save_exit_state", {"position_id": 7, "state": STATE, "at": T0}),
    ("record_exit_event", {"position_id": 7, "rule": "take_profit_1", "kind": "partial_close", "quantity": 3,
                           "reason": "tier 1", "at": T0, "event_id": 12}),
    ("record_signal", {"signal_id": "s1", "payload": {"id": "s1", "confidence": 0.91, "size": 3, "x": None},
                       "received_at": datetime(2024, 3, 6, 15, 0, 1, 5, tzinfo=timezone.utc)}),
    ("record_decision", {"signal_id": "s1", "at": T0, "accepted": True, "reason": None, "contracts": 6,
                         "notional": Decimal("16500.00"), "multiplier": Decimal("1.375"),
                         "breakdown": {"caps": [{"name": "total_exposure", "left": "1.0E+4"}], "ratio": 0.1,
                                       "notes": {"$": "a plain key that looks like a tag", "ok": True},
                                       "by_strike": {470: "a", Decimal("465.5"): "b"}, "path": ("a", 1)}}),
    ("record_checkpoint", {"at": T0, "equity": Decimal("60123.45"), "session_pnl": Decimal("-0.00"),
                           "drawdown": Decimal("0E-8"), "exposure": Decimal("NaN"), "open_positions": 1,
                           "greeks": {"delta": "0.52"}, "breaker_level": 0, "state": "ACTIVE"}),
    ("record_breaker_event", {"level": 2, "from_state": "ACTIVE", "to_state": "REDUCING",
                              "session_pnl": Decimal("-6000.10"), "at": T0, "reason": "drawdown 0.10"}),
    ("set_trading_state", {"state": "HALTED", "since": T0, "breaker_level": 4, "latched": True, "reason": "l4"}),
    ("record_operator_action", {"action": "flatten", "who": "ops", "why": "test", "at": T0,
                                "detail": {"positions": [7, 8]}}),
    ("ack_underlying", {"underlying": "SPY", "who": "ops", "at": T0}),
    ("prune_refused_signals", {"before": T0 - timedelta(days=30)}),
    ("set_meta", {"key": "regime.vix_history", "value": json.dumps([["2024-03-05", "14.1"]])}),
    ("record_decision", {"signal_id": None, "at": datetime(2024, 3, 6, 10, 0), "accepted": False,  # naive stays naive
                         "reason": "duplicate_signal", "contracts": 0, "notional": Decimal(0),
                         "multiplier": Decimal(0), "breakdown": {"when": date(2024, 3, 6)}}),
]


def same(a: Any, b: Any, where: str = "") -> None:
    """Equal, and of the same types all the way down (a str is not an OrderStatus, a list not a tuple)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} came back as {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for (ka, va), kb in zip(a.items(), b):
            same(ka, kb, f"{where}{{key}}")
            same(va, b[kb], f"{where}.{ka}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    elif dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            same(getattr(a, field.name), getattr(b, field.name), f"{where}.{field.name}")
    elif isinstance(a, Decimal):
        assert str(a) == str(b), where  # the exact text: exponent, sign, NaN
    elif isinstance(a, datetime):
        assert (a, a.isoformat(), a.fold) == (b, b.isoformat(), b.fold), where
        assert type(a.tzinfo) is type(b.tzinfo) and getattr(a.tzinfo, "key", None) == getattr(b.tzinfo, "key", None)
    else:
        assert a == b, where


def round_trip(tmp_path: Path, records: list[tuple[int, str, dict[str, Any]]]) -> list[tuple[int, str, dict]]:
    log = intent_log.IntentLog(tmp_path / "x.db-intents", "g1")
    try:
        log.append(records)
    finally:
        log.close()
    return [(seq, op, payload) for _g, seq, op, payload in intent_log.read(log.path)]


def test_every_payload_type_the_operations_carry_comes_back_as_itself(tmp_path: Path) -> None:
    records = [(seq, op, payload) for seq, (op, payload) in enumerate(PAYLOADS, 1)]
    back = round_trip(tmp_path, records)
    same(records, [(seq, op, payload) for seq, op, payload in back])
    assert {op for op, _ in PAYLOADS} >= {"write_intent", "update_order", "apply_fill", "save_exit_state",
                                          "record_exit_event", "record_decision", "close_position"}


def test_a_frame_is_versioned_json(tmp_path: Path) -> None:
    log = intent_log.IntentLog(tmp_path / "x.db-intents", "g1")
    log.append([(1, "write_intent", {"request": REQUEST, "at": T0})])
    log.close()
    data = log.path.read_bytes()
    size, crc = intent_log._HEAD.unpack_from(data)
    body = data[intent_log._HEAD.size:]
    assert len(body) == size and zlib.crc32(body) == crc and body[0] == intent_log.FORMAT == 2
    generation, ((seq, op, payload),) = json.loads(body[1:])
    assert (generation, seq, op) == ("g1", 1, "write_intent")
    assert payload["request"]["$"] == "OrderRequest" and payload["request"]["limit_price"] == {"$": "decimal",
                                                                                              "v": "3.30"}
    assert payload["at"] == {"$": "datetime", "v": "2024-03-06T10:00:00-05:00", "zone": "America/New_York"}


class Ref(str):
    """A value of a type the log has no tag for (a str subclass: pickle took it, and JSON would have
    written it as a plain str)."""


async def test_a_value_the_log_has_no_tag_for_fails_when_written_not_at_the_next_start(tmp_path: Path) -> None:
    log = intent_log.IntentLog(tmp_path / "x.db-intents", "g1")
    for bad in (Ref("tradingd:0dte:s1"), frozenset({"a"}), T0.astimezone(timezone(timedelta(hours=-5), "EST")).time()):
        with pytest.raises(intent_codec.UnencodableValue, match="write_intent.parent_ref"):
            log.append([(1, "write_intent", {"request": REQUEST, "at": T0, "parent_ref": bad})])
    log.close()
    assert log.path.stat().st_size == 0  # nothing half-written

    # through the journal: said at once (an error with its code), and the exit waits for the commit instead
    store, position_id = await _fresh(tmp_path)
    journal = Journal(store, FAST)
    journal.intent_log = await intent_log.open_for(store)
    try:
        journal.append("write_intent", request=REQUEST, at=T0, parent_ref=Ref("tradingd:0dte:s1"),
                       position_id=position_id)
        with structlog.testing.capture_logs() as logs:
            assert not journal.write_ahead()
        (line,) = [entry for entry in logs if entry["event"] == "intent_log_unencodable"]
        assert line["log_level"] == "error" and line["code"] == "intent_log_unencodable"
        assert "Ref" in line["error"] and "write_intent.parent_ref" in line["error"]
        assert await journal.drain(5)
        assert (await store.find_intent(21)) is not None
    finally:
        journal.close()
        journal.intent_log.close()  # type: ignore[union-attr]
        await store.close()


# Made by session 4's `IntentLog.append` (main at a1ad1f0), generation "5e55104a" * 4, two frames:
#   [(7, "save_exit_state", {"position_id": 1, "state": {"v": 1, "fired": ["take_profit_1"]}, "at": T0}),
#    (8, "record_exit_event", {"position_id": 1, "rule": "take_profit_1", "kind": "partial_close", "quantity": 3,
#                              "reason": "tier 1", "at": T0, "event_id": 12}),
#    (9, "write_intent", {"request": OrderRequest(21, "tradingd:0dte:s1:exit-21", CONTRACT_S4, "SELL", 3, "LMT",
#                                                 Decimal("3.30")), "at": T0, "parent_ref": "tradingd:0dte:s1",
#                         "position_id": 1})]
#   [(10, "update_order", {"update": OrderUpdate(21, "tradingd:0dte:s1:exit-21", OrderStatus.SUBMITTED, 0, 3, None,
#                                                T0)})]
# with T0 = 2024-03-06 10:00 America/New_York and CONTRACT_S4 = OptionContract("SPY", T0.date(), Decimal("470"), "C").
SESSION_4_LOG = base64.b64decode("""
nQIAAOgyD9eABZWSAgAAAAAAAIwgNWU1NTEwNGE1ZTU1MTA0YTVlNTUxMDRhNWU1NTEwNGGUXZQoSweMD3NhdmVfZXhpdF9zdGF0
ZZR9lCiMC3Bvc2l0aW9uX2lklEsBjAVzdGF0ZZR9lCiMAXaUSwGMBWZpcmVklF2UjA10YWtlX3Byb2ZpdF8xlGF1jAJhdJSMCGRh
dGV0aW1llIwIZGF0ZXRpbWWUk5RDCgfoAwYKAAAAAACUjAhidWlsdGluc5SMB2dldGF0dHKUk5SMCHpvbmVpbmZvlIwIWm9uZUlu
Zm+Uk5SMCV91bnBpY2tsZZSGlFKUjBBBbWVyaWNhL05ld19Zb3JrlEsBhpRSlIaUUpR1h5RLCIwRcmVjb3JkX2V4aXRfZXZlbnSU
fZQoaARLAYwEcnVsZZRoCowEa2luZJSMDXBhcnRpYWxfY2xvc2WUjAhxdWFudGl0eZRLA4wGcmVhc29ulIwGdGllciAxlGgLaB2M
CGV2ZW50X2lklEsMdYeUSwmMDHdyaXRlX2ludGVudJR9lCiMB3JlcXVlc3SUjAxtYXJrZXQudHlwZXOUjAxPcmRlclJlcXVlc3SU
k5QpgZRdlChLFYwYdHJhZGluZ2Q6MGR0ZTpzMTpleGl0LTIxlGgsjA5PcHRpb25Db250cmFjdJSTlCmBlF2UKIwDU1BZlGgMjARk
YXRllJOUQwQH6AMGlIWUUpSMB2RlY2ltYWyUjAdEZWNpbWFslJOUjAM0NzCUhZRSlIwBQ5RLZE6MBVNNQVJUlE5lYowEU0VMTJRL
A4wDTE1UlGg+jAQzLjMwlIWUUpROjANEQVmUKWViaAtoHYwKcGFyZW50X3JlZpSMEHRyYWRpbmdkOjBkdGU6czGUaARLAXWHlGWG
lC5AAQAA0urnroAFlTUBAAAAAAAAjCA1ZTU1MTA0YTVlNTUxMDRhNWU1NTEwNGE1ZTU1MTA0YZRdlEsKjAx1cGRhdGVfb3JkZXKU
fZSMBnVwZGF0ZZSMDG1hcmtldC50eXBlc5SMC09yZGVyVXBkYXRllJOUKYGUXZQoSxWMGHRyYWRpbmdkOjBkdGU6czE6ZXhpdC0y
MZRoBYwLT3JkZXJTdGF0dXOUk5SMCVN1Ym1pdHRlZJSFlFKUSwBLA06MCGRhdGV0aW1llIwIZGF0ZXRpbWWUk5RDCgfoAwYKAAAA
AACUjAhidWlsdGluc5SMB2dldGF0dHKUk5SMCHpvbmVpbmZvlIwIWm9uZUluZm+Uk5SMCV91bnBpY2tsZZSGlFKUjBBBbWVyaWNh
L05ld19Zb3JrlEsBhpRSlIaUUpROZWJzh5RhhpQu
""")


async def test_a_log_session_4_left_still_folds_in_once(tmp_path: Path) -> None:
    store, position_id = await _fresh(tmp_path)
    await store.close()
    assert position_id == 1 and SESSION_4_LOG[8] == intent_log.LEGACY_PICKLE
    path = intent_log.path_for(_url(tmp_path))
    assert path is not None
    path.write_bytes(SESSION_4_LOG)
    (_g, seq, op, payload), *_ = reversed(intent_log.read(path))
    assert (seq, op) == (10, "update_order")
    same(payload, {"update": OrderUpdate(21, "tradingd:0dte:s1:exit-21", OrderStatus.SUBMITTED, 0, 3, None, T0)})
    again = await _next_run(tmp_path)
    try:
        intent = await again.find_intent(21)
        assert intent is not None and intent.order_ref == "tradingd:0dte:s1:exit-21"
        assert intent.contract_key == OptionContract("SPY", T0.date(), Decimal("470"), "C").key
        assert [e.id for e in await again.list_exit_events()] == [12]
        assert (await again.load_exit_states())[position_id]["fired"] == ["take_profit_1"]
        assert [o.status for o in await again.list_orders()] == [OrderStatus.SUBMITTED.value]
        assert path.stat().st_size == 0 and not list(tmp_path.glob("*.kept-*"))  # read once, nothing kept aside
    finally:
        await again.close()


def _frame(body: bytes) -> bytes:
    return intent_log._HEAD.pack(len(body), zlib.crc32(body)) + body


@dataclasses.dataclass(frozen=True)
class Moved:
    """A class session 4's payloads never held: what a pickle naming a moved or foreign class looks like."""

    order_id: int


@pytest.mark.parametrize("unreadable", [
    bytes([9]) + b'["g9",[]]',  # a format a later release wrote (then this one was started again)
    pickle.dumps(("g4", [(3, "note_order_id", {"order_id": Moved(99)})]), protocol=5),  # not on session 4's list
    bytes([intent_log.FORMAT]) + b'["g2",[[3,"write_intent",{"request":{"$":"OrderRequest2","order_id":99}}]]]',
], ids=["unknown_format", "class_not_on_the_legacy_list", "unknown_tag"])
async def test_a_frame_this_release_cannot_read_is_kept_aside_never_dropped(tmp_path: Path, unreadable: bytes) -> None:
    store, position_id = await _fresh(tmp_path)
    journal = Journal(store, FAST)
    journal.intent_log = log = await intent_log.open_for(store)
    assert log is not None
    release = _hold(store)
    journal.append("write_intent", request=REQUEST, at=T0, parent_ref="tradingd:0dte:s1", position_id=position_id)
    assert journal.write_ahead()
    with log.path.open("ab") as f:
        f.write(_frame(unreadable))
    written = log.path.read_bytes()
    journal.close()
    log.close()
    release.set()
    await store.close()

    with structlog.testing.capture_logs() as logs:
        again = await _next_run(tmp_path)
    try:
        assert (await again.find_intent(21)) is not None  # what came before it folds in as usual
        (kept,) = tmp_path.glob("*.kept-*")
        assert kept.read_bytes() == written  # the whole file, as it was
        (line,) = [entry for entry in logs if entry["event"] == intent_log.UNREADABLE]
        assert line["log_level"] == "error" and line["code"] == "intent_log_unreadable"
        assert line["kept"] == str(kept) and line["offset"] == len(written) - len(_frame(unreadable))
        assert log.path.stat().st_size == 0  # this run's log starts empty
    finally:
        await again.close()


async def test_everything_the_live_shell_writes_through_a_morning_comes_back_as_itself(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    """Not a list kept by hand: every record the live shell journals while it enters, fires a tier and
    resizes its stop goes through the log's encoding and comes back the same."""
    seen: list[tuple[str, dict[str, Any]]] = []
    enqueue = Journal._enqueue

    def spy(self: Journal, record: Any) -> None:
        seen.append((record.op, dict(record.payload)))
        enqueue(self, record)

    monkeypatch.setattr(Journal, "_enqueue", spy)
    rig = Rig(tmp_path, "0dte", ["SPY"])
    await rig.start()
    try:
        await rig.until(at(DAY1, 10, 28))
        assert (await rig.engine.submit_signal(rig.signal("f-1", "SPY", "bearish", 0.91, rig.clock.now()),
                                               "test")).accepted
        await rig.until(at(DAY1, 10, 32))
        (held,) = rig.engine.book.held()
        assert "take_profit_tier_1" in held.exit_state.fired
        assert rig.engine.journal.intent_log is not None and rig.engine.journal._logged_seq > 0  # it was written
    finally:
        await rig.close()
    ops = {op for op, _ in seen}
    assert {"record_signal", "record_decision", "write_intent", "update_order", "apply_fill", "save_exit_state",
            "record_exit_event"} <= ops
    records = [(seq, op, payload) for seq, (op, payload) in enumerate(seen, 1)]
    same(records, round_trip(tmp_path, records))


def test_zone_names_and_fixed_offsets_come_back() -> None:
    for value in (T0, FALL_BACK, T0.astimezone(timezone.utc), T0.astimezone(ZoneInfo("Europe/London")),
                  T0.astimezone(timezone(timedelta(hours=5, minutes=30))), datetime(2024, 3, 6, 10)):
        (_g, ((_s, _o, payload),)) = intent_codec.decode(intent_codec.encode("g", [(1, "x", {"at": value})]))
        same(value, payload["at"])
