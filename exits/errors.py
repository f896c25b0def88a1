"""Bad input to the exit rules: a reason code and a message, never a crash further in."""

from __future__ import annotations


class ExitInputError(ValueError):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)
