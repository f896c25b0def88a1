"""exits/ is the functional core: it imports neither the calendar library nor the daemon."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

EXITS = Path(__file__).resolve().parents[2] / "exits"


def test_importing_exits_pulls_in_no_shell() -> None:
    code = ("import sys, exits, exits.policy; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('daemon', 'broker', 'exchange_calendars', 'pandas', 'sqlalchemy', 'asyncio')); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=EXITS.parent).stdout.strip()
    assert out == "[]"


def test_no_clock_reads_in_exits() -> None:
    for path in EXITS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("now", "today", "utcnow", "time", "monotonic"):
                base = node.value
                name = getattr(base, "id", getattr(base, "attr", ""))
                assert name not in ("datetime", "date", "time"), f"{path.name}:{node.lineno} reads a clock"
