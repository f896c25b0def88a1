"""`fast_init` builds the same frozen instances as the dataclass constructor it replaces, and the
sizing hot path's pass-throughs (a validated correlation table, parsed views) change no result."""

from __future__ import annotations

import dataclasses
import dis
import sys
from dataclasses import FrozenInstanceError, dataclass, field
from decimal import Decimal

import pytest

from risk.decision import CapBound, Decision, GateCheck
from market.frozen import fast_init
from risk.numbers import InvalidInput
from risk.request import CorrelationTable, OpenPositionView, parse_correlations, parse_open_positions


@dataclass(frozen=True)
class _Plain:
    a: int
    b: str = "b"
    c: list[int] = field(default_factory=lambda: [1])

    def __post_init__(self) -> None:
        object.__setattr__(self, "b", self.b.upper())


@dataclass(frozen=True, slots=True)
class _Slotted:
    a: int
    b: Decimal = Decimal(2)


def test_the_fast_constructor_gives_equal_frozen_instances_with_defaults_factories_and_post_init() -> None:
    reference = [_Plain(1), _Plain(2, "x", [3]), _Slotted(1), _Slotted(1, Decimal(5))]
    fast_plain = fast_init(dataclass(frozen=True)(type("_P", (), {"__annotations__": {}})))  # an empty one works
    assert fast_plain() == fast_plain()
    plain = fast_init(_Plain)
    slotted = fast_init(_Slotted)
    built = [plain(1), plain(2, "x", [3]), slotted(1), slotted(1, Decimal(5))]
    assert built == reference and [repr(b) for b in built] == [repr(r) for r in reference]
    assert plain(1).b == "B", "__post_init__ still runs"
    assert plain(1).c is not plain(1).c, "a default factory is called for each instance"
    for instance in built:
        with pytest.raises(FrozenInstanceError):
            instance.a = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        plain()  # type: ignore[call-arg]


def test_fast_init_refuses_what_it_does_not_support() -> None:
    @dataclass
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class KeywordOnly:
        a: int = field(kw_only=True)

    for cls in (Mutable, KeywordOnly):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_the_risk_records_keep_their_constructor_semantics() -> None:
    decision = Decision(True, None, "0dte", "open", "s1", "SPY", factors={"confidence": Decimal(1)},
                        checks=(GateCheck("halted", "pass"),), caps=(CapBound("max_bet", "contracts", Decimal(1), 3, 2),))
    assert decision.factors["confidence"] == Decimal(1) and decision.notional == Decimal(0)
    with pytest.raises(TypeError):
        decision.factors["x"] = Decimal(1)  # type: ignore[index]
    assert dataclasses.replace(decision, contracts=3).contracts == 3
    assert decision == Decision(True, None, "0dte", "open", "s1", "SPY", factors={"confidence": Decimal(1)},
                                checks=(GateCheck("halted", "pass"),),
                                caps=(CapBound("max_bet", "contracts", Decimal(1), 3, 2),))


def test_a_validated_correlation_table_is_taken_as_is_and_a_bad_one_still_refused() -> None:
    table = parse_correlations({"spy": {"qqq": Decimal("0.9")}, "QQQ": {"SPY": 0.9}})
    assert isinstance(table, CorrelationTable)
    assert parse_correlations(table) is table
    assert table == {"SPY": {"QQQ": Decimal("0.9")}, "QQQ": {"SPY": Decimal("0.9")}}
    assert table.get("SPY", {}).get("QQQ") == Decimal("0.9") and table.get("IWM") is None
    with pytest.raises(TypeError):
        table["SPY"]["QQQ"] = Decimal(0)  # type: ignore[index]
    for bad in (Decimal("1.01"), Decimal("NaN"), Decimal("-Infinity"), True):
        with pytest.raises(InvalidInput) as refused:
            parse_correlations({"SPY": {"QQQ": bad}})
        assert refused.value.code == "invalid_correlation"


def test_parsed_views_are_kept_and_unparsed_ones_normalized() -> None:
    views = (OpenPositionView("SPY", 2, Decimal("1.5")), OpenPositionView("QQQ", 1, Decimal(3)))
    assert parse_open_positions(views) is views
    assert parse_open_positions((OpenPositionView(" spy ", 2, Decimal("1.5")),)) == (OpenPositionView("SPY", 2, Decimal("1.5")),)
    assert parse_open_positions([OpenPositionView("SPY", 2, Decimal("1.5"))]) == (views[0],)
    for bad in (OpenPositionView("SPY", 0, Decimal(1)), OpenPositionView("SPY", 1, Decimal(-1)),
                OpenPositionView("SPY", 1, Decimal("NaN"))):
        with pytest.raises(InvalidInput):
            parse_open_positions((bad,))


def test_a_non_slotted_record_keeps_no_default_on_its_class_so_its_reads_specialize() -> None:
    """Room sizing3: a default left on the class whose type is a Python class (an Enum member, a frozen
    record) kept 3.11 from specializing the read of that field on every instance."""
    from risk.breakers import TradingState
    from risk.events import NO_EVENTS
    from risk.request import SizingRequest

    for cls in (SizingRequest, Decision):
        assert not [f.name for f in dataclasses.fields(cls) if f.name in cls.__dict__], cls
    defaults = {f.name: f.default for f in dataclasses.fields(SizingRequest)}
    assert defaults["trading_state"] is TradingState.ACTIVE and defaults["events"] is NO_EVENTS
    request = SizingRequest(signal=None, price=Decimal(1), capital_base=Decimal(1), now=None)  # type: ignore[arg-type]
    assert request.trading_state is TradingState.ACTIVE and request.events is NO_EVENTS
    if sys.version_info[:2] == (3, 11):  # the specialized forms are 3.11's
        namespace: dict[str, object] = {}
        exec("def read(r):\n    return r.trading_state, r.events\n", namespace)  # noqa: S102
        read = namespace["read"]
        for _ in range(100):
            read(request)  # type: ignore[operator]
        names = [i.opname for i in dis.get_instructions(read, adaptive=True) if i.opname.startswith("LOAD_ATTR")]
        assert names and "LOAD_ATTR_ADAPTIVE" not in names, names
