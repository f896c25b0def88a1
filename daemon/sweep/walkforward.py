"""Walk-forward folds and the in-sample / out-of-sample warning (pure functions).

`--walk-forward TRAIN:TEST` (in sessions) cuts the window's sessions into rolling folds: train on
sessions [i, i+TRAIN), test on the TEST sessions after them, then move on by TEST sessions, so the
test windows tile the tail of the data without overlap. On each fold the best eligible cell of the
training window (the sweep's objective and `--min-trades`) is replayed on the test window.

The warning rule ("in- and out-of-sample part") compares the winner's objective on a scale that does
not grow with the window length (`Objective.comparable`). A fold is flagged when
- out of sample has too few trades to judge (fewer than `--min-trades`), or no defined objective;
- in sample is not positive (nothing to carry forward: the "best" cell lost money already);
- out of sample is not positive while in sample was (the edge vanished);
- out of sample keeps less than `WFE_MIN` (half) of the in-sample value.
Over all folds, the walk-forward efficiency is sum(out-of-sample) / sum(in-sample) over the folds
where both are defined; below `WFE_MIN` the whole walk-forward is flagged. Half is the usual
rule of thumb (Pardo's walk-forward efficiency): a tuned system keeps at least half its
in-sample performance out of sample, or the tuning found noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from config.errors import ReasonError
from daemon.sweep.objective import Objective

WFE_MIN = 0.5


class WalkForwardError(ReasonError, ValueError):
    """A walk-forward the window cannot hold, or a bad TRAIN:TEST."""


@dataclass(frozen=True)
class Fold:
    index: int
    train: tuple[date, date]
    test: tuple[date, date]


def parse_spec(text: str) -> tuple[int, int]:
    try:
        train, test = (int(part) for part in text.split(":"))
    except ValueError:
        raise WalkForwardError("bad_walk_forward", f"--walk-forward takes TRAIN:TEST sessions (e.g. 3:1), not {text!r}") from None
    if train < 1 or test < 1:
        raise WalkForwardError("bad_walk_forward", f"--walk-forward {text}: both windows need at least one session")
    return train, test


def folds(sessions: list[date], train: int, test: int) -> list[Fold]:
    out: list[Fold] = []
    start = 0
    while start + train + test <= len(sessions):
        tr = sessions[start:start + train]
        te = sessions[start + train:start + train + test]
        out.append(Fold(len(out), (tr[0], tr[-1]), (te[0], te[-1])))
        start += test
    if not out:
        raise WalkForwardError("walk_forward_too_long", f"{len(sessions)} sessions cannot hold one fold of "
                                                        f"{train} training + {test} test sessions")
    return out


def fold_warning(obj: Objective, in_sample: dict[str, Any] | None, out_of_sample: dict[str, Any] | None,
                 min_trades: int) -> str | None:
    """Why this fold's in- and out-of-sample figures part, or None when they hold together."""
    if in_sample is None:
        return "no eligible cell in the training window"
    if out_of_sample is None:
        return "the out-of-sample replay failed"
    trades = int(out_of_sample.get("trades") or 0)
    if trades < min_trades:
        return f"too few trades out of sample to judge ({trades} < {min_trades})"
    ins, oos = obj.comparable(in_sample), obj.comparable(out_of_sample)
    if ins is None or oos is None:
        return f"{obj.label} undefined {'in' if ins is None else 'out of'} sample"
    if ins <= 0:
        return f"the best in-sample {obj.label} is not positive ({ins:.4g}): nothing to carry forward"
    if oos <= 0:
        return f"out of sample turned {'negative' if oos < 0 else 'flat'} ({oos:.4g} vs {ins:.4g} in sample)"
    if oos < WFE_MIN * ins:
        return f"out of sample kept {oos / ins:.0%} of the in-sample {obj.label} (< {WFE_MIN:.0%})"
    return None


def efficiency(obj: Objective, pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]]) -> float | None:
    """Walk-forward efficiency: sum of out-of-sample over sum of in-sample (comparable scale), or None."""
    ins = oos = 0.0
    used = 0
    for a, b in pairs:
        x = None if a is None else obj.comparable(a)
        y = None if b is None else obj.comparable(b)
        if x is None or y is None:
            continue
        ins, oos, used = ins + x, oos + y, used + 1
    if not used or ins <= 0:
        return None
    return oos / ins
