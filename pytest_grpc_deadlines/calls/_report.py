"""The suite report: calls by status, calls with no deadline, disagreements and near misses.

Kept as plain data so xdist workers can send it to the controller, which merges it.

JSON schema (``--grpc-deadlines-json PATH``), version 3::

    {
      "version": 3,
      "run": str | null,                      # --grpc-deadlines-run NAME: the run or shard
      "tests": {"test id": "passed" | "failed" | "error" | "skipped" | "xfailed" | "xpassed"},
      "calls": int,                           # client calls recorded in tests
      "by_code": {"OK": int, "DEADLINE_EXCEEDED": int, ...},   # "UNFINISHED" for unfinished
      "no_deadline": [{"test", "method", "target", "site", "library_site"}],
      "disagreements": [{... as no_deadline, "client_code", "server_outcome", "wire_faults"?}],
      "expected_disagreements": [same keys as disagreements],
      "violations": [same keys as disagreements],
      "near_misses": [{... as no_deadline, "timeout", "elapsed", "used"}],
      "background": [{"thread", "method", "target", "site", "library_site"}],
      "hops": {"propagated": int, "no deadline": int, "over budget": int, "parent had none": int},
      "hop_problems": [{... as no_deadline, "serving", "verdict", "timeout", "time_left"}]
    }

``disagreements`` are the surprises; ``expected_disagreements`` are those on server calls the
test itself made outlive their client (a gate, a delay after the servicer or one that ignores
cancellation, or a wire proxy's fault in force while the call ran: ``wire_faults`` names
them). ``background`` calls came from threads that were already running when the test that
was running started (an earlier test's, say): they count against no test. ``used`` is
elapsed / timeout; near misses are calls that succeeded after using over 80% of their deadline,
tightest first. ``hops`` counts calls that handlers of the plugin's servers made while serving
a call, by verdict; ``hop_problems`` lists those that did not pass the deadline on ("no
deadline", "over budget"), ``serving`` naming the method served. ``tests`` has each test's
result, for ``python -m pytest_grpc_deadlines merge``. Version 1 had no
``expected_disagreements``, ``background`` or ``library_site``; reports before hops had neither
hop key; version 2 had no ``run`` or ``tests``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import ClientCall  # judging pairs needs grpc; the report does not
    from ._verdicts import Pair

__all__ = ["LISTS", "NEAR_MISS", "VERSION", "SuiteReport", "test_result"]

#: A call that used more than this share of its deadline and still succeeded is a near miss.
NEAR_MISS = 0.8
_SHOWN = 10
#: the report's lists of entries, merged (xdist workers, separate runs) by concatenation
LISTS = (
    "hop_problems",
    "no_deadline",
    "over_max_deadline",
    "disagreements",
    "expected_disagreements",
    "violations",
    "near_misses",
    "background",
)
#: What a call that had no status when its test ended is counted as.
UNFINISHED = "UNFINISHED"
#: The JSON report's version.
VERSION = 3


def test_result(previous: str | None, when: str, outcome: str, xfail: bool) -> str | None:
    """A test's result after one of its phase reports (``when``: setup, call, teardown;
    ``outcome``: passed, failed, skipped, or rerun for an attempt pytest-rerunfailures retries)."""
    if outcome == "rerun":
        return previous
    if when == "call":
        if xfail:
            return "xfailed" if outcome == "skipped" else "xpassed"
        return outcome
    if outcome == "failed":
        return "failed" if previous == "failed" else "error"
    if outcome == "skipped":
        return "xfailed" if xfail else "skipped"
    return previous


def _where(call: ClientCall) -> dict[str, Any]:
    return {
        "test": call.test,
        "method": call.method,
        "target": call.target,
        "site": call.site,
        "library_site": call.library_site,
    }


def _background(call: ClientCall) -> dict[str, Any]:
    where = _where(call)
    del where["test"]
    return {"thread": call.thread, **where}


@dataclass
class SuiteReport:
    calls: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    no_deadline: list[dict[str, Any]] = field(default_factory=list)
    #: calls without a deadline that the audit exempts (ini grpc_deadline_exempt_methods, or a
    #: test marked grpc_require_deadlines(False)): counted, not listed as work to do
    no_deadline_exempt: int = 0
    #: calls whose deadline is above ini grpc_max_deadline (when it is set)
    over_max_deadline: list[dict[str, Any]] = field(default_factory=list)
    max_deadline: float | None = None
    disagreements: list[dict[str, Any]] = field(default_factory=list)
    expected_disagreements: list[dict[str, Any]] = field(default_factory=list)
    background: list[dict[str, Any]] = field(default_factory=list)
    #: whether the run used the plugin (a marker, option, ini key or fixture of its own)
    used: bool = False
    violations: list[dict[str, Any]] = field(default_factory=list)
    near_misses: list[dict[str, Any]] = field(default_factory=list)
    hops: Counter[str] = field(default_factory=Counter)
    hop_problems: list[dict[str, Any]] = field(default_factory=list)
    #: the run or shard the report is of (``--grpc-deadlines-run``)
    run: str | None = None
    #: each test's result, by test id
    tests: dict[str, str] = field(default_factory=dict)

    def add(
        self,
        calls: Iterable[ClientCall],
        pairs: Iterable[Pair],
        exempt: Callable[[ClientCall], bool] = lambda call: False,
    ) -> None:
        """A test's calls and pairs; ``exempt`` says which calls the deadline audit leaves out."""
        for call in calls:
            if call.internal:
                continue
            self._add_hop(call)
            self.calls += 1
            self.by_code[call.code.name if call.code is not None else UNFINISHED] += 1
            if call.timeout is None:
                if exempt(call):
                    self.no_deadline_exempt += 1
                else:
                    self.no_deadline.append(_where(call))
                continue
            if self.max_deadline is not None and call.timeout > self.max_deadline and not exempt(call):
                self.over_max_deadline.append({**_where(call), "timeout": call.timeout})
            if (
                call.code is not None
                and call.code.name == "OK"
                and call.elapsed is not None
                and call.timeout > 0
                and call.elapsed > NEAR_MISS * call.timeout
            ):
                self.near_misses.append(
                    {
                        **_where(call),
                        "timeout": call.timeout,
                        "elapsed": round(call.elapsed, 6),
                        "used": round(call.elapsed / call.timeout, 4),
                    }
                )
        for pair in pairs:
            if pair.verdict in ("disagreement", "violation") and pair.server is not None:
                wire = list(pair.client.wire_faults)
                entry = {
                    **_where(pair.client),
                    "client_code": pair.client.code.name if pair.client.code is not None else UNFINISHED,
                    "server_outcome": pair.server.outcome,
                    **({"wire_faults": wire} if wire else {}),
                }
                if pair.verdict == "violation":
                    self.violations.append(entry)
                elif pair.server.provoked or wire:  # the test's gates, delays or wire faults
                    self.expected_disagreements.append(entry)
                else:
                    self.disagreements.append(entry)

    def _add_hop(self, call: ClientCall) -> None:
        if call.parent is None:  # not made by a handler: no hop
            return
        from ._hops import PROBLEMS, hop_verdict

        verdict = hop_verdict(call)
        if verdict is None:
            return
        self.hops[verdict] += 1
        if verdict in PROBLEMS:
            self.hop_problems.append(
                {
                    **_where(call),
                    "serving": call.parent.method,
                    "verdict": verdict,
                    "timeout": call.timeout,
                    "time_left": call.parent_time_left,
                }
            )

    def add_background(self, calls: Iterable[ClientCall]) -> None:
        self.background.extend(_background(c) for c in calls if not c.internal)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "run": self.run,
            "tests": dict(sorted(self.tests.items())),
            "calls": self.calls,
            "by_code": dict(sorted(self.by_code.items())),
            "no_deadline": self.no_deadline,
            "no_deadline_exempt": self.no_deadline_exempt,
            "max_deadline": self.max_deadline,
            "over_max_deadline": self.over_max_deadline,
            "disagreements": self.disagreements,
            "expected_disagreements": self.expected_disagreements,
            "violations": self.violations,
            "near_misses": sorted(self.near_misses, key=lambda m: -float(m["used"])),
            "background": self.background,
            "hops": dict(sorted(self.hops.items())),
            "hop_problems": self.hop_problems,
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add a worker's ``to_dict()``."""
        self.calls += int(data.get("calls", 0))
        self.by_code.update({str(k): int(v) for k, v in data.get("by_code", {}).items()})
        self.no_deadline_exempt += int(data.get("no_deadline_exempt", 0))
        self.hops.update({str(k): int(v) for k, v in data.get("hops", {}).items()})
        for key in LISTS:
            getattr(self, key).extend(data.get(key, []))
        self.tests.update({str(k): str(v) for k, v in data.get("tests", {}).items()})
        self.used = self.used or bool(data.get("used", False))

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2)
            handle.write("\n")

    def lines(self) -> list[str]:
        data = self.to_dict()
        codes = ", ".join(f"{code} {count}" for code, count in data["by_code"].items()) or "none"
        out = [f"{self.calls} client call{'' if self.calls == 1 else 's'} recorded: {codes}"]
        sections: list[tuple[str, list[dict[str, Any]], str]] = [
            ("violations (client OK, server not OK)", data["violations"], "pair"),
            ("disagreements (server OK, client gave up)", data["disagreements"], "pair"),
            ("calls with no deadline", data["no_deadline"], "plain"),
            *(
                [
                    (
                        f"calls above grpc_max_deadline ({self.max_deadline:g} s)",
                        data["over_max_deadline"],
                        "max",
                    )
                ]
                if self.max_deadline is not None
                else []
            ),
            (f"near misses (OK after over {NEAR_MISS:.0%} of the deadline)", data["near_misses"], "near"),
        ]
        if data["expected_disagreements"]:  # provoked on purpose: counted, not listed
            title = "expected disagreements (provoked by the tests' gates, delays and wire faults)"
            sections.insert(2, (title, data["expected_disagreements"], "count"))
        if self.hops:  # only runs whose servers' handlers made calls
            counts = ", ".join(f"{verdict} {count}" for verdict, count in data["hops"].items())
            total = sum(self.hops.values())
            title = f"hops not passing the deadline on ({total} calls made while serving a call: {counts})"
            sections.append((title, data["hop_problems"], "hop"))
        if data["background"]:
            sections.append(
                ("background calls (from threads older than the test)", data["background"], "thread")
            )
        for title, entries, kind in sections:
            exempt = f" (and {self.no_deadline_exempt} exempt)" if self.no_deadline_exempt else ""
            out.append(f"{title}: {len(entries)}{exempt if title == 'calls with no deadline' else ''}")
            if kind == "count":
                continue
            for entry in entries[:_SHOWN]:
                if kind == "thread":
                    out.append(f"  thread {entry['thread']}: {entry['method']} at {entry['site']}")
                    continue
                text = f"  {entry['test']}: {entry['method']} at {entry['site']}"
                if kind == "pair":
                    text += f" (client {entry['client_code']}, server {entry['server_outcome']})"
                elif kind == "max":
                    text += f" ({entry['timeout']:g} s)"
                elif kind == "hop":
                    left = entry["time_left"]
                    sent = "no deadline" if entry["timeout"] is None else f"{entry['timeout']:g} s"
                    text += f" (serving {entry['serving']} with {left:.3f} s left; sent {sent})"
                elif kind == "near":
                    text += f" ({entry['elapsed']:.3f} s of {entry['timeout']:g} s, {entry['used']:.0%})"
                out.append(text)
            if len(entries) > _SHOWN:
                out.append(f"  ... and {len(entries) - _SHOWN} more (see --grpc-deadlines-json)")
        return out
