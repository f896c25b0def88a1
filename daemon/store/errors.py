"""The one error the store raises for bad input or an impossible request."""

from __future__ import annotations


class StoreError(Exception):
    """`code` is a stable snake_case reason (`naive_datetime`, `unknown_position`, ...)."""

    def __init__(self, message: str, code: str):
        self.code = code
        super().__init__(message)
