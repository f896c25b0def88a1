"""Bad values of the shared types: a reason code and a message."""

from __future__ import annotations


class MarketValueError(ValueError):
    """A value the shared types refuse; `code` is a stable snake_case reason."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)
