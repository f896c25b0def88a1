"""Where API tokens come from and how they are compared (daemon.auth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.loader import load_settings
from config.models import Settings
from daemon.auth import TokenError, Tokens, load_tokens


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings("0dte", env={}, overrides={"daemon.state_dir": str(tmp_path / "state"), **overrides})


def test_environment_wins_over_files(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")
    settings = settings_for(tmp_path, **{"daemon.api.token_file": str(tmp_path / "tok")})
    tokens = load_tokens(settings, {"TRADINGD_API_TOKEN": " from-env ", "TRADINGD_ADMIN_TOKEN": "adm"})
    assert tokens == Tokens(api="from-env", admin="adm")


def test_configured_files_are_read_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")
    (tmp_path / "adm").write_text("admin-file\n")
    settings = settings_for(tmp_path, **{"daemon.api.token_file": str(tmp_path / "tok"),
                                         "daemon.api.admin_token_file": str(tmp_path / "adm")})
    assert load_tokens(settings, {}) == Tokens(api="from-file", admin="admin-file")
    missing = settings_for(tmp_path, **{"daemon.api.token_file": str(tmp_path / "nope")})
    with pytest.raises(TokenError, match="does not exist"):
        load_tokens(missing, {})
    (tmp_path / "empty").write_text("  \n")
    empty = settings_for(tmp_path, **{"daemon.api.admin_token_file": str(tmp_path / "empty")})
    with pytest.raises(TokenError, match="empty"):
        load_tokens(empty, {})


def test_daemon_generates_once_and_reuses_across_restarts(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert load_tokens(settings, {}) == Tokens(api=None, admin=None)  # the CLI never creates
    first = load_tokens(settings, {}, create=True)
    assert first.api and first.admin and first.api != first.admin
    assert len(first.api) >= 32
    for name in ("api-token", "admin-token"):
        assert (tmp_path / "state" / name).stat().st_mode & 0o777 == 0o600
    assert load_tokens(settings, {}, create=True) == first
    assert load_tokens(settings, {}) == first  # what the CLI finds


def test_an_empty_state_file_is_replaced(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "api-token").write_text("")
    tokens = load_tokens(settings, {}, create=True)
    assert tokens.api and (tmp_path / "state" / "api-token").read_text().strip() == tokens.api
    assert (tmp_path / "state" / "api-token").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("presented", "role"), [
    ("adm", "admin"), ("api", "api"), ("ap", None), ("", None), (None, None), ("admx", None),
])
def test_roles(presented: str | None, role: str | None) -> None:
    assert Tokens(api="api", admin="adm").role(presented) == role


def test_unset_tokens_match_nothing() -> None:
    assert Tokens(api=None, admin=None).role("") is None
    assert Tokens(api="", admin=None).role("anything") is None
