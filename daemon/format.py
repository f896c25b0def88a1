"""Numbers as people (and JSON readers) see them: money at the cent, prices at their tick,
percentages at 0.1 %. Decimal stays exact inside the engine; only what leaves it is rounded,
here, once, so `status`, `positions`, the page, the notifications and the log lines agree.

Every function takes what the engine hands out (Decimal, a decimal string, int, float or None)
and returns a string, or None for None. A value that is not a number is returned as it came
(an output path must never fail on a strange value: it shows it).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
PENNY_TICK = Decimal("0.01")
TENTH = Decimal("0.1")
# A ratio such as a multiplier or a factor (1.25×): two places say all a person acts on.
RATIO = Decimal("0.01")
# A share of the base (drawdown 0.038 = 3.8 %): three places are the 0.1 % unit.
FRACTION = Decimal("0.001")


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _at(value: Any, unit: Decimal) -> str | None:
    if value is None:
        return None
    number = _decimal(value)
    if number is None:
        return str(value)
    shown = number.quantize(unit, rounding=ROUND_HALF_EVEN)
    return f"{abs(shown) if shown == 0 else shown:f}"  # never "-0.00"


def money(value: Any) -> str | None:
    """-73.60: dollars at the cent."""
    return _at(value, CENT)


def price(value: Any, tick: Decimal = PENNY_TICK) -> str | None:
    """An option or stock price at its tick's places (3.45; an average fill 3.4567 shows 3.46)."""
    return _at(value, tick if tick.as_tuple().exponent < 0 else PENNY_TICK)


def pct(fraction: Any) -> str | None:
    """A fraction (−0.0385) as a percentage at 0.1 (−3.8)."""
    number = _decimal(fraction)
    if number is None:
        return None if fraction is None else str(fraction)
    return _at(number * 100, TENTH)


def pct_text(fraction: Any) -> str:
    """−3.8% for a line people read; "-" when unknown."""
    shown = pct(fraction)
    return "-" if shown is None else f"{shown}%"


def fraction(value: Any) -> str | None:
    """A share of the base kept as a fraction (drawdown 0.038), at the 0.1 % unit."""
    return _at(value, FRACTION)


def ratio(value: Any) -> str | None:
    """A multiplier or factor at two places (1.25)."""
    return _at(value, RATIO)


def tenth(value: Any) -> str | None:
    """Seconds, share-equivalent greeks: one place."""
    return _at(value, TENTH)


def money_text(value: Any) -> str:
    """$-1,250.50 style for sentences (notifications, the page); "-" when unknown."""
    number = _decimal(value)
    if number is None:
        return "-" if value is None else str(value)
    cents = number.quantize(CENT, rounding=ROUND_HALF_EVEN)
    return f"{'-' if cents < 0 else ''}${abs(cents):,.2f}"


def limit_walk(result: Any) -> str:
    """Every limit each child of a parent order was sent or repriced at, "3.41>3.43>3.46", children
    apart by " | ": the parent's summary line explains a fill above the first limit, so the
    reprices themselves can be debug lines. Takes any result with `children[].limits`."""
    return " | ".join(">".join(f"{lim:f}" for _, lim in child.limits) for child in getattr(result, "children", ()))


# ------------------------------------------------------------------ the operator seam's records

# Key -> renderer, for the JSON the API answers (status, positions) and the CLI prints.
STATUS_UNITS: Mapping[str, Any] = {
    "equity": money,
    "session_pnl": money,
    "realized_pnl": money,
    "exposure": money,
    "drawdown": fraction,
    "market_data_age_s": tenth,
}
GREEK_UNITS: Mapping[str, Any] = {"delta": tenth, "gamma": tenth, "vega": money, "theta": money}
POSITION_UNITS: Mapping[str, Any] = {
    "strike": price,
    "entry_price": price,
    "mark": price,
    "stop_price": price,
    "unrealized_pnl": money,
    "realized_pnl": money,
    "unrealized_pct": pct,
}


def present(record: Mapping[str, Any], units: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `record` with every key `units` names rendered at its unit."""
    out = dict(record)
    for key, render in units.items():
        if key in out and out[key] is not None and not isinstance(out[key], dict | list | bool):
            out[key] = render(out[key])
    return out


def present_status(status: Mapping[str, Any]) -> dict[str, Any]:
    out = present(status, STATUS_UNITS)
    greeks = out.get("greeks")
    if isinstance(greeks, Mapping):
        out["greeks"] = present(greeks, GREEK_UNITS)
    return out


def present_position(position: Mapping[str, Any]) -> dict[str, Any]:
    return present(position, POSITION_UNITS)


DECISION_MONEY = ("notional", "contract_value", "min_bet", "max_bet", "capital_base")
DECISION_RATIOS = ("multiplier", "raw_multiplier")


def present_decision(record: Mapping[str, Any], *, numbers: bool = False) -> dict[str, Any]:
    """A decision record (`Decision.to_record`) at its units: money at the cent, multipliers and
    factors at 0.01, each cap's limit at its kind's unit. `numbers`: JSON numbers, not strings."""
    as_out = _number if numbers else (lambda text: text)

    def show(value: Any, render: Any) -> Any:
        return None if value is None else as_out(render(value))

    out = dict(record)
    for key in DECISION_MONEY:
        if key in out:
            out[key] = show(out[key], money)
    for key in DECISION_RATIOS:
        if key in out:
            out[key] = show(out[key], ratio)
    for key, render in (("factors", ratio), ("multiplier_caps", ratio), ("cap_limits", money)):
        if isinstance(out.get(key), Mapping):
            out[key] = {k: show(v, render) for k, v in out[key].items()}
    if isinstance(out.get("notes"), Mapping):
        out["notes"] = {k: note(v) for k, v in out["notes"].items()}
    if isinstance(out.get("caps"), list):
        out["caps"] = [{**c, "limit": show(c.get("limit"), ratio if c.get("kind") == "multiplier" else money)}
                       for c in out["caps"]]
    return out


def note(value: Any) -> Any:
    """A decision note: a number (an exposure, a correlation) at two places; words as they are."""
    return ratio(value) if isinstance(value, str) and _decimal(value) is not None else value


def _number(text: str | None) -> Any:
    """A rendered decimal as a JSON number (int when whole); text that is not a number as it is."""
    number = _decimal(text)
    if number is None:
        return text
    return int(number) if number == number.to_integral_value() else float(number)
