"""Client and server records of the same call, paired and judged.

The invariant that must always hold: a client OK implies a server OK. The case the gRPC deadline
guide warns about, a server handler that ended OK while the client gave up, is a disagreement.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple, overload

import grpc

from .._errors import CheckError
from ..servers._records import ServerCall
from ._client import ClientCall
from ._hops import Hop, hops_of
from ._recorder import RECORDER, Recorder

__all__ = ["CallLog", "Pair", "Verdict", "verdict"]

#: "agreed-ok", "agreed-failure" (the handler failed too, or saw the client give up and
#: stopped), "disagreement" (a handler ended OK, the client did not: the server finished work the
#: client gave up on), "server-cancelled" (the server ended the call itself: ``context.cancel()``
#: or a stop), "violation" (the client saw OK, the handler did not end OK: must never happen),
#: "unpaired" (no server record: a server that is not the plugin's, or a call it never saw) and
#: "running" (either side has not ended yet).
Verdict = Literal[
    "agreed-ok", "agreed-failure", "disagreement", "server-cancelled", "violation", "unpaired", "running"
]


class Pair(NamedTuple):
    """A client record, the server record its verdict rests on (the last attempt, or an earlier
    one that ended OK while the client did not), and the verdict."""

    client: ClientCall
    server: ServerCall | None
    verdict: Verdict

    @property
    def attempts(self) -> tuple[ServerCall, ...]:
        """The server's record of every attempt of the call (grpc's retry policy makes more than
        one), in arrival order."""
        return self.client.attempts


def verdict(client: ClientCall, server: ServerCall | None, attempts: Sequence[ServerCall] = ()) -> Verdict:
    """Judge one client record against the server's record of the same call (``server``, its
    last attempt) and of any earlier attempts."""
    if server is None:
        return "unpaired"
    every = [*attempts] if server in attempts else [*attempts, server]
    if not client.done or any(a.outcome == "running" for a in every):
        return "running"
    if client.code is grpc.StatusCode.OK:
        return "agreed-ok" if server.outcome == "ok" else "violation"
    if any(a.outcome == "ok" for a in every):
        return "disagreement"
    if server.cancelled_by == "server":
        return "server-cancelled"
    return "agreed-failure"


def _judged(client: ClientCall, attempts: tuple[ServerCall, ...]) -> Pair:
    if not attempts:
        return Pair(client, None, "unpaired")
    judged = verdict(client, attempts[-1], attempts)
    server = attempts[-1]
    if judged == "disagreement":  # the attempt that did the work the client gave up on
        server = next(a for a in attempts if a.outcome == "ok")
    return Pair(client, server, judged)


class CallLog(Sequence[ClientCall]):
    """The client calls a test made, in call order; ``pairs()`` judges them against the servers."""

    def __init__(self, nodeid: str | None, recorder: Recorder = RECORDER) -> None:
        self._nodeid = nodeid
        self._recorder = recorder

    def _calls(self) -> list[ClientCall]:
        calls = self._recorder.calls_of(self._nodeid)
        for call in calls:
            call.settle()
        return calls

    @overload
    def __getitem__(self, index: int) -> ClientCall: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ClientCall]: ...

    def __getitem__(self, index: int | slice) -> ClientCall | Sequence[ClientCall]:
        return self._calls()[index]

    def __len__(self) -> int:
        return len(self._calls())

    def __iter__(self) -> Iterator[ClientCall]:
        return iter(self._calls())

    def __repr__(self) -> str:
        return f"CallLog({self._calls()!r})"

    def pairs(self, timeout: float = 1.0) -> list[Pair]:
        """``(client_call, server_call, verdict)`` for each call, waiting up to ``timeout`` s in
        all for server handlers that are still running to end."""
        out: list[Pair] = []
        deadline = time.monotonic() + timeout
        for client in self._calls():
            attempts = self._recorder.attempts(client.call_id)
            for server in attempts:
                if server.outcome == "running":
                    # not on the loop an asyncio handler runs on: it could not end while we block
                    server.wait(0 if server.on_own_loop() else max(0.0, deadline - time.monotonic()))
            out.append(_judged(client, attempts))
        return out

    def hops(self) -> list[Hop]:
        """The calls the test's servers' handlers made while serving a call, each with its
        parent server call and whether it passed the deadline on."""
        return hops_of(self._calls())

    def assert_no_violations(self, timeout: float = 1.0) -> None:
        """Fail when a client saw OK but the server's handler did not end OK."""
        bad = [p for p in self.pairs(timeout) if p.verdict == "violation"]
        if bad:
            lines = [f"  client {p.client!r}\n  server {p.server!r}" for p in bad]
            raise CheckError(
                "a client call succeeded while the server's handler did not end OK:\n" + "\n".join(lines)
            )
