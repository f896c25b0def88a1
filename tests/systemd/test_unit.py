"""systemd/tradingd@.service: the directives SPEC §6 asks for, and `systemd-analyze verify` when present."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from daemon.cli import UsageError, build_parser

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "tradingd@.service"


def directives() -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value in order (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(section: str, key: str) -> str:
    values = directives()[section].get(key)
    assert values, f"[{section}] {key}= missing"
    return values[-1]


def test_instance_is_the_profile_and_runs_the_ib_daemon_with_json_logs() -> None:
    argv = shlex.split(one("Service", "ExecStart"))
    assert argv[0].endswith("/tradingd")
    assert argv[1:] == ["run", "--profile", "%i", "--broker", "ib", "--json-logs"]
    assert "%i" in one("Unit", "Description")


def test_the_run_command_accepts_the_units_arguments() -> None:
    parser = build_parser()
    if "run" not in parser._subparsers._group_actions[0].choices:  # type: ignore[union-attr]
        pytest.skip("`tradingd run` is not registered yet")
    argv = shlex.split(one("Service", "ExecStart"))[1:]
    try:
        args = parser.parse_args([a.replace("%i", "0dte") for a in argv])
    except UsageError as exc:
        pytest.fail(f"`tradingd run` rejects the unit's arguments: {exc}")
    assert args.func is not None


def test_notify_watchdog_and_restart() -> None:
    assert one("Service", "Type") == "notify"
    assert one("Service", "NotifyAccess") == "main"
    assert 0 < int(one("Service", "WatchdogSec")) <= 120
    assert one("Service", "Restart") == "on-failure"
    assert int(one("Service", "RestartSec")) > 0
    assert one("Service", "RestartPreventExitStatus") == "2"  # config errors are not retried


def test_ordered_after_and_wanting_the_ib_gateway() -> None:
    assert "ibgateway.service" in one("Unit", "After").split()
    assert "ibgateway.service" in one("Unit", "Wants").split()
    assert "Requires" not in directives()["Unit"]  # a gateway restart must not stop tradingd


def test_state_dir_and_tokens() -> None:
    assert one("Service", "StateDirectory") == "tradingd/%i"
    assert one("Service", "StateDirectoryMode") == "0700"
    assert "%S/tradingd/%i" in one("Service", "ReadWritePaths").split()
    assert "TRADINGD_DAEMON__STATE_DIR=%S/tradingd/%i" in directives()["Service"]["Environment"]
    assert one("Service", "EnvironmentFile") == "-/etc/tradingd/%i.env"
    assert one("Service", "UMask") == "0077"
    assert one("Service", "User") == "tradingd"


@pytest.mark.parametrize(("key", "value"), [
    ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"), ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"), ("RestrictNamespaces", "yes"), ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"), ("MemoryDenyWriteExecute", "yes"), ("SystemCallArchitectures", "native"),
    ("CapabilityBoundingSet", ""),
])
def test_hardening(key: str, value: str) -> None:
    assert one("Service", key) == value


def test_network_and_syscalls_restricted() -> None:
    assert set(one("Service", "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    filters = directives()["Service"]["SystemCallFilter"]
    assert "@system-service" in filters and "~@privileged" in filters


def test_installs_into_multi_user() -> None:
    assert one("Install", "WantedBy") == "multi-user.target"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify wants an instance and an executable ExecStart; point it at a stand-in script.
    exe = tmp_path / "tradingd"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    unit = tmp_path / "tradingd@0dte.service"
    unit.write_text(UNIT.read_text().replace("/opt/tradingd/.venv/bin/tradingd", str(exe)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    if result.returncode != 0 and not problems and "Failed to" in result.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {result.stderr.strip()[:200]}")
    assert result.returncode == 0 and problems == [], result.stderr
