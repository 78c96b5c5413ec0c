"""Errors and warnings the plugin raises, kept free of pytest so pure modules can use them."""

from __future__ import annotations

__all__ = ["CascadeError", "GrpcDeadlinesWarning"]


class GrpcDeadlinesWarning(UserWarning):
    """A setting reaches the code under test differently from what the test asked for."""


class CascadeError(ValueError):
    """A cascade setting whose environment value cannot be read the way its reader reads it.

    Raised on access to that one setting; the other settings of the same
    :class:`~pytest_grpc_deadlines.Resolved` stay readable.
    """

    def __init__(
        self,
        message: str,
        *,
        setting: str,
        env_var: str,
        value: str | None,
        origin: str,
    ) -> None:
        super().__init__(message)
        self.setting = setting
        self.env_var = env_var
        self.value = value
        self.origin = origin
