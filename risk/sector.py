"""Sector exposure (SPEC §10.3): each underlying's sector from config, each sector's cap as a
fraction of the capital base. A pure function of the book and the settings."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from config.models import SectorConfig
from risk.request import OpenPositionView

_ZERO = Decimal(0)
SECTOR_CAP = "sector"  # the contracts cap's name in the decision's cap_limits


def sector_of(underlying: str, cfg: SectorConfig) -> str | None:
    return cfg.map.get(underlying)


def sector_cap_pct(sector: str, cfg: SectorConfig) -> Decimal | None:
    return cfg.max_exposure_pct.get(sector, cfg.default_max_exposure_pct)


def sector_exposure(sector: str, open_positions: Sequence[OpenPositionView], cfg: SectorConfig,
                    multiplier: int) -> Decimal:
    # A plain loop, summed from zero in position order as `sum` did: a generator frame resumed per
    # position and a `sector_of` call apiece were most of the sector cap's cost (7dte, every decision).
    total, sector_by_symbol = _ZERO, cfg.map.get
    for p in open_positions:
        if sector_by_symbol(p.underlying) == sector:
            total += p.exposure(multiplier)
    return total


def sector_room(underlying: str, base: Decimal, open_positions: Sequence[OpenPositionView], cfg: SectorConfig,
                multiplier: int) -> Decimal | None:
    """The money the underlying's sector still allows, or None when it has no sector or no cap."""
    sector = sector_of(underlying, cfg)
    if sector is None:
        return None
    pct = sector_cap_pct(sector, cfg)
    if pct is None:
        return None
    return pct * base - sector_exposure(sector, open_positions, cfg, multiplier)
