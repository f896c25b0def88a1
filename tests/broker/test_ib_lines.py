"""broker/ib/lines.AccountLines: the account's lines as every profile on this host holds them."""

from __future__ import annotations

import os
import subprocess
import sys

from broker.ib.lines import AccountLines, lines_path


def test_profiles_see_each_others_lines_and_a_dead_process_holds_none(tmp_path):
    path = lines_path(str(tmp_path), "127.0.0.1", 4002, "DU1")
    zero, seven = AccountLines(path, f"{os.getpid()}:17"), AccountLines(path, f"{os.getpid()}:27")
    zero.publish(40)
    seven.publish(30)
    assert (zero.others(), seven.others()) == (30, 40)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    AccountLines(path, f"{dead.stdout.strip()}:99").publish(50)  # a daemon that crashed holding lines
    assert zero.others() == 30
    seven.publish(0)
    assert zero.others() == 0


def test_an_unreadable_file_counts_nothing(tmp_path):
    path = lines_path(str(tmp_path), "h", 1, "DU1")
    path.write_text("not json")
    assert AccountLines(path, f"{os.getpid()}:1").others() == 0
