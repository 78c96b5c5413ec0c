"""What a servicer context tells (the deadline it saw, a status by number), and the probe
service's name: shared by the probe and the servers, and light on purpose (grpc, no protobuf),
so a server that hosts no probe never loads protobuf."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

__all__ = ["PROBE_SERVICE_NAME", "deadline_seconds", "status_code"]

PROBE_SERVICE_NAME = "pytest_grpc_deadlines.probe.v1.Probe"

#: A sync server reports "no deadline" as a time_remaining() of about 9.22e18 s.
_NO_DEADLINE_ABOVE = 1e9

if TYPE_CHECKING:
    import grpc.aio

    _AioContext = grpc.aio.ServicerContext[Any, Any]


def deadline_seconds(context: grpc.ServicerContext | _AioContext) -> float | None:
    """Seconds left before the client's deadline, or None when the client set none."""
    remaining = context.time_remaining()
    if remaining is None or remaining > _NO_DEADLINE_ABOVE:
        return None
    return float(remaining)


def status_code(number: int) -> grpc.StatusCode | None:
    """The ``grpc.StatusCode`` whose number is ``number``, else None."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return None
