"""Killing a worker mid-sweep still completes every cell, with the same figures: a local worker process
killed by its id (the pool breaks; its unfinished cells are resubmitted on a new pool), and a worker of
a Dask LocalCluster killed while it runs a cell (the scheduler reruns its tasks). A small window keeps
it quick (one session); the kill comes after the first finished replay, so eleven or more cells are still to run."""

from __future__ import annotations

import os
import signal
from datetime import date
from pathlib import Path

import pytest

from daemon.sweep.cache import ResultCache
from daemon.sweep.grid import load_grid
from daemon.sweep.plan import SweepOptions, run_sweep
from daemon.sweep.runners import DaskRunner, LocalRunner
from tests.daemon.sweep.conftest import same_results

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
WINDOW = (date(2019, 2, 12), date(2019, 2, 12))


def _options(grid_path: Path) -> SweepOptions:
    return SweepOptions("7dte", load_grid(grid_path), window=WINDOW, baselines=False)


@pytest.fixture(scope="module")
def reference(grid_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """The same sweep with no worker harmed."""
    return run_sweep(_options(grid_path), LocalRunner(2), ResultCache(tmp_path_factory.mktemp("ref") / "cache"))


def test_killing_a_local_worker_mid_sweep_still_completes_every_cell(grid_path: Path, reference, tmp_path: Path) -> None:
    runner = LocalRunner(2)
    killed: list[int] = []
    left_at_kill: list[int] = []

    def progress(stats, total: int) -> None:
        if stats.replayed >= 1 and not killed:
            pids = runner.pids()
            assert len(pids) == 2
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
            left_at_kill.append(total - stats.replayed)

    result = run_sweep(_options(grid_path), runner, ResultCache(tmp_path / "cache"), progress)
    assert killed and left_at_kill[0] >= 10
    assert runner.lost == 1 and result.stats.workers_lost == 1
    assert runner.submitted > result.stats.jobs == 12  # the lost cells went to the new pool
    assert result.stats.failed == 0 and result.stats.replayed == 12
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    same_results(reference, result)


def test_killing_a_dask_worker_mid_sweep_still_completes_every_cell(grid_path: Path, reference, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    killed: list[tuple[str, int, int]] = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", scheduler_port=0,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        def progress(stats, total: int) -> None:
            if stats.replayed >= 1 and not killed:
                pids = client.run(os.getpid)
                processing = client.processing()
                busy = [addr for addr in sorted(pids) if processing.get(addr)]
                assert busy, processing
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append((busy[0], pids[busy[0]], len(processing[busy[0]])))

        result = run_sweep(_options(grid_path), DaskRunner(client), ResultCache(tmp_path / "cache"), progress)
        after = client.run(os.getpid)
    assert killed and killed[0][2] >= 1  # it was running a cell when it died
    assert killed[0][1] not in after.values()
    assert result.stats.failed == 0 and result.stats.replayed == 12
    same_results(reference, result)
