"""The sweep: validate every cell, plan the replays, run what the cache does not hold, collect.

    result = run_sweep(SweepOptions(profile="7dte", grid=load_grid("grid.toml")), LocalRunner(2),
                       ResultCache(report_dir / "cache"))

Phase 1 runs every cell on the whole window, the two sizing baselines ("new": the profile as it is;
"current": the seeds' pre-change sizing, `daemon.backtest.run.sizing_overlay`) and, with a
walk-forward, every cell on every training window. Phase 2 replays each fold's winner on its test
window. Replays with the same cache key run once (a baseline equal to a cell, say).

A sweep never touches a live store or broker: each replay is `run_replay` on the sim venue with its
records collected in memory; the broker kind is forced to `sim` and a grid may not vary it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from daemon.backtest.data import SHARED_SETS
from daemon.sweep.cache import ResultCache
from daemon.sweep.grid import Cell, Grid, GridError
from daemon.sweep.jobs import Job, code_version, file_digest, preload
from daemon.sweep.objective import Objective, eligible, objective, rank
from daemon.sweep.walkforward import WFE_MIN, Fold, efficiency, fold_warning, folds

NAMED_DATA = ("bundled", *SHARED_SETS)  # by name; anything else is a folder, made absolute for the workers
BASELINES = ("new", "current")


@dataclass(frozen=True)
class SweepOptions:
    profile: str
    grid: Grid
    data: str = "bundled"
    window: tuple[date | None, date | None] = (None, None)
    signals: str = "reference"
    walk_forward: tuple[int, int] | None = None
    objective: str = "sharpe"
    min_trades: int = 1
    baselines: bool = True


@dataclass
class Stats:
    runner: str = ""
    jobs: int = 0  # replays the sweep needs, duplicates folded
    cached: int = 0  # of those, found in the cache
    replayed: int = 0  # of those, run by a worker in this sweep
    failed: int = 0
    workers_lost: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SweepResult:
    options: SweepOptions
    cells: list[Cell]
    sessions: list[date]
    data_name: str
    data_digest: str
    code: str
    full: dict[int, dict[str, Any]]  # cell index -> outcome on the whole window
    baselines: dict[str, dict[str, Any]]
    ranking: list[int]
    folds: list[dict[str, Any]] = field(default_factory=list)
    wfe: float | None = None
    wf_warning: str | None = None
    stats: Stats = field(default_factory=Stats)
    notes: list[str] = field(default_factory=list)

    @property
    def obj(self) -> Objective:
        return objective(self.options.objective)


Progress = Callable[[Stats, int], None]  # (stats so far, total replays planned)


def _resolve_data(spec: str) -> str:
    return spec if spec in NAMED_DATA else str(Path(spec).expanduser().resolve())


def resolve_cells(profile: str, grid: Grid, data: Any) -> dict[int, Any]:
    """Every cell's effective Settings, validated by the config loader before anything runs. All bad
    cells are reported at once, each with its key and value."""
    from config.loader import ConfigError
    from daemon.backtest.run import replay_settings

    settings, problems = {}, []
    for cell in grid.cells():
        try:
            settings[cell.index] = replay_settings(profile, data, "new", overrides=cell.all_overrides())
        except ConfigError as exc:
            given = cell.all_overrides()
            for key, message in exc.problems:
                shown = f" = {given[key]!r}" if key in given else ""
                problems.append(f"{key}{shown}: {message} (cell {cell.name}: {cell.label()})")
    if problems:
        unique = list(dict.fromkeys(problems))
        raise GridError("grid_invalid", "; ".join(unique[:10]) + (f"; and {len(unique) - 10} more" if len(unique) > 10 else ""))
    return settings


def run_sweep(options: SweepOptions, runner: Any, cache: ResultCache, progress: Progress | None = None) -> SweepResult:
    from daemon.backtest.data import load_dataset
    from daemon.backtest.run import replay_settings
    from daemon.signals.jsonl import load_signal_file

    obj = objective(options.objective)
    spec = _resolve_data(options.data)
    data = load_dataset(spec)
    digest = data.digest()
    signals, signals_digest = "reference", "reference"
    if options.signals != "reference":
        signals = str(Path(options.signals).expanduser().resolve())
        load_signal_file(signals)  # refuses a bad file before any worker starts
        signals_digest = file_digest(signals)
    sessions = data.window(*options.window).days()
    if not sessions:
        raise GridError("bad_window", "no recorded session in the window")
    plan_folds = folds(sessions, *options.walk_forward) if options.walk_forward else []
    cells = options.grid.cells()
    settings = resolve_cells(options.profile, options.grid, data)
    preload(spec, data)  # forked local workers inherit it

    def job(cell: str, phase: str, fold: int | None, s: Any, window: tuple[date | None, date | None],
            sizing: str = "new") -> Job:
        return Job(cell, phase, fold, s, spec, digest, signals, signals_digest, window, sizing)

    stats = Stats(runner=runner.describe())
    lost_before = runner.lost
    phase1: list[Job] = [job(c.name, "full", None, settings[c.index], options.window) for c in cells]
    if options.baselines:
        phase1 += [job(f"baseline-{s}", "baseline", None, replay_settings(options.profile, data, s), options.window, s)
                   for s in BASELINES]
    for f in plan_folds:
        phase1 += [job(c.name, "train", f.index, settings[c.index], f.train) for c in cells]
    total = len({j.key for j in phase1}) + len(plan_folds)
    outcomes: dict[str, dict[str, Any]] = {}

    def execute(jobs: list[Job]) -> None:
        todo: dict[str, Job] = {}
        for j in jobs:
            if j.key in outcomes or j.key in todo:
                continue
            stats.jobs += 1
            hit = cache.get(j.key)
            if hit is not None:
                outcomes[j.key] = hit
                stats.cached += 1
            else:
                todo[j.key] = j
        if progress:
            progress(stats, total)
        if not todo:
            return
        for done, outcome in runner.run(list(todo.values())):
            if "error" not in outcome and outcome.get("code") != code_version():
                outcome = {"error": "code_mismatch", "message": "the worker runs other code than the planner "
                                                                 f"({str(outcome.get('code'))[:12]} vs {code_version()[:12]})"}
            if "error" in outcome:
                stats.failed += 1
            else:
                cache.put(done.key, done.describe(), outcome)
                stats.replayed += 1
            outcomes[done.key] = outcome
            stats.workers_lost = runner.lost - lost_before
            if progress:
                progress(stats, total)

    execute(phase1)

    def figures_of(j: Job) -> dict[str, Any] | None:
        outcome = outcomes.get(j.key) or {}
        return outcome.get("figures")

    winners: dict[int, Cell | None] = {}
    for f in plan_folds:
        rows = [(c.index, figures_of(job(c.name, "train", f.index, settings[c.index], f.train))) for c in cells]
        order = rank(rows, obj, options.min_trades)
        best = order[0] if order and eligible(dict(rows)[order[0]], obj, options.min_trades) else None
        winners[f.index] = None if best is None else cells[best]
    phase2 = [job(w.name, "test", i, settings[w.index], plan_folds[i].test) for i, w in winners.items() if w]
    execute(phase2)

    full = {c.index: outcomes[job(c.name, "full", None, settings[c.index], options.window).key] for c in cells}
    baselines = {}
    if options.baselines:
        for s in BASELINES:
            baselines[s] = outcomes[job(f"baseline-{s}", "baseline", None,
                                        replay_settings(options.profile, data, s), options.window, s).key]
    ranking = rank([(i, o.get("figures")) for i, o in full.items()], obj, options.min_trades)
    result = SweepResult(options, cells, sessions, data.name, digest, code_version(), full, baselines, ranking,
                         stats=stats, notes=list(data.notes))
    pairs = []
    for f in plan_folds:
        winner = winners[f.index]
        ins = oos = None
        if winner is not None:
            ins = figures_of(job(winner.name, "train", f.index, settings[winner.index], f.train))
            oos = figures_of(job(winner.name, "test", f.index, settings[winner.index], f.test))
        pairs.append((ins, oos))
        result.folds.append(_fold_row(f, winner, ins, oos, obj, options.min_trades))
    if plan_folds:
        result.wfe = efficiency(obj, pairs)
        flagged = sum(1 for row in result.folds if row["warning"])
        if result.wfe is None:
            result.wf_warning = (f"walk-forward efficiency undefined: no positive in-sample {obj.label} to carry "
                                 f"forward ({flagged} of {len(plan_folds)} folds flagged)")
        elif result.wfe < WFE_MIN:
            result.wf_warning = (f"walk-forward efficiency {result.wfe:.0%} (< {WFE_MIN:.0%}): the grid's best cells "
                                 f"do not hold out of sample ({flagged} of {len(plan_folds)} folds flagged)")
        elif flagged:
            result.wf_warning = f"{flagged} of {len(plan_folds)} folds flagged"
    return result


def _fold_row(f: Fold, winner: Cell | None, ins: dict[str, Any] | None, oos: dict[str, Any] | None,
              obj: Objective, min_trades: int) -> dict[str, Any]:
    def side(figs: dict[str, Any] | None) -> dict[str, Any]:
        if figs is None:
            return {"objective": None, "trades": None, "return_pct": None, "max_drawdown_pct": None, "pnl": None}
        return {"objective": obj.of(figs), "comparable": obj.comparable(figs), "trades": figs["trades"],
                "return_pct": figs["total_return_pct"], "max_drawdown_pct": figs["max_drawdown_pct"],
                "pnl": figs["total_pnl"]}

    return {"fold": f.index, "train": [f.train[0].isoformat(), f.train[1].isoformat()],
            "test": [f.test[0].isoformat(), f.test[1].isoformat()],
            "cell": None if winner is None else winner.name, "params": None if winner is None else winner.label(),
            "in_sample": side(ins), "out_of_sample": side(oos),
            "warning": fold_warning(obj, ins, oos, min_trades)}
