import pytest

from broker.order_ref import OrderRef, OrderRefError, build_order_ref, is_ours, parent_ref, parse_order_ref


def test_build_and_parse_round_trip():
    text = build_order_ref("0dte", "sig-42", 3)
    assert text == "tradingd:0dte:sig-42:3"
    assert parse_order_ref(text) == OrderRef("0dte", "sig-42", 3)
    assert parse_order_ref(text).parent == parent_ref("0dte", "sig-42") == "tradingd:0dte:sig-42"


def test_a_source_id_may_hold_colons():
    text = build_order_ref("7dte", "exit:pos-7:tier2", 1)
    assert parse_order_ref(text) == OrderRef("7dte", "exit:pos-7:tier2", 1)


@pytest.mark.parametrize("text", ["", "manual order", "other:0dte:sig:1", None])
def test_someone_elses_orders_are_not_ours(text):
    assert not is_ours(text)
    if text is not None:
        with pytest.raises(OrderRefError) as err:
            parse_order_ref(text)
        assert err.value.code == "not_ours"


@pytest.mark.parametrize("text", ["tradingd:0dte:sig", "tradingd:0dte:sig:x", "tradingd::sig:1",
                                  "tradingd:0dte::1", "tradingd:0dte:sig:-1", "tradingd:0dte:sig:²"])
def test_damaged_refs_of_ours_are_reported(text):
    with pytest.raises(OrderRefError) as err:
        parse_order_ref(text)
    assert err.value.code == "bad_order_ref"
    assert not is_ours(text)


@pytest.mark.parametrize("args", [("", "sig", 1), ("0:dte", "sig", 1), ("0dte", "", 1), ("0dte", "a b", 1),
                                  ("0dte", "sig", -1), ("0dte", "sig", True), ("0dte", "sig", 1.5)])
def test_building_refuses_bad_parts(args):
    with pytest.raises(OrderRefError):
        build_order_ref(*args)


def test_other_prefix():
    text = build_order_ref("0dte", "s", 0, prefix="paper")
    assert is_ours(text, prefix="paper") and not is_ours(text)
