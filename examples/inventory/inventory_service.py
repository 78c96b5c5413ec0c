"""The example's service: ``example.inventory.v1.Inventory``, an in-memory stock of items.

Its messages are built from descriptors at import time, as if compiled from this proto, so no
generated ``_pb2`` file ties the example to one protobuf release (it runs on protobuf 3.20 to 7.x)::

    syntax = "proto3";
    package example.inventory.v1;

    message Item { string sku = 1; string name = 2; int32 quantity = 3; }
    message GetItemRequest { string sku = 1; bool wait_for_stock = 2; }
    message ListItemsRequest { string prefix = 1; }
    message ReserveItemRequest { string sku = 1; int32 quantity = 2; }

    service Inventory {
      rpc GetItem(GetItemRequest) returns (Item);
      rpc ListItems(ListItemsRequest) returns (stream Item);
      rpc ReserveItem(ReserveItemRequest) returns (Item);
    }
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import ServiceDescriptor

PACKAGE = "example.inventory.v1"
SERVICE_NAME = f"{PACKAGE}.Inventory"
GET_ITEM = f"{SERVICE_NAME}/GetItem"
LIST_ITEMS = f"{SERVICE_NAME}/ListItems"
RESERVE_ITEM = f"{SERVICE_NAME}/ReserveItem"

SAMPLE_STOCK = {"apple": 3, "apricot": 7, "banana": 5, "cherry": 0}


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="example/inventory/v1/inventory.proto", package=PACKAGE, syntax="proto3"
    )
    F = descriptor_pb2.FieldDescriptorProto
    messages = {
        "Item": [("sku", F.TYPE_STRING), ("name", F.TYPE_STRING), ("quantity", F.TYPE_INT32)],
        "GetItemRequest": [("sku", F.TYPE_STRING), ("wait_for_stock", F.TYPE_BOOL)],
        "ListItemsRequest": [("prefix", F.TYPE_STRING)],
        "ReserveItemRequest": [("sku", F.TYPE_STRING), ("quantity", F.TYPE_INT32)],
    }
    for message, fields in messages.items():
        added = proto.message_type.add(name=message)
        for number, (field, kind) in enumerate(fields, start=1):
            added.field.add(name=field, number=number, type=kind, label=F.LABEL_OPTIONAL)
    service = proto.service.add(name="Inventory")
    for method, request, server_streaming in [
        ("GetItem", "GetItemRequest", False),
        ("ListItems", "ListItemsRequest", True),
        ("ReserveItem", "ReserveItemRequest", False),
    ]:
        service.method.add(
            name=method,
            input_type=f".{PACKAGE}.{request}",
            output_type=f".{PACKAGE}.Item",
            server_streaming=server_streaming,
        )
    return proto


def _message_class(name: str) -> Any:
    descriptor = _POOL.FindMessageTypeByName(f"{PACKAGE}.{name}")
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:  # protobuf >= 4.22
        return get_class(descriptor)
    # protobuf 3.20 to 4.21 (the stubs know only the newest protobuf)
    return getattr(message_factory.MessageFactory(_POOL), "GetPrototype")(descriptor)  # noqa: B009


_POOL = descriptor_pool.DescriptorPool()  # private: nothing else can clash with these names
_POOL.Add(_file_descriptor())
Item: Any = _message_class("Item")
GetItemRequest: Any = _message_class("GetItemRequest")
ListItemsRequest: Any = _message_class("ListItemsRequest")
ReserveItemRequest: Any = _message_class("ReserveItemRequest")
#: For ``grpc_fake_server``, which takes the service descriptor.
INVENTORY_SERVICE: ServiceDescriptor = _POOL.FindServiceByName(SERVICE_NAME)

_REQUESTS = {"GetItem": GetItemRequest, "ListItems": ListItemsRequest, "ReserveItem": ReserveItemRequest}


def _serialize(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


class InventoryStub:
    """Client of the service, on a ``grpc.Channel`` or a ``grpc.aio.Channel``."""

    def __init__(self, channel: Any) -> None:
        kw = {"request_serializer": _serialize, "response_deserializer": Item.FromString}
        self.GetItem = channel.unary_unary(f"/{SERVICE_NAME}/GetItem", **kw)
        self.ListItems = channel.unary_stream(f"/{SERVICE_NAME}/ListItems", **kw)
        self.ReserveItem = channel.unary_unary(f"/{SERVICE_NAME}/ReserveItem", **kw)


class Stock:
    """The items and their quantities, shared by the sync and asyncio servicers."""

    def __init__(self, quantities: Mapping[str, int] = SAMPLE_STOCK) -> None:
        self._quantities = dict(quantities)
        self.changed = threading.Condition()

    def item(self, sku: str) -> Any:
        """The item, or None for an unknown sku."""
        with self.changed:
            quantity = self._quantities.get(sku)
        return None if quantity is None else Item(sku=sku, name=sku.title(), quantity=quantity)

    def skus(self, prefix: str) -> list[str]:
        with self.changed:
            return sorted(sku for sku in self._quantities if sku.startswith(prefix))

    def quantity(self, sku: str) -> int:
        with self.changed:
            return self._quantities[sku]

    def reserve(self, sku: str, quantity: int) -> Any:
        """Take ``quantity`` out of stock; None when there is not enough."""
        with self.changed:
            if self._quantities.get(sku, 0) < quantity:
                return None
            self._quantities[sku] -= quantity
        return self.item(sku)

    def restock(self, sku: str, quantity: int) -> None:
        with self.changed:
            self._quantities[sku] = self._quantities.get(sku, 0) + quantity
            self.changed.notify_all()


class InventoryServicer:
    """The sync servicer. It honours deadlines: ``GetItem(wait_for_stock=True)`` waits for a
    restock only while the call lives, and ``ListItems`` stops when the client has gone."""

    def __init__(self, stock: Stock | None = None) -> None:
        self.stock = stock or Stock()

    def GetItem(self, request: Any, context: Any) -> Any:
        item = self.stock.item(request.sku)
        if item is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.sku!r}")
        if request.wait_for_stock and item.quantity == 0:
            if not self._wait_for_stock(request.sku, context):
                return Item()  # the call ended first: nobody reads this
            item = self.stock.item(request.sku)
        return item

    def _wait_for_stock(self, sku: str, context: Any) -> bool:
        """Wait until ``sku`` is in stock (True) or the call ends (False). No timeout of its own:
        the client's deadline ends the wait, through the callback grpc runs when the call ends."""
        ended = threading.Event()

        def call_ended() -> None:
            with self.stock.changed:
                ended.set()
                self.stock.changed.notify_all()

        if not context.add_callback(call_ended):
            return False  # already over
        with self.stock.changed:
            self.stock.changed.wait_for(lambda: ended.is_set() or self.stock.quantity(sku) > 0)
        return not ended.is_set()

    def ListItems(self, request: Any, context: Any) -> Iterator[Any]:
        for sku in self.stock.skus(request.prefix):
            if not context.is_active():
                return  # the client gave up: stop working for nobody
            yield self.stock.item(sku)

    def ReserveItem(self, request: Any, context: Any) -> Any:
        item = self.stock.reserve(request.sku, request.quantity)
        if item is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"not enough {request.sku!r}")
        return item


class AioInventoryServicer:
    """The same service for a ``grpc.aio`` server (``GetItem`` does not wait for stock here)."""

    def __init__(self, stock: Stock | None = None) -> None:
        self.stock = stock or Stock()

    async def GetItem(self, request: Any, context: Any) -> Any:
        item = self.stock.item(request.sku)
        if item is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no item {request.sku!r}")
        return item

    async def ListItems(self, request: Any, context: Any) -> AsyncIterator[Any]:
        for sku in self.stock.skus(request.prefix):
            yield self.stock.item(sku)

    async def ReserveItem(self, request: Any, context: Any) -> Any:
        item = self.stock.reserve(request.sku, request.quantity)
        if item is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"not enough {request.sku!r}")
        return item


def add_InventoryServicer_to_server(servicer: object, server: Any) -> None:
    """Register ``servicer`` (anything with the service's methods: sync ones for a sync server,
    coroutines for a ``grpc.aio`` server) on ``server``, as generated code would."""
    handlers = {
        "GetItem": grpc.unary_unary_rpc_method_handler,
        "ListItems": grpc.unary_stream_rpc_method_handler,
        "ReserveItem": grpc.unary_unary_rpc_method_handler,
    }
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE_NAME,
                {
                    name: make(
                        getattr(servicer, name),
                        request_deserializer=_REQUESTS[name].FromString,
                        response_serializer=_serialize,
                    )
                    for name, make in handlers.items()
                },
            ),
        )
    )
