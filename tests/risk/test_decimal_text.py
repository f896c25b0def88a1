"""The gate's and the notes' texts put Decimals in with `!s` (`str(d)`) where they had a bare `{d}`
(`format(d, "")`, which parses an empty format spec: ~3x the cost). The record keeps its bytes only
if the two texts agree for every Decimal: checked here on specials and a seeded spread of signs,
sizes and exponents, under both settings of the context's `capitals`."""

from __future__ import annotations

import random
from decimal import Decimal, localcontext

SPECIAL = ["0", "-0", "0.000", "0E-10", "1E+3", "100E1", "1e-7", "0.000001", "-0.0000001", "1.10", "5E+0",
           "-5.000E+2", "1.5e-6", "12.5E-8", "123456789012345678901234567890", "NaN", "-NaN", "sNaN",
           "Infinity", "-Infinity"]


def _values() -> list[Decimal]:
    rng = random.Random(8)
    values = [Decimal(s) for s in SPECIAL]
    for _ in range(20_000):
        digits = rng.randint(0, 14)
        values.append(Decimal(rng.randint(-10**digits, 10**digits)).scaleb(rng.randint(-18, 10)))
    return values


def test_str_and_empty_format_give_the_same_text() -> None:
    values = _values()
    for capitals in (1, 0):
        with localcontext() as ctx:
            ctx.capitals = capitals
            differ = [v for v in values if f"{v}" != f"{v!s}"]
            assert not differ, differ[:5]
