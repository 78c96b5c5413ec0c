"""Hops: calls a handler of the plugin's servers makes while serving a call are linked to it and
judged on passing the deadline on. Real forwarding servicers, real servers, real channels."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import AioGrpcTestServer, CallLog, GrpcTestServer
from pytest_grpc_deadlines.probe import (
    PROBE_SERVICE_NAME,
    ProbeAioStub,
    ProbeRequest,
    ProbeServicer,
    ProbeStub,
    add_ProbeServicer_to_server,
)
from pytest_grpc_deadlines.servers._pool import ServerFactory
from tests.echo_service import SAY, SERVICE, say
from tests.rpc import unary_unary

AioFactory = Callable[..., Awaitable[AioGrpcTestServer]]
WAIT = 10.0  # margin: bounds what happens in milliseconds
CLIENT_TIMEOUT = 5.0
UNARY = f"{PROBE_SERVICE_NAME}/Unary"


class Forwarding:
    """Serves Say by calling the probe's Unary at ``target``, passing the deadline on as
    ``how`` says: "remaining", "none", "over", "future", "thread", "copied thread"."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.target = ""

    def Say(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        channel = grpc.insecure_channel(self.target)
        stub = ProbeStub(channel)
        left = context.time_remaining()
        try:
            if self.how == "remaining":
                stub.Unary(ProbeRequest(), timeout=left)
            elif self.how == "none":
                stub.Unary(ProbeRequest())
            elif self.how == "over":
                stub.Unary(ProbeRequest(), timeout=left + 30)
            elif self.how == "future":
                stub.Unary.future(ProbeRequest(), timeout=left).result()
            elif self.how == "interceptor":  # the timeout an interceptor sets is the one sent
                intercepted = grpc.intercept_channel(channel, _Timeout(left))
                ProbeStub(intercepted).Unary(ProbeRequest())
            else:
                call = lambda: stub.Unary(ProbeRequest(), timeout=left)  # noqa: E731
                target = contextvars.copy_context().run if self.how == "copied thread" else None
                worker = threading.Thread(target=(lambda: target(call)) if target else call)
                worker.start()
                worker.join(WAIT)
        finally:
            channel.close()
        return b"forwarded"

    def Chorus(self, request: bytes, context: Any) -> Iterator[bytes]:
        yield b""


class _Timeout(grpc.UnaryUnaryClientInterceptor):
    """Sets every call's timeout, as a library's interceptor does."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(details._replace(timeout=self._seconds), request)


def _add(servicer: Forwarding, server: Any) -> None:
    handler: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(servicer.Say)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Say": handler}),))


def _forwarder(factory: ServerFactory, how: str, target: str | None = None) -> GrpcTestServer:
    """A server forwarding Say to ``target`` (None: to the probe it hosts itself)."""
    servicer = Forwarding(how)
    if target is None:
        server = factory((_add, servicer), (add_ProbeServicer_to_server, ProbeServicer()))
        servicer.target = server.target
    else:
        server = factory((_add, servicer))
        servicer.target = target
    return server


@pytest.mark.parametrize(
    ("how", "verdict"),
    [
        ("remaining", "propagated"),
        ("none", "no deadline"),
        ("over", "over budget"),
        ("future", "propagated"),
        ("interceptor", "propagated"),
        ("copied thread", "propagated"),
    ],
)
def test_each_hop_gets_its_verdict(
    grpc_test_server_factory: ServerFactory,
    grpc_test_server: GrpcTestServer,
    grpc_calls: CallLog,
    how: str,
    verdict: str,
) -> None:
    gateway = _forwarder(grpc_test_server_factory, how, grpc_test_server.target)
    assert say(gateway.channel(), b"hi", timeout=CLIENT_TIMEOUT) == b"forwarded"
    [hop] = grpc_calls.hops()
    [served] = gateway.calls
    assert (hop.verdict, hop.parent, hop.child.method) == (
        verdict,
        served,
        "pytest_grpc_deadlines.probe.v1.Probe/Unary",
    )
    assert hop.time_left is not None
    assert 0 < hop.time_left <= CLIENT_TIMEOUT * 1.01
    [outer, inner] = grpc_calls
    assert (outer.parent, inner.parent) == (None, served)


def test_a_hop_from_a_thread_the_handler_starts_is_not_linked(
    grpc_test_server_factory: ServerFactory, grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    """A plain thread does not inherit the handler's context; copy_context().run does."""
    gateway = _forwarder(grpc_test_server_factory, "thread", grpc_test_server.target)
    say(gateway.channel(), b"hi", timeout=CLIENT_TIMEOUT)
    assert grpc_calls.hops() == []
    assert [call.method for call in grpc_calls] == [SAY, UNARY]


def test_a_parent_without_a_deadline_has_nothing_to_pass_on(
    grpc_test_server_factory: ServerFactory, grpc_test_server: GrpcTestServer, grpc_calls: CallLog
) -> None:
    gateway = _forwarder(grpc_test_server_factory, "none", grpc_test_server.target)
    say(gateway.channel(), b"hi", timeout=None)
    [hop] = grpc_calls.hops()
    assert (hop.verdict, hop.time_left) == ("parent had none", None)


def test_a_hop_to_the_same_server_and_to_one_the_plugin_does_not_run(
    grpc_test_server_factory: ServerFactory, grpc_calls: CallLog
) -> None:
    same = _forwarder(grpc_test_server_factory, "none")
    say(same.channel(), b"hi", timeout=CLIENT_TIMEOUT)
    raw = grpc.server(futures.ThreadPoolExecutor(2))
    add_ProbeServicer_to_server(ProbeServicer(), raw)
    port = raw.add_insecure_port("127.0.0.1:0")
    raw.start()
    try:
        elsewhere = _forwarder(grpc_test_server_factory, "over", f"127.0.0.1:{port}")
        say(elsewhere.channel(), b"hi", timeout=CLIENT_TIMEOUT)
    finally:
        raw.stop(None).wait()
    assert [hop.verdict for hop in grpc_calls.hops()] == ["no deadline", "over budget"]


class AioForwarding:
    def __init__(self, how: str) -> None:
        self.how = how
        self.target = ""

    async def Say(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        left = context.time_remaining()
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = ProbeAioStub(channel)
            if self.how == "remaining":
                await stub.Unary(ProbeRequest(), timeout=left)
            elif self.how == "none":
                await stub.Unary(ProbeRequest())
            elif self.how == "over":
                await stub.Unary(ProbeRequest(), timeout=(left or 0) + 30)
            else:  # a task the handler starts inherits its context
                await asyncio.ensure_future(stub.Unary(ProbeRequest(), timeout=left))
        return b"forwarded"

    async def Chorus(self, request: bytes, context: Any) -> Any:
        yield b""


@pytest.mark.parametrize(
    ("how", "verdict"),
    [("remaining", "propagated"), ("none", "no deadline"), ("over", "over budget"), ("task", "propagated")],
)
@pytest.mark.asyncio
async def test_aio_each_hop_gets_its_verdict(
    grpc_aio_test_server_factory: AioFactory, grpc_calls: CallLog, how: str, verdict: str
) -> None:
    servicer = AioForwarding(how)
    server = await grpc_aio_test_server_factory(
        (_add, servicer), (add_ProbeServicer_to_server, ProbeServicer())
    )
    servicer.target = server.target
    response = await unary_unary(server.channel(), "/" + SAY)(b"hi", timeout=CLIENT_TIMEOUT)
    assert response == b"forwarded"
    [hop] = grpc_calls.hops()
    served = next(call for call in server.calls if call.method == SAY)
    assert (hop.verdict, hop.parent) == (verdict, served)
