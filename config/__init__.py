"""Configuration: pydantic models and the two TOML profiles, loaded once and passed down."""

from config.loader import ConfigError, available_profiles, load_settings
from config.models import Settings

__all__ = ["ConfigError", "Settings", "available_profiles", "load_settings"]
