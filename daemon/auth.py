"""API bearer tokens (and the bound URL): where they come from, where the CLI finds them, how tokens are compared.

Each of the two tokens (api: signals and reads; admin: everything, including
halt/resume/flatten/acknowledge) is taken from, first found wins:
  1. the environment: TRADINGD_API_TOKEN / TRADINGD_ADMIN_TOKEN (systemd EnvironmentFile);
  2. the file named by daemon.api.token_file / admin_token_file;
  3. `<state_dir>/api-token` / `<state_dir>/admin-token`, written by an earlier start;
  4. (daemon only) a new random token written there with mode 0600.
Reusing the state-dir file across restarts keeps clients working after a restart, and
two profiles sharing one state dir share one pair instead of overwriting each other.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from config.models import Settings

API_TOKEN_ENV = "TRADINGD_API_TOKEN"
ADMIN_TOKEN_ENV = "TRADINGD_ADMIN_TOKEN"
API_TOKEN_FILE = "api-token"
ADMIN_TOKEN_FILE = "admin-token"
_TOKEN_BYTES = 32


class TokenError(Exception):
    """A configured token cannot be used (unreadable or empty file)."""

    def __init__(self, message: str, code: str = "token_unavailable"):
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class Tokens:
    api: str | None
    admin: str | None

    def role(self, presented: str | None) -> str | None:
        """"admin", "api" or None. Constant-time compare; admin is checked against both so
        timing does not tell which token was close."""
        if not presented:
            return None
        is_admin = _same(presented, self.admin)
        is_api = _same(presented, self.api)
        if is_admin:
            return "admin"
        return "api" if is_api else None


def _same(presented: str, expected: str | None) -> bool:
    if not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def state_dir(settings: Settings) -> Path:
    return Path(settings.daemon.state_dir).expanduser()


def api_url_file(settings: Settings) -> Path:
    """Where the daemon writes its bound URL, so the CLI finds it when the port is 0."""
    return state_dir(settings) / f"api-url-{settings.profile.name}"


def load_tokens(settings: Settings, env: Mapping[str, str] | None = None, *, create: bool = False) -> Tokens:
    """The daemon calls with create=True (missing tokens are generated and written);
    the CLI with create=False (a missing token is None)."""
    env = os.environ if env is None else env
    directory = state_dir(settings)
    api = _one(env.get(API_TOKEN_ENV), settings.daemon.api.token_file, directory / API_TOKEN_FILE, create)
    admin = _one(env.get(ADMIN_TOKEN_ENV), settings.daemon.api.admin_token_file, directory / ADMIN_TOKEN_FILE,
                 create)
    return Tokens(api=api, admin=admin)


def _one(from_env: str | None, configured: str | None, fallback: Path, create: bool) -> str | None:
    if from_env and from_env.strip():
        return from_env.strip()
    if configured:
        return _read(Path(configured).expanduser(), required=True)
    found = _read(fallback, required=False)
    if found or not create:
        return found
    return _generate(fallback)


def _read(path: Path, required: bool) -> str | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        if required:
            raise TokenError(f"token file {path} does not exist") from None
        return None
    except OSError as exc:
        raise TokenError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    if not text:
        if required:
            raise TokenError(f"token file {path} is empty")
        return None
    return text


def _generate(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    try:
        # O_EXCL: a second daemon starting at the same moment reads the first one's token.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        found = _read(path, required=False)
        if found:
            return found
        # An empty file left by a crash mid-write: replace it, keeping it private.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token
