"""The replay bench's `--digest` sink: the proof a speed change kept every record must be able to fail."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from bench.bench_stream_replay import DigestSink
from market.clock import EXCHANGE_TZ

AT = datetime(2019, 2, 11, 10, 0, tzinfo=EXCHANGE_TZ)


def _digest(records: list[tuple[str, dict]]) -> str:
    sink = DigestSink()
    for op, payload in records:
        sink.append(op, payload)
    assert sink.seq == len(records)
    return sink.hash.hexdigest()


def test_the_same_records_give_the_same_digest_whatever_the_key_order() -> None:
    a = [("record_fill", {"price": Decimal("1.25"), "at": AT, "qty": 3}), ("save_exit_state", {"peak": "1.30"})]
    b = [("record_fill", {"qty": 3, "at": AT, "price": Decimal("1.25")}), ("save_exit_state", {"peak": "1.30"})]
    assert _digest(a) == _digest(b)


def test_a_changed_value_order_or_operation_changes_the_digest() -> None:
    base = [("record_fill", {"price": Decimal("1.25"), "qty": 3}), ("save_exit_state", {"peak": "1.30"})]
    assert _digest(base) != _digest([("record_fill", {"price": Decimal("1.26"), "qty": 3}), base[1]])
    assert _digest(base) != _digest([("record_fill", {"price": Decimal("1.250"), "qty": 3}), base[1]])  # the cents
    assert _digest(base) != _digest(list(reversed(base)))
    assert _digest(base) != _digest([("record_exit_event", base[0][1]), base[1]])
    assert _digest(base) != _digest(base[:1])
