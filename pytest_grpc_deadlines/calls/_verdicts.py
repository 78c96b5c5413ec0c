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
from ._recorder import RECORDER, ClientCall, Recorder

__all__ = ["CallLog", "Pair", "Verdict", "verdict"]

#: "agreed-ok", "agreed-failure", "disagreement" (the handler ended OK, the client did not),
#: "violation" (the client saw OK, the handler did not end OK: must never happen), "unpaired"
#: (no server record: a server that is not the plugin's, or a call it never saw) and "running"
#: (either side has not ended yet).
Verdict = Literal["agreed-ok", "agreed-failure", "disagreement", "violation", "unpaired", "running"]


class Pair(NamedTuple):
    client: ClientCall
    server: ServerCall | None
    verdict: Verdict


def verdict(client: ClientCall, server: ServerCall | None) -> Verdict:
    """Judge one client record against the server's record of the same call."""
    if server is None:
        return "unpaired"
    if not client.done or server.outcome == "running":
        return "running"
    client_ok = client.code is grpc.StatusCode.OK
    server_ok = server.outcome == "ok"
    if client_ok and server_ok:
        return "agreed-ok"
    if client_ok:
        return "violation"
    if server_ok:
        return "disagreement"
    return "agreed-failure"


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
            server = self._recorder.server_call(client.call_id)
            if server is not None and server.outcome == "running":
                # not on the loop an asyncio handler runs on: it could not end while we block
                server.wait(0 if server.on_own_loop() else max(0.0, deadline - time.monotonic()))
            out.append(Pair(client, server, verdict(client, server)))
        return out

    def assert_no_violations(self, timeout: float = 1.0) -> None:
        """Fail when a client saw OK but the server's handler did not end OK."""
        bad = [p for p in self.pairs(timeout) if p.verdict == "violation"]
        if bad:
            lines = [f"  client {p.client!r}\n  server {p.server!r}" for p in bad]
            raise CheckError(
                "a client call succeeded while the server's handler did not end OK:\n" + "\n".join(lines)
            )
