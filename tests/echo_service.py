"""A user-style service without generated code, for tests that host "the user's servicers".

Messages are raw bytes (no serializer), registered the way generated ``add_XServicer_to_server``
functions do it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from tests.rpc import unary_unary

SERVICE = "tests.Echo"
SAY = f"{SERVICE}/Say"
CHORUS = f"{SERVICE}/Chorus"


class EchoServicer:
    def __init__(self) -> None:
        self.said: list[bytes] = []

    def Say(self, request: bytes, context: Any) -> bytes:
        self.said.append(request)
        return b"echo:" + request

    def Chorus(self, request: bytes, context: Any) -> Iterator[bytes]:
        for index in range(3):
            yield request + str(index).encode()


def add_EchoServicer_to_server(servicer: EchoServicer, server: Any) -> None:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "Say": grpc.unary_unary_rpc_method_handler(servicer.Say),
        "Chorus": grpc.unary_stream_rpc_method_handler(servicer.Chorus),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


def say(channel: grpc.Channel, message: bytes, timeout: float | None = 5) -> bytes:
    response: bytes = unary_unary(channel, f"/{SAY}")(message, timeout=timeout)
    return response
