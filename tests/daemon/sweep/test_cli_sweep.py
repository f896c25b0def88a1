"""`tradingd sweep` refusals: a live broker, a bad grid (the key named, nothing run), bad options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["sweep", *args, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else {}


def test_a_sweep_refuses_a_live_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"sizing.max_bet_pct" = [0.5, 0.6]\n')
    code, out = _run(capsys, "--profile", "7dte", "--grid", str(grid), "--broker", "ib", "--report", str(tmp_path / "r"))
    assert code == 2 and out["code"] == "sweep_live_refused" and "live broker" in out["error"]
    assert not (tmp_path / "r").exists()
    grid.write_text('[grid]\n"broker.kind" = ["ib"]\n')
    code, out = _run(capsys, "--profile", "7dte", "--grid", str(grid), "--report", str(tmp_path / "r"))
    assert code == 2 and out["code"] == "sweep_live_refused" and "broker.kind" in out["error"]


def test_a_bad_cell_is_named_and_nothing_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"sizing.max_bet_pct" = [0.5, -3]\n')
    code, out = _run(capsys, "--profile", "7dte", "--grid", str(grid), "--report", str(tmp_path / "r"))
    assert code == 2 and out["code"] == "grid_invalid"
    assert "sizing.max_bet_pct = " in out["error"] and "c001" in out["error"]
    assert not list((tmp_path / "r").rglob("*.json")) and not (tmp_path / "r" / "cells.csv").exists()


@pytest.mark.parametrize("args, code", [
    (["--workers", "0"], "bad_workers"),
    (["--walk-forward", "3"], "bad_walk_forward"),
    (["--walk-forward", "4:2"], "walk_forward_too_long"),
    (["--from", "2019-02-14", "--to", "2019-02-13"], "bad_window"),
    (["--from", "2020-01-01"], "bad_window"),
    (["--signals", "/nonexistent/signals.jsonl"], None),
    (["--workers", "2", "--cluster", "tcp://127.0.0.1:1"], "usage"),
])
def test_bad_options_are_refused_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                               code: str | None) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"sizing.max_bet_pct" = [0.5, 0.6]\n')
    status, out = _run(capsys, "--profile", "7dte", "--grid", str(grid), "--report", str(tmp_path / "r"), *args)
    assert status == 2 and out["error"]
    if code is not None:
        assert out["code"] == code


def test_an_unreachable_cluster_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"sizing.max_bet_pct" = [0.5, 0.6]\n')
    status, out = _run(capsys, "--profile", "7dte", "--grid", str(grid), "--report", str(tmp_path / "r"),
                       "--cluster", "tcp://127.0.0.1:9", "--connect-timeout", "2")
    assert status == 2 and out["code"] == "cluster_unreachable"


def test_the_progress_bar_draws_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from daemon.commands.sweep import _Bar
    from daemon.sweep.plan import Stats

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    bar = _Bar()
    bar(Stats(cached=3, replayed=3, workers_lost=1), 12)
    bar.done()
    assert "[###############...............] 6/12 replays (3 cached, 1 worker loss(es))" in tty.getvalue()
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    quiet = _Bar()
    quiet(Stats(replayed=1), 2)
    quiet.done()
    assert pipe.getvalue() == ""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sweep_opens_no_store_and_no_broker(tmp_path: Path) -> None:
    """The whole command in a fresh interpreter: a one-session, two-cell sweep runs and the process never
    imported the store, its migrations or the IB client (SQLAlchemy itself is loaded by another command's
    parser, so it proves nothing either way)."""
    import subprocess
    import sys

    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"exits.seven_dte.initial_stop_pct" = [0.1, 0.3]\n')
    probe = ("import sys; from daemon.cli import main; "
             f"code = main(['sweep', '--profile', '7dte', '--grid', {str(grid)!r}, '--from', '2019-02-13', '--to', "
             f"'2019-02-13', '--workers', '2', '--report', {str(tmp_path / 'r')!r}, '--json']); "
             "bad = sorted(m for m in sys.modules if m.startswith(('daemon.store', 'alembic', 'ib_async', "
             "'broker.ib'))); print(code, bad)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout
