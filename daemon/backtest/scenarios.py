"""Stress scenarios (`--scenario NAME`): recorded data transformed, with what the test checks."""

from __future__ import annotations

from typing import Any

SCENARIOS: dict[str, Any] = {}


def apply_scenario(name: str, data: Any, settings: Any) -> tuple[Any, list[str], dict[str, Any]]:
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}")
    return SCENARIOS[name](data, settings)
