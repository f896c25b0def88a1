"""SPEC §6: an IB paper account id is DU or DF followed by digits, matched exactly."""

from __future__ import annotations

import pytest

from broker.base import BrokerError
from broker.ib.account import check_account
from broker.ib.paper import is_paper
from config.models import IBConfig


@pytest.mark.parametrize("account", ["DU1234567", "DF7654321", "DU1", "DF0"])
def test_paper_ids(account: str) -> None:
    assert is_paper(account)


@pytest.mark.parametrize("account", ["DU", "DF", "DUU1", "DU123 ", " DU123", "du123", "Du123", "DU12a",
                                     "DU１２３", "DX123", "U1234567", "DU123\n", "", None, 123])
def test_not_paper_ids(account: object) -> None:
    assert not is_paper(account)


@pytest.mark.parametrize("account", ["DU", "DUU1", "DU123 "])
def test_check_account_refuses_prefix_lookalikes(account: str) -> None:
    with pytest.raises(BrokerError) as err:
        check_account([account], IBConfig())
    assert err.value.code == "live_account_refused"


def test_check_account_live_needs_exact_config() -> None:
    assert check_account(["U1234567"], IBConfig(live=True, account="U1234567")) == "U1234567"
    assert check_account(["DF99"], IBConfig()) == "DF99"
