"""Shared pieces of the sweep tests: the 12-cell grid over the bundled week, env overrides that make
`tradingd replay` run one cell alone, and a runner that proves no replay runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.sweep.grid import Cell, show

GRID_12 = """
[grid]
"exits.seven_dte.initial_stop_pct" = [0.10, 0.20, 0.30]
"sizing.min_bet_pct" = [0.15, 0.33]
position_levels.hard_stop_pct = [-0.20, -0.30]

[fixed]
"sizing.min_bet_floor" = 0
"""


@pytest.fixture(scope="module")
def grid_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 12-cell grid as a file, one per test module."""
    path = tmp_path_factory.mktemp("sweep-grid") / "grid.toml"
    path.write_text(GRID_12, encoding="utf-8")
    return path


def env_for(cell: Cell) -> dict[str, str]:
    """The cell as TRADINGD_<SECTION>__<KEY> overrides: how `tradingd replay` takes the same config."""
    return {"TRADINGD_" + key.upper().replace(".", "__"): show(value) for key, value in cell.all_overrides().items()}


class RefusingRunner:
    """A runner that fails the test if the sweep hands it a single replay."""

    name = "refusing"
    submitted = 0
    lost = 0

    def describe(self) -> str:
        return "no workers (every replay must come from the cache)"

    def run(self, jobs: list[Any]):
        if jobs:
            raise AssertionError(f"the sweep asked for {len(jobs)} replays: {[j.cell for j in jobs]}")
        return iter(())

    def close(self) -> None:
        pass


def same_results(a: Any, b: Any) -> None:
    """Two sweeps' cells carry identical §8 figures and counts."""
    assert [c.name for c in a.cells] == [c.name for c in b.cells]
    for cell in a.cells:
        x, y = a.full[cell.index], b.full[cell.index]
        assert "error" not in x and "error" not in y, (cell.name, x, y)
        assert x["figures"] == y["figures"], cell.name
        assert x["counts"] == y["counts"], cell.name
