"""Every error and warning the plugin raises, kept free of grpc and pytest so every layer can
use them.

Each error derives from :class:`GrpcDeadlinesError` and from the built-in exception it always
was (``ValueError``, ``TypeError``, ``RuntimeError``, ``ImportError``, ``TimeoutError``,
``AssertionError``), so code that caught
the built-in keeps working.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "ArgumentTypeError",
    "CascadeError",
    "CheckError",
    "GrpcDeadlinesError",
    "GrpcDeadlinesWarning",
    "MethodError",
    "MissingExtraError",
    "OverrideError",
    "ServerStateError",
    "WaitTimeoutError",
]


class GrpcDeadlinesWarning(UserWarning):
    """A setting reaches the code under test differently from what the test asked for."""


class GrpcDeadlinesError(Exception):
    """The base of every error pytest-grpc-deadlines raises."""


class ArgumentError(GrpcDeadlinesError, ValueError):
    """A value given to a server, a cascade definition or a helper that it does not accept."""


class ArgumentTypeError(GrpcDeadlinesError, TypeError):
    """A value of a type that a cascade definition does not accept."""


class MethodError(ArgumentError):
    """A method name that is malformed or not hosted by the server."""


class OverrideError(GrpcDeadlinesError, ValueError):
    """A marker argument, ``--grpc-timeout`` value, or ini line that cannot be used."""


class ServerStateError(GrpcDeadlinesError, RuntimeError):
    """A server used in a state that does not allow it (not started, or its address not bound)."""


class MissingExtraError(GrpcDeadlinesError, ImportError):
    """A feature needs an optional extra that is not installed; the message names the extra."""


class WaitTimeoutError(GrpcDeadlinesError, TimeoutError):
    """A bounded wait of the plugin's (a fake server's handler, say) ran out."""


class CheckError(GrpcDeadlinesError, AssertionError):
    """A check the test asked for failed: ``assert_no_violations``, ``assert_cascade_conforms``."""


class CascadeError(GrpcDeadlinesError, ValueError):
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
