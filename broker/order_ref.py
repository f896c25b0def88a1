"""orderRef = `tradingd:<profile>:<signal or exit id>:<n>` (SPEC §4.2): how our orders are recognized after a restart.

The source id is the caller's (a signal id may itself hold colons), so parsing takes the
prefix and profile from the left and the child number from the right.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.errors import ReasonError

DEFAULT_PREFIX = "tradingd"
SEP = ":"


class OrderRefError(ReasonError, ValueError):
    """`code` is a stable reason code."""


@dataclass(frozen=True, slots=True)
class OrderRef:
    profile: str
    source_id: str  # the signal id (entries) or exit id (exits)
    n: int  # child number within the parent order
    prefix: str = DEFAULT_PREFIX

    @property
    def parent(self) -> str:
        return parent_ref(self.profile, self.source_id, self.prefix)

    def __str__(self) -> str:
        return f"{self.parent}{SEP}{self.n}"


def _check_part(name: str, value: str, allow_sep: bool) -> None:
    if not value or value != value.strip() or any(c.isspace() for c in value):
        raise OrderRefError("bad_order_ref", f"{name} must be non-empty without whitespace, got {value!r}")
    if not allow_sep and SEP in value:
        raise OrderRefError("bad_order_ref", f"{name} must not contain {SEP!r}, got {value!r}")


# Parts already checked, and what they made (refs of parents in flight are built and parsed again and again:
# every child, every order update and fill of a stop). Only good parts are kept (a bad one raises each time);
# cleared whole when full, so it stays bounded on a daemon that runs for weeks.
_CACHE_MAX = 4096
_parents: dict[tuple[str, str, str], str] = {}
_parsed: dict[tuple[str, str], OrderRef] = {}


def parent_ref(profile: str, source_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`tradingd:<profile>:<source id>`: what every child's orderRef starts with."""
    key = (prefix, profile, source_id)
    ref = _parents.get(key) if type(profile) is str and type(source_id) is str and type(prefix) is str else None
    if ref is not None:
        return ref
    _check_part("prefix", prefix, allow_sep=False)
    _check_part("profile", profile, allow_sep=False)
    _check_part("source id", source_id, allow_sep=True)
    ref = SEP.join((prefix, profile, source_id))
    if len(_parents) >= _CACHE_MAX:
        _parents.clear()
    _parents[key] = ref
    return ref


def build_order_ref(profile: str, source_id: str, n: int, prefix: str = DEFAULT_PREFIX) -> str:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise OrderRefError("bad_order_ref", f"child number must be an integer >= 0, got {n!r}")
    return str(OrderRef(profile, source_id, n, prefix))  # str() validates the parts


def parse_order_ref(text: str, prefix: str = DEFAULT_PREFIX) -> OrderRef:
    """Raises OrderRefError `not_ours` for someone else's order, `bad_order_ref` for a damaged one of ours."""
    if type(text) is str and type(prefix) is str:
        known = _parsed.get((text, prefix))
        if known is not None:
            return known  # frozen: the same value the parse below would build
    head = prefix + SEP
    if not isinstance(text, str) or not text.startswith(head):
        raise OrderRefError("not_ours", f"orderRef {text!r} does not start with {head!r}")
    profile, sep, rest = text[len(head):].partition(SEP)
    source_id, sep2, n_text = rest.rpartition(SEP)
    if not (sep and sep2) or not (n_text.isascii() and n_text.isdigit()):
        raise OrderRefError("bad_order_ref", f"orderRef {text!r} is not {prefix}:<profile>:<id>:<n>")
    ref = OrderRef(profile, source_id, int(n_text), prefix)
    parent_ref(profile, source_id, prefix)  # same rules as building
    if len(_parsed) >= _CACHE_MAX:
        _parsed.clear()
    _parsed[(text, prefix)] = ref
    return ref


def is_ours(text: str | None, prefix: str = DEFAULT_PREFIX) -> bool:
    if not text:
        return False
    try:
        parse_order_ref(text, prefix)
    except OrderRefError:
        return False
    return True
