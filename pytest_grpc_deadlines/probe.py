"""The built-in probe service, built from descriptors at run time (no generated ``_pb2`` file).

``pytest_grpc_deadlines.probe.v1.Probe`` has ``Unary``, ``ServerStream``, ``ClientStream`` and
``Bidi``. A ``ProbeRequest`` says how long to wait, how many responses to stream at what interval,
how large a response to send, and which status to end with; each ``ProbeResponse`` carries the
deadline the server saw. The same code runs on protobuf 3.20 to 7.x.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from ._context import PROBE_SERVICE_NAME, deadline_seconds, status_code
from ._errors import ArgumentError

with warnings.catch_warnings():
    # On Python 3.12 and 3.13 protobuf warns DeprecationWarning once, at its first import: before
    # 5.27 upb while it makes its types, 3.x's pure-Python code at datetime.utcfromtimestamp().
    # Under a project's filterwarnings = error that would fail (SystemError, for upb) whichever
    # test first needed the probe. protobuf's warnings, not the test's: when the project imports
    # protobuf first, it sees them as it would without the plugin.
    warnings.filterwarnings("ignore", r"Type google\._upb\._message\.", DeprecationWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"google\.protobuf\.")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from google.protobuf.descriptor import ServiceDescriptor
    from google.protobuf.message import Message

__all__ = [
    "PROBE_SERVICE",
    "PROBE_SERVICE_NAME",
    "ProbeAioStub",
    "ProbeRequest",
    "ProbeResponse",
    "ProbeServicer",
    "ProbeStub",
    "add_ProbeServicer_to_server",
    "deadline_seconds",
]

_PACKAGE = "pytest_grpc_deadlines.probe.v1"


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(
        name="pytest_grpc_deadlines/probe/v1/probe.proto", package=_PACKAGE, syntax="proto3"
    )
    T = descriptor_pb2.FieldDescriptorProto
    request = f.message_type.add(name="ProbeRequest")
    for number, (name, kind) in enumerate(
        [
            ("delay_seconds", T.TYPE_DOUBLE),
            ("responses", T.TYPE_INT32),
            ("interval_seconds", T.TYPE_DOUBLE),
            ("response_bytes", T.TYPE_INT32),
            ("status_code", T.TYPE_INT32),
            ("status_details", T.TYPE_STRING),
            ("payload", T.TYPE_BYTES),
        ],
        start=1,
    ):
        request.field.add(name=name, number=number, type=kind, label=T.LABEL_OPTIONAL)
    response = f.message_type.add(name="ProbeResponse")
    for number, (name, kind) in enumerate(
        [("index", T.TYPE_INT32), ("payload", T.TYPE_BYTES), ("deadline_seconds", T.TYPE_DOUBLE)],
        start=1,
    ):
        response.field.add(name=name, number=number, type=kind, label=T.LABEL_OPTIONAL)
    service = f.service.add(name="Probe")
    for method, client_streaming, server_streaming in [
        ("Unary", False, False),
        ("ServerStream", False, True),
        ("ClientStream", True, False),
        ("Bidi", True, True),
    ]:
        service.method.add(
            name=method,
            input_type=f".{_PACKAGE}.ProbeRequest",
            output_type=f".{_PACKAGE}.ProbeResponse",
            client_streaming=client_streaming,
            server_streaming=server_streaming,
        )
    return f


def _message_class(pool: descriptor_pool.DescriptorPool, name: str) -> type[Message]:
    descriptor = pool.FindMessageTypeByName(f"{_PACKAGE}.{name}")
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:  # protobuf >= 4.22
        cls: type[Message] = get_class(descriptor)
    else:  # protobuf 3.20 to 4.21 (the stubs know only the newest protobuf)
        cls = getattr(message_factory.MessageFactory(pool), "GetPrototype")(descriptor)  # noqa: B009
    return cls


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())
ProbeRequest: Any = _message_class(_POOL, "ProbeRequest")
ProbeResponse: Any = _message_class(_POOL, "ProbeResponse")
#: The service descriptor, usable with grpcio-testing.
PROBE_SERVICE: ServiceDescriptor = _POOL.FindServiceByName(PROBE_SERVICE_NAME)

if TYPE_CHECKING:
    _AioContext = grpc.aio.ServicerContext[Any, Any]

_METHODS = {
    "Unary": (False, False),
    "ServerStream": (False, True),
    "ClientStream": (True, False),
    "Bidi": (True, True),
}


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


if TYPE_CHECKING:  # grpc's classes are generic in its stubs only
    _Unary = grpc.UnaryUnaryMultiCallable[Any, Any]
    _ServerStream = grpc.UnaryStreamMultiCallable[Any, Any]
    _ClientStream = grpc.StreamUnaryMultiCallable[Any, Any]
    _Bidi = grpc.StreamStreamMultiCallable[Any, Any]
_CODEC: dict[str, Any] = {
    "request_serializer": _serialize,
    "response_deserializer": ProbeResponse.FromString,
}


class ProbeStub:
    """Client of the probe service on a ``grpc.Channel``."""

    def __init__(self, channel: grpc.Channel) -> None:
        prefix = f"/{PROBE_SERVICE_NAME}/"
        self.Unary: _Unary = channel.unary_unary(prefix + "Unary", **_CODEC)
        self.ServerStream: _ServerStream = channel.unary_stream(prefix + "ServerStream", **_CODEC)
        self.ClientStream: _ClientStream = channel.stream_unary(prefix + "ClientStream", **_CODEC)
        self.Bidi: _Bidi = channel.stream_stream(prefix + "Bidi", **_CODEC)


class ProbeAioStub:
    """Client of the probe service on a ``grpc.aio.Channel``."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        prefix = f"/{PROBE_SERVICE_NAME}/"
        self.Unary: grpc.aio.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            prefix + "Unary", **_CODEC
        )
        self.ServerStream: grpc.aio.UnaryStreamMultiCallable[Any, Any] = channel.unary_stream(
            prefix + "ServerStream", **_CODEC
        )
        self.ClientStream: grpc.aio.StreamUnaryMultiCallable[Any, Any] = channel.stream_unary(
            prefix + "ClientStream", **_CODEC
        )
        self.Bidi: grpc.aio.StreamStreamMultiCallable[Any, Any] = channel.stream_stream(
            prefix + "Bidi", **_CODEC
        )


def _response(request: Any, index: int, context: grpc.ServicerContext | _AioContext) -> Any:
    deadline = deadline_seconds(context)
    return ProbeResponse(
        index=index,
        payload=b"x" * max(0, request.response_bytes),
        deadline_seconds=0.0 if deadline is None else deadline,
    )


class ProbeServicer:
    """Honours every request field; checks cancellation after each wait and before each
    streamed response, and never sleeps past one. Works on sync and ``grpc.aio`` servers alike
    (``add_ProbeServicer_to_server`` picks the matching handlers)."""

    # sync handlers -----------------------------------------------------------------------
    def _wait(self, seconds: float, context: grpc.ServicerContext) -> bool:
        """Sleep up to ``seconds``; False when the call ended first. With nothing to wait for,
        the work goes ahead: a held call that is released does it, whether or not its client
        is still there."""
        if seconds <= 0:
            return True
        ended = threading.Event()
        if not context.add_callback(ended.set):
            return False
        ended.wait(seconds)
        return bool(context.is_active())

    def _finish(self, request: Any, context: grpc.ServicerContext) -> None:
        if request.status_code:
            context.abort(_status(request.status_code), request.status_details)

    def Unary(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not self._wait(request.delay_seconds, context):
            return ProbeResponse()
        self._finish(request, context)
        return _response(request, 0, context)

    def ServerStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        if not self._wait(request.delay_seconds, context):
            return
        for index in range(request.responses):
            if not self._wait(request.interval_seconds, context):
                return
            if not context.is_active():
                return
            yield _response(request, index, context)
        self._finish(request, context)

    def ClientStream(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        last, count = ProbeRequest(), 0
        for request in requests:
            last, count = request, count + 1
        if not self._wait(last.delay_seconds, context):
            return ProbeResponse()
        self._finish(last, context)
        return _response(last, count, context)

    def Bidi(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for index, request in enumerate(requests):
            if not self._wait(request.delay_seconds, context):
                return
            if not context.is_active():
                return
            yield _response(request, index, context)
            if request.status_code:
                self._finish(request, context)

    # asyncio handlers ----------------------------------------------------------------------
    async def _aio_finish(self, request: Any, context: _AioContext) -> None:
        if request.status_code:
            await context.abort(_status(request.status_code), request.status_details)

    async def aio_Unary(self, request: Any, context: _AioContext) -> Any:
        await asyncio.sleep(max(0.0, request.delay_seconds))
        await self._aio_finish(request, context)
        return _response(request, 0, context)

    async def aio_ServerStream(self, request: Any, context: _AioContext) -> AsyncIterator[Any]:
        await asyncio.sleep(max(0.0, request.delay_seconds))
        for index in range(request.responses):
            await asyncio.sleep(max(0.0, request.interval_seconds))
            yield _response(request, index, context)
        await self._aio_finish(request, context)

    async def aio_ClientStream(self, requests: AsyncIterator[Any], context: _AioContext) -> Any:
        last, count = ProbeRequest(), 0
        async for request in requests:
            last, count = request, count + 1
        await asyncio.sleep(max(0.0, last.delay_seconds))
        await self._aio_finish(last, context)
        return _response(last, count, context)

    async def aio_Bidi(self, requests: AsyncIterator[Any], context: _AioContext) -> AsyncIterator[Any]:
        index = 0
        async for request in requests:
            await asyncio.sleep(max(0.0, request.delay_seconds))
            yield _response(request, index, context)
            index += 1
            if request.status_code:
                await self._aio_finish(request, context)


def _status(number: int) -> grpc.StatusCode:
    code = status_code(number)
    if code is None:
        raise ArgumentError(f"status_code={number} is not a grpc status code (0 to 16)")
    return code


def _is_aio(server: object) -> bool:
    server = getattr(server, "_grpc_deadlines_target", server)  # the server behind a wrapper
    return isinstance(server, grpc.aio.Server)


def add_ProbeServicer_to_server(servicer: ProbeServicer, server: grpc.Server | grpc.aio.Server) -> None:
    """Register ``servicer`` on a sync or ``grpc.aio`` server."""
    aio = _is_aio(server)
    factories: dict[tuple[bool, bool], Callable[..., Any]] = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    handlers = {
        name: factories[shape](
            getattr(servicer, f"aio_{name}" if aio else name),
            request_deserializer=ProbeRequest.FromString,
            response_serializer=_serialize,
        )
        for name, shape in _METHODS.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(PROBE_SERVICE_NAME, handlers),))
