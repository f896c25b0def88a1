"""A 12-cell grid over the bundled week: local worker processes and a Dask LocalCluster of 2 workers give
identical cells, identical to each cell run alone with `tradingd replay` (in process for every cell, and
through the real CLI in a subprocess for one); a second run comes from the cache without one replay."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.sweep.cache import ResultCache
from daemon.sweep.grid import load_grid
from daemon.sweep.plan import SweepOptions, run_sweep
from daemon.sweep.report import write_report
from daemon.sweep.runners import DaskRunner, LocalRunner
from tests.daemon.sweep.conftest import RefusingRunner, env_for, same_results

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def local(grid_path: Path, tmp_path_factory: pytest.TempPathFactory):
    cache_dir = tmp_path_factory.mktemp("sweep-local") / "cache"
    runner = LocalRunner(2)
    result = run_sweep(SweepOptions("7dte", load_grid(grid_path)), runner, ResultCache(cache_dir))
    return result, cache_dir, runner


def test_local_workers_and_a_dask_cluster_give_identical_cells(local, grid_path: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    result, _, runner = local
    assert len(result.cells) == 12 and result.stats.failed == 0
    # 12 cells + 2 baselines, one of which ("new": the profile as it is) is no cell here
    assert result.stats.jobs == result.stats.replayed == runner.submitted == 14
    # the axes move the figures: identical results are not identical because nothing varied
    assert len({json.dumps(o["figures"], sort_keys=True) for o in result.full.values()}) >= 4
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", scheduler_port=0,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dask_runner = DaskRunner(client)
        on_dask = run_sweep(SweepOptions("7dte", load_grid(grid_path)), dask_runner, ResultCache(tmp_path / "cache"))
        assert dask_runner.submitted == 14 and on_dask.stats.replayed == 14
        assert "Dask cluster tcp://127.0.0.1:" in on_dask.stats.runner
    same_results(result, on_dask)
    assert result.baselines == on_dask.baselines
    assert result.ranking == on_dask.ranking


def test_each_cell_alone_with_tradingd_replay_gives_the_same_figures(local, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    result, _, _ = local
    for cell in result.cells:
        with monkeypatch.context() as env:
            for name, value in env_for(cell).items():
                env.setenv(name, value)
            code = main(["replay", "--profile", "7dte", "--sizing", "new", "--report", str(tmp_path / cell.name),
                         "--json"])
        out = capsys.readouterr().out
        assert code == 0, out
        assert json.loads(out)["figures"]["new"] == result.full[cell.index]["figures"], cell.label()


def _tradingd() -> list[str]:
    script = Path(sys.executable).parent / "tradingd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "daemon.cli"]


def test_a_cell_through_the_real_cli_subprocess(local, tmp_path: Path) -> None:
    result, _, _ = local
    cell = result.cells[7]
    env = {**os.environ, **env_for(cell)}
    proc = subprocess.run([*_tradingd(), "replay", "--profile", "7dte", "--sizing", "new", "--report",
                           str(tmp_path / "rep"), "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["figures"]["new"] == result.full[cell.index]["figures"]


def test_a_second_run_comes_from_the_cache_without_replaying(local, grid_path: Path, tmp_path: Path) -> None:
    result, cache_dir, _ = local
    again = run_sweep(SweepOptions("7dte", load_grid(grid_path)), RefusingRunner(), ResultCache(cache_dir))
    assert again.stats.cached == again.stats.jobs == 14 and again.stats.replayed == 0
    same_results(result, again)
    # the real command too: it reports 0 replays run, and writes the whole report from the cache
    report = tmp_path / "report"
    proc = subprocess.run([*_tradingd(), "sweep", "--profile", "7dte", "--grid", str(grid_path), "--report",
                           str(report), "--cache", str(cache_dir), "--workers", "2", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["run"]["replayed"] == 0 and summary["run"]["cached"] == 14, summary
    rows = list(csv.DictReader((report / "cells.csv").open()))
    assert len(rows) == 12
    by_cell = {r["cell"]: r for r in rows}
    for cell in result.cells:
        assert by_cell[cell.name]["total_pnl"] == result.full[cell.index]["figures"]["total_pnl"]
        assert by_cell[cell.name]["exits.seven_dte.initial_stop_pct"] == dict(
            (k, str(v)) for k, v in cell.overrides)["exits.seven_dte.initial_stop_pct"]
    page = (report / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3  # a heatmap per pair of the three axes
    assert "Sizing baselines" in page and "current sizing" in page and "seeds' projection" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")


def test_the_report_of_a_sweep_is_written_whole(local, tmp_path: Path) -> None:
    result, _, _ = local
    write_report(result, tmp_path)
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert [c["cell"] for c in doc["cells"]] == [c.name for c in result.cells]
    assert set(doc["baselines"]) == {"new", "current"}
    assert doc["baselines"]["new"]["figures"] != doc["baselines"]["current"]["figures"]
    assert doc["ranking"][0] == result.cells[result.ranking[0]].name
