"""The client library a Dagster sensor uses to check stock: each deadline bug beside its fix.

Its timeouts come from Dagster's environment variables, read the way Dagster 1.13 reads them, so
``@pytest.mark.grpc_timeouts(sensor=...)`` reaches them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import grpc
from inventory_service import GetItemRequest, InventoryStub, ListItemsRequest, ReserveItemRequest

# Timeouts ------------------------------------------------------------------------------------


def default_timeout() -> int:
    """DAGSTER_GRPC_TIMEOUT_SECONDS, else 60."""
    value = os.getenv("DAGSTER_GRPC_TIMEOUT_SECONDS")
    if value:  # Dagster's rule: "" counts as unset, anything else goes to int()
        return int(value)
    return 60


def sensor_timeout() -> int:
    """DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS, else the default timeout."""
    value = os.getenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS")
    if value:
        return int(value)
    return default_timeout()


# One call ------------------------------------------------------------------------------------


def fetch_item(channel: grpc.Channel, sku: str) -> Any:
    """BUG: no deadline. A stuck server hangs the sensor forever."""
    return InventoryStub(channel).GetItem(GetItemRequest(sku=sku))


def fetch_item_fixed(channel: grpc.Channel, sku: str, *, timeout: float | None = None) -> Any:
    """FIXED: a deadline on every call, the sensor timeout unless the caller gives one."""
    seconds = sensor_timeout() if timeout is None else timeout
    return InventoryStub(channel).GetItem(GetItemRequest(sku=sku), timeout=seconds)


# Retries -------------------------------------------------------------------------------------


def fetch_with_retries(channel: grpc.Channel, sku: str, *, timeout: float, attempts: int = 3) -> Any:
    """BUG: every attempt gets the whole timeout, so three attempts may take three times as long
    as the caller allowed."""
    for attempt in range(attempts):
        try:
            return InventoryStub(channel).GetItem(GetItemRequest(sku=sku), timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def fetch_with_retries_fixed(channel: grpc.Channel, sku: str, *, timeout: float, attempts: int = 3) -> Any:
    """FIXED: one deadline for all attempts; each gets what is left of it."""
    deadline = time.monotonic() + timeout
    for attempt in range(attempts):
        try:
            return InventoryStub(channel).GetItem(
                GetItemRequest(sku=sku), timeout=deadline - time.monotonic()
            )
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# Other calls ---------------------------------------------------------------------------------


def reserve(channel: grpc.Channel, sku: str, quantity: int, *, timeout: float) -> Any:
    """Take ``quantity`` of ``sku`` out of stock."""
    return InventoryStub(channel).ReserveItem(ReserveItemRequest(sku=sku, quantity=quantity), timeout=timeout)


def iter_items(channel: grpc.Channel, prefix: str = "", *, timeout: float) -> Iterator[Any]:
    """The items whose sku starts with ``prefix``, as the server streams them."""
    yield from InventoryStub(channel).ListItems(ListItemsRequest(prefix=prefix), timeout=timeout)


async def fetch_item_async(channel: grpc.aio.Channel, sku: str, *, timeout: float | None = None) -> Any:
    """``fetch_item_fixed`` for asyncio code."""
    seconds = sensor_timeout() if timeout is None else timeout
    return await InventoryStub(channel).GetItem(GetItemRequest(sku=sku), timeout=seconds)
