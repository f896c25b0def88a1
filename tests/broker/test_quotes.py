from datetime import timedelta
from decimal import Decimal as D

from broker.quotes import QuoteBook
from tests.broker.helpers import T0, quote


def test_latest_quote_per_key_with_age():
    book = QuoteBook()
    book.update(quote("SPY", "270.00", "270.02"))
    book.update(quote("SPY", "270.10", "270.12", at=T0 + timedelta(seconds=1)))
    assert book.get("SPY").bid == D("270.10")
    assert book.age_s("SPY", T0 + timedelta(seconds=4)) == D(3)
    assert book.get("QQQ") is None and book.age_s("QQQ", T0) is None
    assert "SPY" in book and len(book) == 1 and book.keys() == ["SPY"]


def test_an_older_quote_never_replaces_a_newer_one():
    book = QuoteBook()
    book.update(quote("SPY", "270.10", "270.12", at=T0 + timedelta(seconds=1)))
    assert book.update(quote("SPY", "269.00", "269.02", at=T0)) is False
    assert book.get("SPY").bid == D("270.10")


def test_listeners_hear_every_update_and_can_be_removed():
    book = QuoteBook()
    heard = []
    remove = book.add_listener(lambda q: heard.append(q.key))
    book.update(quote("SPY", "1", "2"))
    remove()
    book.update(quote("QQQ", "1", "2"))
    assert heard == ["SPY"]


def test_a_failing_listener_does_not_starve_the_others():
    book = QuoteBook()
    heard = []
    book.add_listener(lambda q: 1 / 0)
    book.add_listener(lambda q: heard.append(q.key))
    book.update(quote("SPY", "1", "2"))
    assert heard == ["SPY"]


def test_mark_unusable_until_a_fresh_tick():
    book = QuoteBook()
    book.update(quote("SPY", "1", "2"))
    book.update(quote("QQQ", "1", "2"))
    heard = []
    book.add_listener(lambda q: heard.append((q.key, q.usable)))
    assert book.mark_unusable(["SPY", "IWM"]) == ["SPY"]
    assert not book.get("SPY").usable and book.get("QQQ").usable
    assert book.mark_unusable() == ["QQQ"]  # everything; SPY was already
    assert heard == [("SPY", False), ("QQQ", False)]
    book.update(quote("SPY", "1", "2", at=T0 + timedelta(seconds=1)))
    assert book.get("SPY").usable
