"""Calls that fail, or that grpc refuses or rejects: recorded with their status, finished rather
than left running, and raising exactly what grpc raises without the plugin."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog, GrpcTestServer
from pytest_grpc_deadlines.calls import _recording as recording
from pytest_grpc_deadlines.probe import PROBE_SERVICE_NAME, ProbeAioStub, ProbeRequest, ProbeStub
from tests.rpc import unary_unary

UNARY = f"{PROBE_SERVICE_NAME}/Unary"

#: Not a ProbeRequest: the probe's serializer cannot encode it, so grpc refuses the call.
NOT_A_MESSAGE: Any = b"not a message"


# --- failed calls ---------------------------------------------------------------------------------


def test_failed_call_records_its_code_and_details(
    grpc_test_server: GrpcTestServer, channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    grpc_test_server.fail(UNARY, grpc.StatusCode.NOT_FOUND, "no such thing")
    with pytest.raises(grpc.RpcError):
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    [call] = grpc_calls
    assert (call.code, call.details) == (grpc.StatusCode.NOT_FOUND, "no such thing")
    assert call.elapsed is not None


def test_call_to_an_address_nothing_serves_is_recorded_unavailable(grpc_calls: CallLog) -> None:
    # A unix socket path in a directory that does not exist: nothing can listen there.
    target = "unix:/nonexistent-grpc-deadlines-dir/socket"
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    [call] = grpc_calls
    assert (call.target, call.code) == (target, grpc.StatusCode.UNAVAILABLE)


@pytest.mark.asyncio
async def test_aio_failed_call_records_its_code_and_passes_the_error_through(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog
) -> None:
    grpc_aio_test_server.fail(UNARY, grpc.StatusCode.PERMISSION_DENIED, "no")
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ProbeAioStub(channel).Unary(ProbeRequest(), timeout=5)
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.PERMISSION_DENIED, "no")
    [call] = grpc_calls
    assert (call.code, call.details) == (grpc.StatusCode.PERMISSION_DENIED, "no")


# --- calls grpc refuses are finished, not left running --------------------------------------------


@pytest.mark.parametrize("shape", ["stream", "future"])
def test_a_call_grpc_refuses_to_start_is_recorded_with_its_status(
    channel: grpc.Channel, grpc_calls: CallLog, shape: str
) -> None:
    stub = ProbeStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        if shape == "stream":
            stub.ServerStream(NOT_A_MESSAGE, timeout=5)
        else:
            stub.Unary.future(NOT_A_MESSAGE, timeout=5)
    assert info.value.code() is grpc.StatusCode.INTERNAL
    [call] = grpc_calls
    assert call.done
    assert (call.code, call.details) == (grpc.StatusCode.INTERNAL, info.value.details())


def test_a_call_grpc_rejects_with_an_exception_is_recorded_and_the_exception_passes_through(
    channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    with pytest.raises(TypeError) as info:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=5, metadata=[("x-count", 5)])  # type: ignore[arg-type]
    [call] = grpc_calls
    assert call.done
    assert (call.code, call.details) == (None, f"TypeError: {info.value}")


@pytest.mark.parametrize("shape", ["unary", "stream", "future"])
def test_a_call_on_a_closed_channel_is_recorded_as_ended_without_a_status(
    grpc_test_server: GrpcTestServer, grpc_calls: CallLog, shape: str
) -> None:
    channel = grpc.insecure_channel(grpc_test_server.target)
    stub = ProbeStub(channel)
    channel.close()
    calls: dict[str, Callable[..., object]] = {
        "unary": stub.Unary,
        "stream": stub.ServerStream,
        "future": stub.Unary.future,
    }
    call = calls[shape]
    with pytest.raises(ValueError, match=r"[Cc]losed") as info:
        call(ProbeRequest(), timeout=5)
    [record] = grpc_calls
    assert (record.done, record.code, record.details) == (True, None, f"ValueError: {info.value}")
    assert ", no status, at " in repr(record)


@pytest.mark.asyncio
async def test_an_aio_call_grpc_rejects_at_once_is_recorded_and_the_exception_passes_through(
    grpc_calls: CallLog,
) -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:  # never dialled
        with pytest.raises(TypeError) as info:
            unary_unary(channel, "/tests.Nowhere/Call")(b"", timeout=5, metadata=5)  # type: ignore[arg-type]
    [call] = grpc_calls
    assert (call.method, call.done, call.code) == ("tests.Nowhere/Call", True, None)
    assert call.details == f"TypeError: {info.value}"


# --- arguments and errors as grpc gives them ------------------------------------------------------


def test_keyword_request_iterator_is_accepted(channel: grpc.Channel, grpc_calls: CallLog) -> None:
    reply = ProbeStub(channel).ClientStream(request_iterator=iter([ProbeRequest()] * 2), timeout=5)
    assert reply.index == 2
    [call] = grpc_calls
    assert (call.timeout, call.code) == (5.0, grpc.StatusCode.OK)


def _error(call: Any) -> tuple[type[BaseException], str]:
    try:
        call()
    except BaseException as error:  # what grpc raises, whatever it is
        return type(error), str(error)
    raise AssertionError("no error")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), timeout="abc"), id="timeout-str"),
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), 5, None, None, None, None, "extra"), id="extra"),
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), metadata=5, timeout=5), id="metadata-int"),
        pytest.param(lambda stub: stub.Unary(ProbeRequest(), timeout=5, nonsense=1), id="unknown-kw"),
        pytest.param(lambda stub: stub.Unary.future(ProbeRequest(), timeout="abc").result(), id="future"),
        pytest.param(lambda stub: next(stub.ServerStream(b"not a message", timeout=5)), id="stream"),
    ],
)
def test_errors_are_grpcs_own(
    channel: grpc.Channel, raw: grpc.Channel, grpc_calls: CallLog, bad: Any
) -> None:
    assert _error(lambda: bad(ProbeStub(channel))) == _error(lambda: bad(ProbeStub(raw)))
    for call in grpc_calls:
        call.settle()
    assert all(call.done for call in grpc_calls)  # none left running


def test_a_stream_grpc_refuses_raises_at_the_call_as_without_the_plugin(
    channel: grpc.Channel, raw: grpc.Channel
) -> None:
    """No interceptor machinery in between: grpc raises where it raises, not at iteration."""
    for each in (channel, raw):
        with pytest.raises(grpc.RpcError):
            ProbeStub(each).ServerStream(b"not a message", timeout=5)


@pytest.mark.asyncio
async def test_an_aio_error_surfaces_where_grpc_raises_it(grpc_aio_test_server: AioGrpcTestServer) -> None:
    async with grpc.aio.insecure_channel(grpc_aio_test_server.target) as channel:
        with pytest.raises(TypeError):  # at the call, not at the await
            unary_unary(channel, "/a/b")(b"", timeout=5, metadata=5)  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"timeout": "abc"}, id="timeout-str"),
        pytest.param({"timeout": 5, "metadata": 5}, id="metadata-int"),
        pytest.param({"timeout": 5, "metadata": [("x-only-a-key",)]}, id="metadata-bad-pair"),
        pytest.param({"timeout": 5, "metadata": (("x-count", 5),)}, id="metadata-int-value"),
        pytest.param({"timeout": 5, "nonsense": 1}, id="unknown-kw"),
    ],
)
async def test_aio_errors_are_grpcs_own(
    grpc_aio_test_server: AioGrpcTestServer, grpc_calls: CallLog, kwargs: dict[str, Any]
) -> None:
    """An aio channel without interceptors is recorded in one step, at the multicallable: what
    grpc refuses raises what it raises without the plugin, where it raises it, and the record
    ends when grpc is done with the call. (A call whose request fails in grpc's own task, after
    the call object exists, gets no status until it is dropped: grpc then cancels it.)"""

    async def error(channel: grpc.aio.Channel) -> tuple[type[BaseException], str]:
        try:
            await unary_unary(channel, f"/{UNARY}")(b"", **kwargs)
        except BaseException as error:  # what grpc raises, whatever it is
            return type(error), str(error).split("\n")[0]
        raise AssertionError("no error")

    recording._unrecorded.on = True
    try:
        raw = grpc.aio.insecure_channel(grpc_aio_test_server.target)
    finally:
        recording._unrecorded.on = False
    async with raw, grpc.aio.insecure_channel(grpc_aio_test_server.target) as recorded:
        assert await error(recorded) == await error(raw)
    gc.collect()  # the failed call objects, which hold themselves through grpc's done callbacks
    [call] = grpc_calls
    assert call.done
