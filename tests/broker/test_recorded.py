"""Recorded SPXW 0DTE quotes (Lean, 2021-01-04) replay as they are (an entry trading against them through
the core: tests/daemon/backtest/test_run.py::test_spxw_replay_fills_at_the_recorded_bid_and_ask)."""

import zipfile
from datetime import datetime
from decimal import Decimal as D

import pytest

from broker.quote_model import OptionQuoteModel
from broker.quotes import QuoteBook
from broker.recorded import RecordedDataError, read_open_interest, read_quotes
from market.clock import EXCHANGE_TZ, VirtualClock
from tests.broker.helpers import quote, settings

SPXW = "quantconnect_lean/Data/indexoption/usa/minute/spxw"
KEY = "SPXW 20210104 C 3700"


@pytest.fixture
def day(shared_data):
    folder = shared_data / "market" / SPXW
    oi = read_open_interest(folder / "20210104_openinterest_european.zip.zip")
    return read_quotes(folder / "20210104_quote_european.zip", oi)


def test_quotes_are_read_as_recorded(day):
    first = next(q for q in day if q.key == KEY)
    # row 34200000 (09:30 bar start): bid close 649000, size 48; ask close 679000, size 15
    assert first.received_at == datetime(2021, 1, 4, 9, 31, tzinfo=EXCHANGE_TZ)  # known at the bar's end
    assert (first.bid, first.ask, first.bid_size, first.ask_size) == (D("64.9"), D("67.9"), 48, 15)
    assert first.open_interest == 1732 and not first.modelled
    assert [q.received_at for q in day] == sorted(q.received_at for q in day)
    assert {q.key.split(" ")[1] for q in day} == {"20210104", "20210106", "20210108"}  # 0DTE among them


def test_recorded_quotes_are_never_replaced_by_modelled_ones(day):
    clock = VirtualClock(datetime(2021, 1, 4, 9, 31, tzinfo=EXCHANGE_TZ))
    book = QuoteBook()
    model = OptionQuoteModel(book, clock, settings("0dte").broker.sim.model)
    model.attach()
    model.track([KEY])
    recorded = next(q for q in day if q.key == KEY)
    book.update(recorded)
    book.update(quote("VIX", "21.9", "22.1", at=clock.now()))
    book.update(quote("SPXW", "3735", "3736", at=clock.now()))
    assert book.get(KEY) is recorded


def test_bad_files_are_reported(tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RecordedDataError, match="unreadable_file"):
        read_quotes(bad)
    with zipfile.ZipFile(tmp_path / "y.zip", "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(RecordedDataError, match="bad_file_name"):
        read_quotes(tmp_path / "y.zip")
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as z:
        z.writestr("20210104_spxw_minute_quote_european_call_37000000_20210104.csv", "1,2,3\n")
    with pytest.raises(RecordedDataError, match="bad_row"):
        read_quotes(tmp_path / "z.zip")
