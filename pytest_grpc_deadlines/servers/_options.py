"""What a test server is given: transport, loopback host, grpc options, servicers, byte limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from .._checks import is_loopback
from .._errors import ArgumentError
from ..cascade._cascade import Resolved
from ..cascade._invariants import INT32_MAX

__all__ = [
    "SUN_PATH_MAX",
    "Capture",
    "OptionsArg",
    "ServicerPair",
    "Transport",
    "byte_limit_options",
    "check_host",
    "options_list",
]

Transport = Literal["tcp", "unix"]
ServicerPair = tuple[Callable[[Any, Any], Any], Any]
OptionsArg = Mapping[str, Any] | Sequence[tuple[str, Any]] | None

#: sockaddr_un holds 108 bytes on Linux and 104 on macOS, terminating NUL included.
SUN_PATH_MAX = 103


def check_host(host: str) -> str:
    """The address to bind for ``host``, refusing anything but loopback."""
    if not isinstance(host, str):
        raise ArgumentError(f"host={host!r} must be a str such as '127.0.0.1'")
    if host == "localhost":
        return "127.0.0.1"
    if not is_loopback(host):
        raise ArgumentError(
            f"host={host!r} is refused: test servers bind loopback only "
            "(127.0.0.1 or another 127.x address, ::1, localhost)"
        )
    return host


def options_list(options: OptionsArg, what: str) -> list[tuple[str, Any]]:
    if options is None:
        return []
    if isinstance(options, Mapping):
        return list(options.items())
    try:
        pairs = [(str(k), v) for k, v in options]
    except (TypeError, ValueError):
        raise ArgumentError(
            f"{what}={options!r} must be a mapping or a sequence of (name, value) pairs"
        ) from None
    return pairs


def byte_limit_options(resolved: Resolved) -> list[tuple[str, int]]:
    """grpc options for the cascade's ``max_rx_bytes`` / ``max_send_bytes`` settings, if any."""
    out: list[tuple[str, int]] = []
    for name, option in (
        ("max_rx_bytes", "grpc.max_receive_message_length"),
        ("max_send_bytes", "grpc.max_send_message_length"),
    ):
        if name not in resolved:
            continue
        value = resolved[name]  # raises CascadeError, naming the variable, for a bad value
        if not isinstance(value, int) or not -INT32_MAX - 1 <= value <= INT32_MAX:
            setting = resolved.cascade[name]
            raise ArgumentError(
                f"{name}={value!r} ({resolved.source(name)}) cannot be given to grpc: "
                f"{setting.env_var} must fit in 32 bits (-2147483648 to {INT32_MAX}), "
                "or grpc raises OverflowError"
            )
        out.append((option, value))
    return out


class Capture:
    """Stands in for the server while ``add_XServicer_to_server`` runs, to learn the methods."""

    def __init__(self, server: Any) -> None:
        self._grpc_deadlines_target = server
        self.methods: set[str] = set()
        #: method -> whether it streams its responses, where the handler says
        self.streaming: dict[str, bool] = {}
        self.opaque = False

    def add_generic_rpc_handlers(self, handlers: Iterable[Any]) -> None:
        handlers = tuple(handlers)
        for handler in handlers:
            table = getattr(handler, "_method_handlers", None)
            if isinstance(table, Mapping):
                self.methods.update(str(name) for name in table)
                self._shapes({str(name): entry for name, entry in table.items()})
            else:
                self.opaque = True
        self._grpc_deadlines_target.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        self.methods.update(f"/{service}/{name}" for name in handlers)
        self._shapes({f"/{service}/{name}": entry for name, entry in handlers.items()})
        self._grpc_deadlines_target.add_registered_method_handlers(service, handlers)

    def _shapes(self, handlers: Mapping[str, Any]) -> None:
        for name, handler in handlers.items():
            streaming = getattr(handler, "response_streaming", None)
            if isinstance(streaming, bool):
                self.streaming[name] = streaming

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grpc_deadlines_target, name)
