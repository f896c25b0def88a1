"""Load a profile once: TOML file, then TRADINGD_<SECTION>__<KEY> environment overrides, then validate whole."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.models import Settings

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
ENV_PREFIX = "TRADINGD_"
# Environment variables under the prefix that are not configuration keys.
_NOT_CONFIG = {"TRADINGD_API_TOKEN", "TRADINGD_ADMIN_TOKEN", "TRADINGD_PROFILE", "TRADINGD_CONFIG"}


class ConfigError(Exception):
    """The configuration cannot be used. `problems` lists (key, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def profile_path(profile: str) -> Path:
    """A profile name (`0dte`) or a path to a TOML file."""
    candidate = Path(profile)
    if candidate.suffix == ".toml":
        return candidate
    path = PROFILES_DIR / f"{profile}.toml"
    if not path.exists():
        raise ConfigError([("profile", f"unknown profile {profile!r}; known: {', '.join(available_profiles())}")])
    return path


def load_settings(profile: str, env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """The effective Settings of `profile`. Raises ConfigError naming each bad key."""
    path = profile_path(profile)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError([("profile", f"no such file: {path}")]) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([("profile", f"cannot read {path}: {exc}")]) from None
    env = os.environ if env is None else env
    for key, value in _env_overrides(env).items():
        _set_path(raw, key, value)
    for key, value in (overrides or {}).items():
        _set_path(raw, key.split("."), value)
    return validate_settings(raw)


def validate_settings(raw: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(_decimals(raw))
    except ValidationError as exc:
        raise ConfigError([(_key(err["loc"]), err["msg"]) for err in exc.errors()]) from None


def _key(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<root>"


def _env_overrides(env: Mapping[str, str]) -> dict[tuple[str, ...], Any]:
    found: dict[tuple[str, ...], Any] = {}
    for name, text in env.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_CONFIG or "__" not in name:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        found[path] = _parse_env_value(text)
    return found


def _parse_env_value(text: str) -> Any:
    """TOML literal syntax when it parses (numbers, booleans, arrays, tables), a plain string otherwise."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_path(raw: dict[str, Any], path: tuple[str, ...] | list[str], value: Any) -> None:
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _decimals(value: Any) -> Any:
    """TOML floats become Decimals through their shortest repr, so 0.33 is Decimal('0.33'), not a binary float."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value
