"""The figures `make bench` reports: one row per figure, the median of >= 3 runs, `met` computed.

`bench/results.json` is a list of `{name, value, unit, target, met}`: `target` is the text of
issue 8's bound ("<= 50", ">= 300000"); `met` is computed here from the median value and never
asserted by a test. A figure that could not be measured on this tree has `value` null and
`met` false, with the reason printed in the table (never a made-up number).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNS = 3  # each figure is the median of at least this many runs


@dataclass(frozen=True)
class Sample:
    """One run's measurement of one figure."""

    name: str
    value: float | None
    unit: str
    op: str  # "<=" or ">="
    bound: float
    note: str = ""
    valid: bool = True  # False: the run could not hold a condition the target names (then never met)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None
    unit: str
    target: str
    met: bool
    runs: tuple[float | None, ...]
    note: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "target": self.target, "met": self.met}


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of values already sorted ascending."""
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100), at least the first
    return sorted_values[int(rank) - 1]


def meets(value: float | None, op: str, bound: float) -> bool:
    if value is None:
        return False
    if op == "<=":
        return value <= bound
    if op == ">=":
        return value >= bound
    raise ValueError(f"unknown comparison {op!r}")


def combine(runs: Iterable[Sequence[Sample]]) -> list[Figure]:
    """Group the samples of every run by name (first-seen order) and take each figure's median."""
    by_name: dict[str, list[Sample]] = {}
    for run in runs:
        for sample in run:
            by_name.setdefault(sample.name, []).append(sample)
    figures = []
    for name, samples in by_name.items():
        first = samples[0]
        values = [s.value for s in samples]
        measured = [v for v in values if v is not None]
        # A run that could not measure makes the figure unmeasured: a median over the lucky runs
        # would report something easier than what was asked.
        value = statistics.median(measured) if measured and len(measured) == len(values) else None
        # The note of the run whose value is the median (runs' notes differ only in their numbers).
        middle = min(samples, key=lambda s: abs(s.value - value) if s.value is not None and value is not None else 0)
        notes = [middle.note] if middle.note else []
        held = all(s.valid for s in samples)
        if not held:
            notes.insert(0, "a condition of the target did not hold: not met whatever the value")
        figures.append(Figure(name, None if value is None else round(value, 3), first.unit,
                              f"{first.op} {first.bound:g}", held and meets(value, first.op, first.bound),
                              tuple(values), " | ".join(notes)))
    return figures


def write_json(figures: Sequence[Figure], path: Path, keep: Sequence[dict[str, Any]] = ()) -> None:
    """The figures as a JSON list (after `keep`: rows of an earlier run that this one did not redo)."""
    path.write_text(json.dumps([*keep, *(f.as_json() for f in figures)], indent=2) + "\n")


def table(figures: Sequence[Figure]) -> str:
    rows = [("figure", "value", "unit", "target", "met", "runs")]
    for f in figures:
        runs = ", ".join("-" if v is None else f"{v:g}" for v in f.runs)
        rows.append((f.name, "not measured" if f.value is None else f"{f.value:g}", f.unit, f.target,
                     "yes" if f.met else "NO", runs))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {f.name}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)
