"""Every alert of monitoring/prometheus-rules.yml has a `promtool test rules` unit test, and they pass.

promtool comes with Debian's `prometheus` package (`.ci/run` installs it when missing); where it
is absent the promtool test skips and says so. The coverage check needs no binary.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = MONITORING / "prometheus-rules.yml"
TESTS = MONITORING / "tests" / "alerts-test.yml"


def _alerts() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def _tested(expect_firing: bool) -> set[str]:
    names = set()
    for case in yaml.safe_load(TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            if bool(check.get("exp_alerts")) == expect_firing:
                names.add(check["alertname"])
    return names


def test_every_alert_has_a_test_that_fires_it_and_one_that_does_not() -> None:
    alerts = _alerts()
    assert len(alerts) >= 8
    assert _tested(expect_firing=True) == alerts
    assert _tested(expect_firing=False) == alerts


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)")
def test_promtool_unit_tests_pass() -> None:
    done = subprocess.run(["promtool", "test", "rules", str(TESTS.relative_to(MONITORING))], cwd=MONITORING,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
