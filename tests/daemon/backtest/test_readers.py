"""Every reader validates its rows and refuses a bad one with file and line (SPEC §4.4)."""

from __future__ import annotations

import gzip
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.backtest import readers
from daemon.backtest.readers import DataError
from market.clock import EXCHANGE_TZ


def _zip(path: Path, name: str, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(name, text)
    return path


def _gz(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_lean_equity_trade_bars_are_scaled_and_in_new_york(tmp_path: Path) -> None:
    path = _zip(tmp_path / "20151224_trade.zip", "20151224_goog_minute_trade.csv",
                "34200000,7500000,7510000,7490000,7505000,120\n")
    [bar] = readers.lean_minute_bars(path, "GOOG")
    assert bar.start == datetime(2015, 12, 24, 9, 30, tzinfo=EXCHANGE_TZ)
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (Decimal(750), Decimal(751), Decimal(749),
                                                                     Decimal("750.5"), 120)


def test_lean_index_bars_are_unscaled_and_stamped_in_chicago(tmp_path: Path) -> None:
    path = _zip(tmp_path / "20210104_trade.zip", "20210104_spx_minute_trade.csv",
                "30600000,3764.61,3769.99,3764.61,3766.63,59\n")
    [bar] = readers.lean_minute_bars(path, "SPX", index=True)
    assert bar.start == datetime(2021, 1, 4, 9, 30, tzinfo=EXCHANGE_TZ)  # 08:30 Chicago
    assert bar.close == Decimal("3766.63")


def test_lean_quote_bars_are_read_as_mid_bars(tmp_path: Path) -> None:
    path = _zip(tmp_path / "20151224_quote.zip", "q.csv",
                "34200000,7490000,7500000,7480000,7495000,5,7510000,7520000,7500000,7515000,7\n")
    [bar] = readers.lean_minute_bars(path, "GOOG")
    assert bar.open == Decimal(750) and bar.close == Decimal("750.5")


def test_a_bar_with_high_below_low_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = _zip(tmp_path / "20151224_trade.zip", "m.csv",
                "34200000,7500000,7510000,7490000,7505000,120\n34260000,7500000,7480000,7490000,7485000,1\n")
    with pytest.raises(DataError) as err:
        readers.lean_minute_bars(path, "GOOG")
    assert err.value.code == "bad_bar" and "m.csv:2" in str(err.value)
    refused: list[DataError] = []
    bars = readers.lean_minute_bars(path, "GOOG", refusals=refused)
    assert len(bars) == 1 and len(refused) == 1  # the bad row is refused and counted; the good one kept


def test_close_outside_the_range_and_bad_numbers_are_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "20151224_trade.zip", "m.csv", "34200000,7500000,7510000,7490000,7600000,1\n")
    with pytest.raises(DataError, match="outside"):
        readers.lean_minute_bars(path, "GOOG")
    path = _zip(tmp_path / "20151225_trade.zip", "m.csv", "34200000,abc,7510000,7490000,7500000,1\n")
    with pytest.raises(DataError, match="m.csv:1: open 'abc' is not a number"):
        readers.lean_minute_bars(path, "GOOG")
    path = _zip(tmp_path / "20151226_trade.zip", "m.csv", "34200000,1,2,3\n")
    with pytest.raises(DataError, match="4 columns"):
        readers.lean_minute_bars(path, "GOOG")


def test_lean_option_quotes_rename_the_root(tmp_path: Path) -> None:
    name = "20210104_spxw_minute_quote_european_call_37000000_20210104.csv"
    path = _zip(tmp_path / "20210104_quote_european.zip", name,
                "34200000,649000,650000,640000,649000,48,679000,680000,670000,679000,15\n")
    [q] = readers.lean_option_quotes(path, underlying="SPX")
    assert q.key == "SPX 20210104 C 3700" and (q.bid, q.ask, q.bid_size, q.ask_size) == (
        Decimal("64.9"), Decimal("67.9"), 48, 15)
    assert q.received_at == datetime(2021, 1, 4, 9, 31, tzinfo=EXCHANGE_TZ)  # known when the bar closes
    assert not q.modelled


def test_lean_universe_reads_the_underlying_row_and_the_greeks(tmp_path: Path) -> None:
    path = _gz(tmp_path / "20151224.csv.gz",
               "#expiry,strike,right,open,high,low,close,volume,open_interest,implied_volatility,delta,gamma,vega,theta,rho\n"
               ",,,747.93,748.77,747.86,748.40,106129,,,,,,,\n"
               "20151231,750,C,0,0,0,9.5,10,20,0.21,0.48,0.01,0.3,-0.9,0.02\n")
    under, rows = readers.lean_universe(path, "GOOG")
    assert under is not None and under.close == Decimal("748.40")
    assert rows[0].iv == Decimal("0.21") and rows[0].delta == Decimal("0.48") and rows[0].right == "C"


def test_cboe_vix_daily_refuses_a_bad_date_with_its_line(tmp_path: Path) -> None:
    path = _gz(tmp_path / "VIX_History.csv.gz", "DATE,OPEN,HIGH,LOW,CLOSE\n01/04/2021,23.04,29.19,22.56,26.97\n"
                                                 "2021-01-05,1,1,1,1\n")
    with pytest.raises(DataError, match="VIX_History.csv.gz:3"):
        readers.cboe_vix_daily(path)
    refused: list[DataError] = []
    [bar] = readers.cboe_vix_daily(path, refusals=refused)
    assert bar.open == Decimal("23.04") and len(refused) == 1


def test_yahoo_chain_refuses_bid_above_ask(tmp_path: Path) -> None:
    header = ",".join(readers.YAHOO_COLUMNS)
    good = "AAPL251205C00110000,call,2025-12-05,110.0,x,x,168.32,170.2,172.1,0,0,6.0,7,0.3,True,REGULAR,USD"
    bad = "AAPL251205C00120000,call,2025-12-05,120.0,x,x,150,162.4,160.25,0,0,,1,0.3,True,REGULAR,USD"
    path = _gz(tmp_path / "AAPL.csv.gz", "\n".join([header, good, bad]) + "\n")
    with pytest.raises(DataError, match=r"AAPL.csv.gz:3: bid 162.4 > ask 160.25"):
        readers.yahoo_chain(path, "AAPL", datetime(2025, 12, 1).date())


def test_tradingview_times_are_utc_seconds_at_bar_start(tmp_path: Path) -> None:
    path = _gz(tmp_path / "vix1d.csv.gz", "time,open,high,low,close,Volume\n1739889000,8.41,8.73,8.25,8.39,\n")
    [bar] = readers.tradingview_bars(path, "VIX1D")
    assert bar.start == datetime(2025, 2, 18, 9, 30, tzinfo=EXCHANGE_TZ)
    assert bar.end == datetime(2025, 2, 18, 9, 35, tzinfo=EXCHANGE_TZ)


def test_polygon_minute_bars(tmp_path: Path) -> None:
    path = _gz(tmp_path / "SPY_1min.csv.gz", "datetime,open,high,low,close,volume,vwap,transactions\n"
                                             "2024-02-20 09:30:00-05:00,498.33,498.42,498.3,498.39,3952.0,498.3,72\n")
    [bar] = readers.polygon_minute_bars(path, "SPY")
    assert bar.start == datetime(2024, 2, 20, 9, 30, tzinfo=EXCHANGE_TZ) and bar.volume == 3952


def test_every_shared_format_reads(shared_market: Path) -> None:
    lean = shared_market / "quantconnect_lean" / "Data"
    assert len(readers.lean_minute_bars(lean / "index/usa/minute/spx/20210104_trade.zip", "SPX", index=True)) == 411
    quotes = readers.lean_option_quotes(lean / "indexoption/usa/minute/spxw/20210104_quote_european.zip",
                                        underlying="SPX")
    assert quotes and all(q.key.startswith("SPX ") for q in quotes)
    under, rows = readers.lean_universe(lean / "option/usa/universes/goog/20151224.csv.gz", "GOOG")
    assert under is not None and len(rows) > 1000
    refused: list[DataError] = []
    vix = readers.cboe_vix_daily(shared_market / "vix_dashboard/data/VIX_History.csv.gz", refusals=refused)
    assert len(vix) > 9000 and all(r.code == "bad_bar" for r in refused)
    chain = readers.yahoo_chain(shared_market / "vraptunovich_stock/csv_out/2025/12/01/AAPL/"
                                "AAPL_options_all_expirations_filtered.csv.gz", "AAPL", datetime(2025, 12, 1).date(),
                                refusals=refused)
    assert len(chain) > 2000
    fsd = shared_market / "tradingfsd_gpt" / "data"
    assert readers.tradingview_bars(fsd / "CBOE_DLY_VIX1D, 5 (1).csv.gz", "VIX1D", refusals=refused)
    assert readers.tradingview_bars(fsd / "SP_SPX, 5 (1).csv.gz", "SPX", refusals=refused)
    assert readers.polygon_minute_bars(fsd / "SPY_1min.csv.gz", "SPY", refusals=refused)
