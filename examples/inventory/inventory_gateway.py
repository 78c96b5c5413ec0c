"""A gateway in front of the Inventory service: it serves the same API and forwards each call to
an inner Inventory server. The buggy one drops the caller's deadline on the way; the fixed one
passes on what is left of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import grpc
from inventory_client import default_timeout, sensor_timeout
from inventory_service import InventoryStub

#: A sync grpc server reports "the caller set no deadline" as a time_remaining() of about
#: 9.22e18 s (grpc.aio reports None). Passed on as a timeout, grpc fails the call at once.
NO_DEADLINE_ABOVE = 1e9


def remaining_deadline(context: Any) -> float | None:
    """What is left of the caller's deadline, in seconds; None when the caller set none."""
    remaining = context.time_remaining()
    if remaining is None or remaining > NO_DEADLINE_ABOVE:
        return None
    return float(remaining)


class Gateway:
    """BUG: calls the inner server with no deadline, whatever the caller asked for. A caller that
    gives up leaves the inner call running, and a stuck inner server holds a gateway thread forever."""

    def __init__(self, inner: grpc.Channel) -> None:
        self.inner = InventoryStub(inner)

    def timeout(self, context: Any) -> float | None:
        """The inner call's timeout in seconds (None: no deadline)."""
        return None  # the bug

    def GetItem(self, request: Any, context: Any) -> Any:
        return _unary(self.inner.GetItem, request, self.timeout(context), context)

    def ListItems(self, request: Any, context: Any) -> Iterator[Any]:
        try:
            yield from self.inner.ListItems(request, timeout=self.timeout(context))
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details())

    def ReserveItem(self, request: Any, context: Any) -> Any:
        return _unary(self.inner.ReserveItem, request, self.timeout(context), context)


class GatewayNaive(Gateway):
    """BUG: passes on ``time_remaining()`` as it is. When the caller set no deadline a sync server
    reports about 9.22e18 s left, and grpc fails the inner call at once with DEADLINE_EXCEEDED."""

    def timeout(self, context: Any) -> float | None:
        remaining: float = context.time_remaining()
        return remaining


class GatewayFixed(Gateway):
    """FIXED: the inner call gets what is left of the caller's deadline (none if it set none)."""

    def timeout(self, context: Any) -> float | None:
        return remaining_deadline(context)


def _unary(method: Any, request: Any, timeout: float | None, context: Any) -> Any:
    try:
        return method(request, timeout=timeout)
    except grpc.RpcError as exc:
        context.abort(exc.code(), exc.details())  # the inner status, passed back to the caller
        raise  # not reached: abort raises


# Shutdown ------------------------------------------------------------------------------------


def shutdown_grace() -> int:
    """Seconds in-flight calls get when the gateway stops. BUG: forgets the sensor timeout, so
    a sensor call longer than the default timeout is cut at shutdown."""
    value = os.getenv("DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD")
    if value:
        return int(value)
    return default_timeout()


def shutdown_grace_fixed() -> int:
    """FIXED: Dagster's rule, max(default, schedule, sensor)."""
    value = os.getenv("DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD")
    if value:
        return int(value)
    schedule = os.getenv("DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS")
    return max(default_timeout(), int(schedule) if schedule else default_timeout(), sensor_timeout())
