"""Is an IB account id a paper account (SPEC §6)? Pure, shared by the session and the account check.

An IB paper account id is `DU` or `DF` followed by digits (`DU1234567`, `DF7654321`). It is matched
exactly: no trimming, no case folding, ASCII digits only, so `"DU"`, `"DUU1"`, `"DU123 "`,
`"du123"` and `"DU１２３"` (full-width digits) are not paper accounts and the daemon refuses to
start on them unless the config names them as its live account.
"""

from __future__ import annotations

import re

PAPER_PREFIXES = ("DU", "DF")
_PAPER = re.compile(r"D[UF][0-9]+")


def is_paper(account_id: object) -> bool:
    return isinstance(account_id, str) and _PAPER.fullmatch(account_id) is not None
