"""How a call ended, for sync and asyncio tests alike: its status code, or the error it raised.

Given a callable, each helper calls it now; given an awaitable (a ``grpc.aio`` call, a task, a
coroutine), it returns a coroutine to await. So one name serves the sync and the asyncio tests
of a feature side by side: ``_code(lambda: stub.Unary(...))`` and ``await _code(stub.Unary(...))``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Coroutine
from typing import Any, overload

import grpc
import grpc.aio
import pytest


# An awaitable is an object too: mypy sees the signatures overlap (with grpc's stubs), while the
# body tells them apart.
@overload
def status_code(call: Awaitable[object]) -> Coroutine[Any, Any, grpc.StatusCode]: ...  # type: ignore[overload-overlap, unused-ignore]
@overload
def status_code(call: object) -> grpc.StatusCode: ...
def status_code(call: object) -> grpc.StatusCode | Coroutine[Any, Any, grpc.StatusCode]:
    """The status code the call ends with: OK when it raises nothing."""
    if inspect.isawaitable(call):
        return _status_code_async(call)
    try:
        if callable(call):
            call()
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


async def _status_code_async(awaitable: Awaitable[object]) -> grpc.StatusCode:
    try:
        await awaitable
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


@overload
def rpc_error(call: Awaitable[object]) -> Coroutine[Any, Any, grpc.RpcError]: ...
@overload
def rpc_error(call: Any) -> grpc.RpcError: ...
def rpc_error(call: Any) -> grpc.RpcError | Coroutine[Any, Any, grpc.RpcError]:
    """The ``grpc.RpcError`` the call raises; the test fails if it raises none."""
    if inspect.isawaitable(call):
        return _rpc_error_async(call)
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


async def _rpc_error_async(awaitable: Awaitable[object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        await awaitable
    return info.value


# A channel's own multicallables for bytes in and out (no serializers), typed: grpc's stubs cannot
# infer the message types of a multicallable made without serializers.
@overload
def unary_unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]: ...
@overload
def unary_unary(channel: grpc.Channel, method: str) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]: ...
def unary_unary(channel: Any, method: str) -> Any:
    return channel.unary_unary(method)


@overload
def unary_stream(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.UnaryStreamMultiCallable[bytes, bytes]: ...
@overload
def unary_stream(channel: grpc.Channel, method: str) -> grpc.UnaryStreamMultiCallable[bytes, bytes]: ...
def unary_stream(channel: Any, method: str) -> Any:
    return channel.unary_stream(method)


@overload
def stream_stream(
    channel: grpc.aio.Channel, method: str
) -> grpc.aio.StreamStreamMultiCallable[bytes, bytes]: ...
@overload
def stream_stream(channel: grpc.Channel, method: str) -> grpc.StreamStreamMultiCallable[bytes, bytes]: ...
def stream_stream(channel: Any, method: str) -> Any:
    return channel.stream_stream(method)


def future_error(future: grpc.Future[Any], timeout: float) -> grpc.RpcError:
    """The ``grpc.RpcError`` a call's future ended with; the test fails if it ended otherwise."""
    error = future.exception(timeout=timeout)
    assert isinstance(error, grpc.RpcError), error
    return error
