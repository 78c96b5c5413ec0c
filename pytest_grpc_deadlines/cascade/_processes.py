"""The processes that read a cascade, each from its own environment, checked against each other.

``explain --env-file`` given once per process resolves each environment, then judges every
pair: a message one side may send and the other refuses, and a client's timeout longer than the
grace period its peer gives in-flight calls when it shuts down. The checks go by the settings'
names in the built-in Dagster cascade (``max_send_bytes``, ``max_rx_bytes``, ``grace`` and the
call timeouts); a cascade without them gets no checks between processes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._cascade import Process, Resolved
from ._invariants import Violation

__all__ = ["Environment", "between", "load_env_file", "reads"]

#: The timeouts a call is made with, which a peer's grace period should cover. Dagster leaves the
#: repository timeout out of its grace: loading a repository happens at startup only.
_CALL_TIMEOUTS = ("default", "schedule", "sensor")


@dataclass(frozen=True)
class Environment:
    """The environment one process runs with: where it came from, the process (None: every
    setting is read), and the variables."""

    source: str
    process: Process | None
    values: Mapping[str, str]

    @property
    def label(self) -> str:
        return f"{self.process.name} ({self.source})" if self.process else self.source


def reads(process: Process | None, settings: Sequence[str]) -> bool:
    """Whether ``process`` reads any of ``settings`` (every process does when it is None)."""
    return process is None or any(name in process.settings for name in settings)


def load_env_file(path: str) -> dict[str, str]:
    """``NAME=VALUE`` lines (``export`` allowed, ``#`` comments, quotes around a value removed);
    raises ValueError naming the line that is neither."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as file:
        for number, raw in enumerate(file, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            line = line.removeprefix("export ").lstrip()
            name, sep, value = line.partition("=")
            name = name.strip()
            if not sep or not name.isidentifier():
                raise ValueError(f"line {number} is not NAME=VALUE: {raw.rstrip()!r}")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[name] = value
    return values


def _limit(resolved: Resolved, name: str) -> float | None:
    if name not in resolved or name in resolved.errors:
        return None
    value = resolved[name]
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return math.inf if value < 0 else float(value)


def _sizes(sender: Environment, send: Resolved, receiver: Environment, receive: Resolved) -> list[Violation]:
    if not (reads(sender.process, ("max_send_bytes",)) and reads(receiver.process, ("max_rx_bytes",))):
        return []
    most, accepted = _limit(send, "max_send_bytes"), _limit(receive, "max_rx_bytes")
    if most is None or accepted is None or most <= accepted:
        return []
    return [
        Violation(
            "warning",
            ("max_send_bytes", "max_rx_bytes"),
            f"{sender.label} sends messages up to max_send_bytes {send['max_send_bytes']} but "
            f"{receiver.label} accepts only max_rx_bytes {receive['max_rx_bytes']}: a message "
            "between the two fails on the receiver with RESOURCE_EXHAUSTED 'Received message "
            "larger than max'",
        )
    ]


def _grace(client: Environment, calls: Resolved, server: Environment, serves: Resolved) -> list[Violation]:
    if not reads(server.process, ("grace",)) or "grace" in serves.errors or "grace" not in serves:
        return []
    grace = serves["grace"]
    if not isinstance(grace, int) or isinstance(grace, bool) or grace < 0:
        return []
    timeouts = [
        (calls[name], name)
        for name in _CALL_TIMEOUTS
        if name in calls and name not in calls.errors and reads(client.process, (name,))
    ]
    timeouts = [(value, name) for value, name in timeouts if isinstance(value, int) and value > grace]
    if not timeouts:
        return []
    value, name = max(timeouts)
    return [
        Violation(
            "warning",
            (name, "grace"),
            f"{client.label} waits up to {name} {value} s for a call, longer than the grace "
            f"{grace} s {server.label} gives in-flight calls when it shuts down: a call still "
            f"running then is cut after {grace} s (UNAVAILABLE), not at its deadline",
        )
    ]


def between(environments: Sequence[Environment], resolved: Sequence[Resolved]) -> list[tuple[str, Violation]]:
    """What goes wrong between each ordered pair of processes, labelled ``"a -> b"``."""
    out: list[tuple[str, Violation]] = []
    pairs = list(zip(environments, resolved, strict=True))
    for first, first_resolved in pairs:
        for second, second_resolved in pairs:
            if first is second:
                continue
            label = f"{first.label} -> {second.label}"
            found = _sizes(first, first_resolved, second, second_resolved)
            found += _grace(first, first_resolved, second, second_resolved)
            out += [(label, violation) for violation in found]
    return out
