"""Faults on the wire: an in-process TCP proxy between a client and a loopback server that delays,
throttles, slices, holds, resets and blackholes bytes, with a record of each connection.

Layer contract: the standard library, ``_checks`` and ``_errors`` only (no grpc, no pytest). The
``calls`` layer reads which faults were in force while a call ran (:func:`faults_during`).
Usable without pytest, as a context manager; the plugin's ``grpc_wire_proxy`` fixtures wrap it.
"""

from __future__ import annotations

from ._proxy import Connection, Direction, WireGate, WireProxy, faults_during, upstream_of

__all__ = ["Connection", "Direction", "WireGate", "WireProxy", "faults_during", "upstream_of"]
