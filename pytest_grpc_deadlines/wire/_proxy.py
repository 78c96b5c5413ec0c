"""An in-process TCP proxy on loopback that puts faults on the wire between a client and a server.

Usable without pytest::

    with WireProxy("127.0.0.1:50051") as proxy:
        proxy.latency(0.2, direction="down")
        channel = grpc.insecure_channel(proxy.target)

Each accepted connection gets two pump threads, one per direction: ``"up"`` (client to server)
and ``"down"`` (server to client). A pump reads what arrives, applies the faults in force for its
direction at that moment, and forwards. Faults can be set, changed and cleared at any time; each
change is noted with the time, so a client call can say which faults were in force while it ran.
"""

from __future__ import annotations

import contextlib
import math
import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from .._checks import check_seconds, is_loopback
from .._errors import ArgumentError, ServerStateError

__all__ = ["Connection", "Direction", "WireGate", "WireProxy", "faults_during", "upstream_of"]

#: "up": client to server; "down": server to client; "both".
Direction = Literal["up", "down", "both"]
_DIRECTIONS: tuple[str, ...] = ("up", "down")
#: How much a pump reads at once.
_CHUNK = 65536
#: A pump blocked in a wait or a recv looks at the proxy's state at least this often.
_POLL = 0.05
#: Under a bandwidth limit, bytes go out in steps of this many seconds' worth.
_PACE = 0.01


def _directions(direction: object) -> tuple[str, ...]:
    if direction == "both":
        return _DIRECTIONS
    if direction in _DIRECTIONS:
        return (str(direction),)
    raise ArgumentError(f"direction={direction!r} is not accepted; use 'up', 'down' or 'both'")


def _check_positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArgumentError(f"{what}={value!r} must be a positive int")
    return value


def _split_target(target: object) -> tuple[str, int]:
    """``host:port`` of a loopback TCP target; anything else is refused."""
    if not isinstance(target, str):
        raise ArgumentError(f"target={target!r} must be a str such as '127.0.0.1:50051'")
    text = target.removeprefix("ipv4:").removeprefix("ipv6:").removeprefix("dns:")
    if text.startswith("unix:"):
        raise ArgumentError(
            f"target={target!r} is a unix socket: the wire proxy works over TCP only; start the "
            "server with transport='tcp'"
        )
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ArgumentError(f"target={target!r} is not host:port (e.g. '127.0.0.1:50051')")
    if not is_loopback(host):
        raise ArgumentError(
            f"target={target!r} is refused: the wire proxy forwards to loopback only (127.x, ::1, localhost)"
        )
    return ("127.0.0.1" if host == "localhost" else host), int(port)


class WireGate:
    """Holds the next chunks one direction carries until :meth:`release`; made by
    ``proxy.hold(direction)``. ``held`` counts the chunks that waited at it."""

    def __init__(self, proxy: WireProxy, direction: str) -> None:
        self._proxy = proxy
        self.direction = direction
        self.released = False
        self.held = 0
        self._entered = threading.Event()

    def wait_held(self, timeout: float | None = None) -> bool:
        """Block until a chunk waits at the gate; False on timeout."""
        return self._entered.wait(timeout)

    def release(self) -> None:
        """Let held and later chunks through."""
        with self._proxy._cond:
            self.released = True
            self._proxy._cond.notify_all()

    def __repr__(self) -> str:
        return f"WireGate({self.direction}, held={self.held}, released={self.released})"


@dataclass(eq=False)
class Connection:
    """One client connection through the proxy: bytes forwarded each way and the faults it met."""

    id: int
    opened: float = field(default_factory=time.monotonic)
    closed: float | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    #: the faults that acted on this connection's bytes, in the order first met
    faults: list[str] = field(default_factory=list)
    #: how it ended: "closed" (either side closed), "reset" (a reset fault or drop()),
    #: "refused" (refuse() was in force when it arrived)
    ended: str | None = None

    def _met(self, fault: str) -> None:
        if fault not in self.faults:
            self.faults.append(fault)


@dataclass
class _Faults:
    """The faults in force for one direction."""

    latency: float = 0.0
    jitter: float = 0.0
    rng: random.Random | None = None
    bandwidth: float | None = None
    slice_size: int | None = None
    slice_pause: float = 0.0
    reset_after: int | None = None
    blackhole: bool = False
    gate: WireGate | None = None

    def describe(self, direction: str) -> list[str]:
        out = []
        if self.latency or self.jitter:
            jitter = f" (jitter {self.jitter:g} s)" if self.jitter else ""
            out.append(f"latency {direction} {self.latency:g} s{jitter}")
        if self.bandwidth is not None:
            out.append(f"bandwidth {direction} {self.bandwidth:g} B/s")
        if self.slice_size is not None:
            out.append(f"slice {direction} {self.slice_size} B every {self.slice_pause:g} s")
        if self.reset_after is not None:
            out.append(f"reset {direction} after {self.reset_after} B")
        if self.blackhole:
            out.append(f"blackhole {direction}")
        if self.gate is not None and not self.gate.released:
            out.append(f"hold {direction}")
        return out


#: the proxies made in this process, by the target they listen (or listened) on, for
#: faults_during; a proxy on the same port replaces a closed one
_running: dict[str, WireProxy] = {}
_running_lock = threading.Lock()


def upstream_of(target: str) -> str | None:
    """The target a proxy listening on ``target`` forwards to (None: no proxy there)."""
    with _running_lock:
        proxy = _running.get(target)
    return None if proxy is None or proxy._listener is None else proxy.upstream


def faults_during(target: str, start: float, end: float | None) -> tuple[str, ...]:
    """The faults a proxy on ``target`` had in force at any moment from ``start`` to ``end``
    (monotonic seconds; None: until now), or () when no proxy was there."""
    with _running_lock:
        proxy = _running.get(target)
    return () if proxy is None else proxy.faults_between(start, end)


class WireProxy:
    """A TCP proxy on ``127.0.0.1`` port 0 in front of the loopback ``target`` (``host:port``).

    ``seed`` seeds the latency jitter. Every fault method takes effect at once, for the bytes
    that arrive from then on; :meth:`clear` removes them all.
    """

    def __init__(self, target: str, *, seed: int | None = None) -> None:
        self._upstream = _split_target(target)
        self._upstream_text = target
        self._seed = seed
        self._cond = threading.Condition()
        self._faults = {d: _Faults() for d in _DIRECTIONS}
        self._refusing = False
        self._closing = False
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: dict[int, tuple[socket.socket, socket.socket]] = {}
        self._ids = 0
        self._port: int | None = None
        self.connections: list[Connection] = []
        #: (monotonic time, faults in force from then on)
        self._timeline: list[tuple[float, tuple[str, ...]]] = [(time.monotonic(), ())]

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> WireProxy:
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(_POLL)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._closing = False
        self._accepter = threading.Thread(target=self._accept, name="grpc-deadlines-wire", daemon=True)
        self._accepter.start()
        with _running_lock:
            _running[self.target] = self
        return self

    @property
    def target(self) -> str:
        """The address clients dial: ``127.0.0.1:PORT``."""
        if self._port is None:
            raise ServerStateError("the wire proxy has not been started")
        return f"127.0.0.1:{self._port}"

    @property
    def upstream(self) -> str:
        """The target the proxy forwards to."""
        return self._upstream_text

    def close(self) -> None:
        """Stop accepting, reset every open connection, release every gate and join every
        thread."""
        with self._cond:
            self._closing = True
            for faults in self._faults.values():
                if faults.gate is not None:
                    faults.gate.released = True
            self._cond.notify_all()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accepter is not None:
            self._accepter.join(timeout=5)
            self._accepter = None
        self.drop()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._threads = []
        # stays in the registry (until a proxy on the same port replaces it): a test's calls are
        # judged after its fixtures, this proxy included, are closed

    def __enter__(self) -> WireProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # faults ------------------------------------------------------------------------------------
    def _change(self, direction: object, **changes: object) -> None:
        directions = _directions(direction)
        with self._cond:
            for d in directions:
                faults = self._faults[d]
                for name, value in changes.items():
                    setattr(faults, name, value)
            self._note()
            self._cond.notify_all()

    def _note(self) -> None:
        """Record the faults in force from now (called with the lock held)."""
        active = tuple(
            [*(x for d in _DIRECTIONS for x in self._faults[d].describe(d))]
            + (["refuse new connections"] if self._refusing else [])
        )
        self._timeline.append((time.monotonic(), active))

    def latency(self, seconds: float, *, jitter: float = 0.0, direction: Direction = "both") -> None:
        """Delay each chunk ``seconds`` (plus or minus up to ``jitter``, drawn from a generator
        seeded with the proxy's ``seed``), keeping the order of the bytes."""
        delay = check_seconds(seconds, "latency seconds")
        spread = check_seconds(jitter, "jitter")
        rng = random.Random(self._seed) if spread else None
        self._change(direction, latency=delay, jitter=spread, rng=rng)

    def bandwidth(self, bytes_per_second: float, *, direction: Direction = "both") -> None:
        """Forward at most ``bytes_per_second``."""
        rate = check_seconds(bytes_per_second, "bytes_per_second")
        if rate <= 0:
            raise ArgumentError(f"bytes_per_second={bytes_per_second!r} must be above 0")
        self._change(direction, bandwidth=rate)

    def slice(self, size: int, pause: float, *, direction: Direction = "both") -> None:
        """Forward chunks in pieces of at most ``size`` bytes, ``pause`` seconds apart."""
        self._change(
            direction,
            slice_size=_check_positive_int(size, "slice size"),
            slice_pause=check_seconds(pause, "slice pause"),
        )

    def reset_after(self, count: int, *, direction: Direction = "both") -> None:
        """Reset a connection (both sides get a TCP reset) once it has carried ``count`` more
        bytes in ``direction``."""
        self._change(direction, reset_after=_check_positive_int(count, "reset_after bytes"))

    def blackhole(self, *, direction: Direction = "both") -> None:
        """Read what arrives and never forward it (a peer that stops answering without
        closing)."""
        self._change(direction, blackhole=True)

    def hold(self, *, direction: Direction = "down") -> WireGate:
        """Hold the chunks ``direction`` carries from now on until the gate is released."""
        directions = _directions(direction)
        gate = WireGate(self, "both" if len(directions) == 2 else directions[0])
        self._change(direction, gate=gate)
        return gate

    def refuse(self, refusing: bool = True) -> None:
        """Reset new connections as they arrive (False: accept them again)."""
        if not isinstance(refusing, bool):
            raise ArgumentError(f"refusing={refusing!r} must be True or False")
        with self._cond:
            self._refusing = refusing
            self._note()

    def drop(self) -> None:
        """Reset every open connection now."""
        with self._cond:
            pairs = list(self._sockets.items())
            self._sockets.clear()
        for conn_id, (client, upstream) in pairs:
            self._mark(conn_id, "reset", "drop" if not self._closing else None)
            self._reset(client, upstream)
            self._ended(conn_id, "reset", None)

    def clear(self) -> None:
        """Remove every fault (held chunks go on)."""
        with self._cond:
            for d in _DIRECTIONS:
                gate = self._faults[d].gate
                if gate is not None:
                    gate.released = True
                self._faults[d] = _Faults()
            self._refusing = False
            self._note()
            self._cond.notify_all()

    def faults_between(self, start: float, end: float | None) -> tuple[str, ...]:
        """The faults in force at any moment from ``start`` to ``end`` (None: now)."""
        stop = time.monotonic() if end is None else end
        with self._cond:
            timeline = list(self._timeline)
        seen: list[str] = []
        for index, (since, active) in enumerate(timeline):
            until = timeline[index + 1][0] if index + 1 < len(timeline) else math.inf
            if since <= stop and until >= start:
                seen.extend(x for x in active if x not in seen)
        return tuple(seen)

    # forwarding --------------------------------------------------------------------------------
    def _stopping(self) -> bool:
        return self._closing

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None and not self._closing:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            with self._cond:
                self._ids += 1
                record = Connection(self._ids)
                self.connections.append(record)
                refusing = self._refusing
            if refusing:
                self._mark(record.id, "refused", "refuse new connections")
                self._reset(client)
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                self._reset(client)
                self._ended(record.id, "refused", None)
                continue
            for sock in (client, upstream):
                sock.settimeout(None)  # blocking sends; reads wait in select, so a close is seen
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                if self._stopping():  # closed while this connection was being made
                    self._reset(client, upstream)
                    return
                self._sockets[record.id] = (client, upstream)
            for direction, src, dst in (("up", client, upstream), ("down", upstream, client)):
                thread = threading.Thread(
                    target=self._pump,
                    args=(record, direction, src, dst),
                    name=f"grpc-deadlines-wire-{record.id}-{direction}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()

    def _wait_until(self, due: float, record: Connection) -> bool:
        """Wait until ``due`` (monotonic); False when the connection or the proxy closed."""
        with self._cond:
            while not self._closing and record.id in self._sockets:
                left = due - time.monotonic()
                if left <= 0:
                    return True
                self._cond.wait(min(left, _POLL))
        return False

    def _wait_gate(self, gate: WireGate, record: Connection) -> bool:
        with self._cond:
            gate.held += 1
            gate._entered.set()
            while not gate.released and not self._closing and record.id in self._sockets:
                self._cond.wait(_POLL)
        return not self._closing and record.id in self._sockets

    def _pump(self, record: Connection, direction: str, src: socket.socket, dst: socket.socket) -> None:
        due = 0.0  # the previous chunk's delivery time: latency keeps the order
        next_free = 0.0  # when the bandwidth allows the next byte
        carried = 0  # bytes forwarded since the reset fault was set
        reset_armed: int | None = None
        while True:
            try:
                readable, _, _ = select.select([src], [], [], _POLL)
                if not readable:
                    if self._closing or record.id not in self._sockets:
                        return
                    continue
                data = src.recv(_CHUNK)
            except (OSError, ValueError):  # reset, or closed under us
                self._ended(record.id, "closed", None)
                return
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                self._ended(record.id, "closed", None)
                return
            arrived = time.monotonic()
            with self._cond:
                faults = self._faults[direction]
                snapshot = (
                    faults.latency,
                    faults.jitter,
                    faults.rng,
                    faults.bandwidth,
                    faults.slice_size,
                    faults.slice_pause,
                    faults.reset_after,
                    faults.blackhole,
                    faults.gate,
                )
            latency, jitter, rng, bandwidth, slice_size, slice_pause, reset_after, blackhole, gate = snapshot
            if reset_after != reset_armed:  # a new reset fault counts from now
                reset_armed, carried = reset_after, 0
            if blackhole:
                record._met(f"blackhole {direction}")
                self._count(record, direction, 0)
                continue
            if gate is not None and not gate.released:
                record._met(f"hold {direction}")
                if not self._wait_gate(gate, record):
                    return
            pieces = [data]
            if slice_size is not None:
                record._met(f"slice {direction}")
                pieces = [data[i : i + slice_size] for i in range(0, len(data), slice_size)]
            for index, piece in enumerate(pieces):
                if latency or jitter:
                    record._met(f"latency {direction}")
                    spread = rng.uniform(-jitter, jitter) if rng is not None else 0.0
                    due = max(due, arrived + max(0.0, latency + spread))
                    if not self._wait_until(due, record):
                        return
                if bandwidth is not None:
                    record._met(f"bandwidth {direction}")
                    step = max(1, int(bandwidth * _PACE))
                    parts = [piece[i : i + step] for i in range(0, len(piece), step)]
                    for part in parts[:-1]:
                        next_free = max(time.monotonic(), next_free)
                        if not self._wait_until(next_free, record):
                            return
                        if not self._send(record, direction, dst, part):
                            return
                        carried += len(part)
                        next_free += len(part) / bandwidth
                    piece = parts[-1]
                    next_free = max(time.monotonic(), next_free)
                    if not self._wait_until(next_free, record):
                        return
                    next_free += len(piece) / bandwidth
                if index and slice_pause and not self._wait_until(time.monotonic() + slice_pause, record):
                    return
                if reset_armed is not None and carried + len(piece) >= reset_armed:
                    record._met(f"reset {direction}")
                    cut = reset_armed - carried
                    with contextlib.suppress(OSError):
                        dst.sendall(piece[:cut])
                    self._count(record, direction, cut)
                    self._close_connection(record, "reset")
                    return
                if not self._send(record, direction, dst, piece):
                    return
                carried += len(piece)

    def _send(self, record: Connection, direction: str, dst: socket.socket, data: bytes) -> bool:
        try:
            dst.sendall(data)
        except OSError:
            self._ended(record.id, "closed", None)
            return False
        self._count(record, direction, len(data))
        return True

    def _count(self, record: Connection, direction: str, count: int) -> None:
        with self._cond:
            if direction == "up":
                record.bytes_up += count
            else:
                record.bytes_down += count

    def _close_connection(self, record: Connection, how: str) -> None:
        self._mark(record.id, how, None)  # before the other pump sees its socket go
        with self._cond:
            pair = self._sockets.pop(record.id, None)
        if pair is not None:
            self._reset(*pair)
        self._ended(record.id, how, None)

    def _mark(self, conn_id: int, how: str, fault: str | None) -> None:
        with self._cond:
            for record in self.connections:
                if record.id == conn_id:
                    if fault is not None:
                        record._met(fault)
                    if record.ended is None:
                        record.ended = how
                        record.closed = time.monotonic()

    def _ended(self, conn_id: int, how: str, fault: str | None) -> None:
        self._mark(conn_id, how, fault)
        with self._cond:
            pair = self._sockets.pop(conn_id, None)
            self._cond.notify_all()
        if pair is not None:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a send blocked in the other pump
                with contextlib.suppress(OSError):
                    sock.close()

    @staticmethod
    def _reset(*sockets: socket.socket) -> None:
        """Close with a TCP reset (linger 0), not an orderly FIN; a send blocked on the socket
        in another thread fails at once."""
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
            with contextlib.suppress(OSError):
                sock.close()

    def __repr__(self) -> str:
        where = self.target if self._port is not None else "not started"
        return f"WireProxy({where} -> {self._upstream_text}, connections={len(self.connections)})"
