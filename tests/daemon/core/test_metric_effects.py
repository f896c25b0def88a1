"""Every `MetricUpdate` the core emits names a `daemon.metrics.Metrics` method that takes its arguments.

The shell carries a MetricUpdate out as `getattr(metrics, name)(**args)`; a name or keyword the
Metrics class lacks would raise in the shell on the first such event (the core emitted
`set_store_available` and `observe_bad_event` before Metrics had them). The core's sources are
read for their `.metric("name", key=...)` calls, so a new call is checked without a list to keep.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import daemon.core
from daemon.metrics import Metrics

CORE = Path(daemon.core.__file__).parent


def metric_calls() -> list[tuple[str, str, tuple[str, ...]]]:
    found = []
    for path in sorted(CORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "metric"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                keys = tuple(k.arg for k in node.keywords if k.arg is not None)
                found.append((f"{path.name}:{node.lineno}", node.args[0].value, keys))
    return found


def test_the_core_emits_metric_updates() -> None:
    assert len(metric_calls()) >= 10  # the walk finds the calls (a broken walk would pass the next test empty)


@pytest.mark.parametrize(("where", "name", "keys"), metric_calls(), ids=lambda v: v if isinstance(v, str) else None)
def test_each_metric_update_binds_to_a_metrics_method(where: str, name: str, keys: tuple[str, ...]) -> None:
    method = getattr(Metrics, name, None)
    assert callable(method), f"{where}: Metrics has no method {name!r}"
    inspect.signature(method).bind(None, **{key: None for key in keys})


def test_the_two_late_methods_move_their_series() -> None:
    metrics = Metrics("0dte")
    metrics.set_store_available(False)
    metrics.observe_bad_event("invalid_fill")
    text = metrics.render()[0].decode()
    assert 'tradingd_store_available{profile="0dte"} 0.0' in text
    assert 'tradingd_bad_events_total{profile="0dte",reason="invalid_fill"} 1.0' in text
