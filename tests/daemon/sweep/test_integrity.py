"""A cached figure is only ever a figure of this code on these files: a worker refuses data files that are
not the planner's, the planner refuses a result from a worker running other code, and a failed replay
is reported, not cached, while the other cells go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from daemon.sweep import jobs
from daemon.sweep.cache import ResultCache
from daemon.sweep.grid import parse_grid
from daemon.sweep.jobs import JobError, code_version
from daemon.sweep.plan import SweepOptions, run_sweep

GRID = '[grid]\n"sizing.max_bet_pct" = [0.5, 0.6]\n'


def test_a_worker_refuses_data_files_that_are_not_the_planners() -> None:
    with pytest.raises(JobError) as err:
        jobs.dataset("bundled", "0" * 64)
    assert err.value.code == "data_mismatch"


class FakeRunner:
    """Answers every replay itself: c000 as if from a worker running other code, c001 as a failed replay."""

    name = "fake"
    submitted = 0
    lost = 0

    def describe(self) -> str:
        return "fake"

    def run(self, batch: list[Any]):
        for job in batch:
            self.submitted += 1
            if job.cell == "c000":
                yield job, {"figures": {"trades": 1}, "counts": {}, "code": "another-version"}
            elif job.cell == "c001":
                yield job, {"error": "replay_invalid", "message": "no recorded bars in the window"}
            else:
                yield job, {"figures": {"trades": 0}, "counts": {}, "code": code_version()}

    def close(self) -> None:
        pass


def test_other_code_and_failed_replays_are_reported_not_cached(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    result = run_sweep(SweepOptions("7dte", parse_grid(GRID)), FakeRunner(), cache)
    assert result.full[0]["error"] == "code_mismatch"
    assert result.full[1]["error"] == "replay_invalid"
    assert result.stats.failed == 2 and result.stats.replayed == 2  # the two baselines
    assert len(list(cache.root.rglob("*.json"))) == 2
    again = FakeRunner()
    run_sweep(SweepOptions("7dte", parse_grid(GRID)), again, cache)
    assert again.submitted == 2  # the two failures are asked for again; the baselines come from the cache


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_command_runs_on_a_dask_scheduler_by_its_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from distributed import LocalCluster

    from daemon.cli import main

    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"exits.seven_dte.initial_stop_pct" = [0.1, 0.3]\n')
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", scheduler_port=0,
                      dashboard_address=None) as cluster:
        code = main(["sweep", "--profile", "7dte", "--grid", str(grid), "--from", "2019-02-13", "--to", "2019-02-13",
                     "--cluster", cluster.scheduler_address, "--report", str(tmp_path / "r"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0, summary
    assert summary["run"]["replayed"] == 4 and summary["run"]["runner"].startswith("Dask cluster tcp://127.0.0.1:")
    assert (tmp_path / "r" / "cells.csv").exists() and (tmp_path / "r" / "report.html").exists()
