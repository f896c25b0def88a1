"""The grid file (TOML): axes of config overrides by key, the same keys as `config/profiles/*.toml`.

    # every key is a dotted config key; each axis is a list of values
    [grid]
    "sizing.min_bet_pct" = [0.20, 0.33]
    exits.seven_dte.initial_stop_pct = [0.10, 0.20, 0.30]

    # optional: overrides every cell shares (one value each)
    [fixed]
    "gate.confidence_threshold" = 0.70

The cells are the cartesian product of the axes in file order (the last axis varies fastest). A
config value that is itself a list is given as a list of lists. Keys and values are validated by
the config loader itself when the sweep resolves each cell (`plan.resolve_cells`): a bad key or
value names the key and nothing runs.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.errors import ReasonError
from config.loader import _decimals

# Keys a sweep must never vary: it replays on the sim venue only (see `plan.refuse_live`).
LIVE_KEYS = ("broker.kind", "broker.ib")


class GridError(ReasonError, ValueError):
    """A grid the sweep cannot run. `code` is a stable reason code; the message names the key."""


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its index (stable: file order) and its overrides, axis keys first."""

    index: int
    overrides: tuple[tuple[str, Any], ...]  # the axes' values, in axis order
    fixed: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return f"c{self.index:03d}"

    def all_overrides(self) -> dict[str, Any]:
        return {**dict(self.fixed), **dict(self.overrides)}

    def label(self) -> str:
        return ", ".join(f"{k}={show(v)}" for k, v in self.overrides) or "(profile as is)"


@dataclass(frozen=True)
class Grid:
    axes: tuple[tuple[str, tuple[Any, ...]], ...]
    fixed: tuple[tuple[str, Any], ...] = ()

    @property
    def keys(self) -> list[str]:
        return [k for k, _ in self.axes]

    def cells(self) -> list[Cell]:
        values = [v for _, v in self.axes]
        return [Cell(i, tuple(zip(self.keys, combo)), self.fixed)
                for i, combo in enumerate(itertools.product(*values))]


def show(value: Any) -> str:
    """A value as a user wrote it (Decimals without exponent noise)."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def _flatten(table: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted keys whether written quoted ("sizing.max_bet_pct") or as nested tables."""
    out: list[tuple[str, Any]] = []
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{full}."))
        else:
            out.append((full, value))
    return out


def parse_grid(text: str, source: str = "grid") -> Grid:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GridError("grid_invalid", f"{source}: not TOML: {exc}") from None
    unknown = sorted(set(raw) - {"grid", "fixed"})
    if unknown:
        raise GridError("grid_invalid", f"{source}: unknown table(s) {unknown}; a grid file has [grid] and [fixed]")
    table = raw.get("grid")
    if not isinstance(table, dict) or not table:
        raise GridError("grid_invalid", f"{source}: no [grid] table with at least one axis")
    axes: list[tuple[str, tuple[Any, ...]]] = []
    for key, values in _flatten(table):
        if not isinstance(values, list) or not values:
            raise GridError("grid_invalid", f"{key}: an axis is a non-empty list of values, not {values!r}")
        values = _decimals(values)
        if len({repr(v) for v in values}) != len(values):
            raise GridError("grid_invalid", f"{key}: the same value twice on one axis")
        axes.append((key, tuple(values)))
    fixed = tuple((k, _decimals(v)) for k, v in _flatten(raw.get("fixed") or {}))
    clash = sorted(set(k for k, _ in axes) & set(k for k, _ in fixed))
    if clash:
        raise GridError("grid_invalid", f"{', '.join(clash)}: both an axis and a fixed value")
    for key in [k for k, _ in axes] + [k for k, _ in fixed]:
        if any(key == live or key.startswith(live + ".") for live in LIVE_KEYS):
            raise GridError("sweep_live_refused", f"{key}: a sweep replays on the sim venue only; it never "
                                                  "varies the broker")
    return Grid(tuple(axes), fixed)


def load_grid(path: str | Path) -> Grid:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GridError("grid_missing", f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_grid(text, str(path))
