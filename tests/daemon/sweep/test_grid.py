"""The grid file: axes in file order, dotted or nested keys, fixed values; bad grids refused with the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from daemon.backtest import load_dataset
from daemon.sweep.cache import ResultCache
from daemon.sweep.grid import GridError, load_grid, parse_grid
from daemon.sweep.plan import SweepOptions, resolve_cells, run_sweep
from tests.daemon.sweep.conftest import GRID_12, RefusingRunner


def test_cells_are_the_product_of_the_axes_in_file_order() -> None:
    grid = parse_grid(GRID_12)
    assert grid.keys == ["exits.seven_dte.initial_stop_pct", "sizing.min_bet_pct", "position_levels.hard_stop_pct"]
    cells = grid.cells()
    assert len(cells) == 12 and [c.name for c in cells[:2]] == ["c000", "c001"]
    assert cells[0].all_overrides() == {"sizing.min_bet_floor": 0, "exits.seven_dte.initial_stop_pct": Decimal("0.10"),
                                        "sizing.min_bet_pct": Decimal("0.15"),
                                        "position_levels.hard_stop_pct": Decimal("-0.20")}
    assert cells[1].overrides[-1] == ("position_levels.hard_stop_pct", Decimal("-0.30"))  # last axis fastest
    assert cells[11].label() == ("exits.seven_dte.initial_stop_pct=0.3, sizing.min_bet_pct=0.33, "
                                 "position_levels.hard_stop_pct=-0.3")


def test_nested_and_quoted_keys_are_the_same_key() -> None:
    a = parse_grid('[grid]\n"sizing.max_bet_pct" = [0.5, 0.6]\n')
    b = parse_grid('[grid.sizing]\nmax_bet_pct = [0.5, 0.6]\n')
    assert a == b


@pytest.mark.parametrize("text, code, needle", [
    ("[grid]\n", "grid_invalid", "no [grid]"),
    ('[grid]\n"sizing.max_bet_pct" = 0.5\n', "grid_invalid", "sizing.max_bet_pct"),
    ('[grid]\n"sizing.max_bet_pct" = [0.5, 0.5]\n', "grid_invalid", "same value twice"),
    ('[grid]\n"sizing.max_bet_pct" = [0.5]\n[fixed]\n"sizing.max_bet_pct" = 0.4\n', "grid_invalid", "both"),
    ('[grid]\n"broker.kind" = ["sim", "ib"]\n', "sweep_live_refused", "broker.kind"),
    ('[grid]\n"broker.ib.port" = [4001]\n', "sweep_live_refused", "broker.ib.port"),
    ('[grid]\n"sizing.max_bet_pct" = [0.5]\n[extra]\nx = 1\n', "grid_invalid", "extra"),
    ("[grid\n", "grid_invalid", "not TOML"),
])
def test_bad_grids_are_refused_with_the_key(text: str, code: str, needle: str) -> None:
    with pytest.raises(GridError) as err:
        parse_grid(text)
    assert err.value.code == code and needle in str(err.value)


def test_a_missing_grid_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GridError) as err:
        load_grid(tmp_path / "none.toml")
    assert err.value.code == "grid_missing"


def test_every_cell_is_validated_by_the_config_loader_before_anything_runs(tmp_path: Path) -> None:
    text = '[grid]\n"sizing.max_bet_pct" = [0.5, "lots"]\n"sizing.no_such_key" = [1]\n'
    grid = parse_grid(text)
    with pytest.raises(GridError) as err:
        resolve_cells("7dte", grid, load_dataset("bundled"))
    message = str(err.value)
    assert err.value.code == "grid_invalid"
    assert "sizing.no_such_key = 1" in message and "sizing.max_bet_pct = 'lots'" in message
    # the sweep itself stops there: not one replay is asked for, nothing is cached
    cache = ResultCache(tmp_path / "cache")
    with pytest.raises(GridError):
        run_sweep(SweepOptions("7dte", grid), RefusingRunner(), cache)
    assert not any(cache.root.rglob("*.json"))
