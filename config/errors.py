"""The one shape of a reason-coded error, shared by every layer.

It lives in `config/` because that is the package every other one (pure `risk/` and `exits/`
included) already depends on; each layer subclasses it under a name of its own domain.
"""

from __future__ import annotations


class ReasonError(Exception):
    """Something refused with a stable snake_case reason `code`; str() reads `code: message`."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
