"""The recording's pure parts: service config timeouts, aio deadlines, and call sites."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from pytest_grpc_deadlines.calls import _hooks as hooks
from pytest_grpc_deadlines.calls import _sites as sites
from pytest_grpc_deadlines.calls._hooks import ChannelInfo, Pending
from pytest_grpc_deadlines.calls._recorder import ClientCall


def _config(*entries: Any) -> list[tuple[str, Any]]:
    return [("grpc.service_config", json.dumps({"methodConfig": list(entries)}))]


def test_service_config_timeouts_by_method_then_service_then_every_method() -> None:
    info = ChannelInfo.of(
        "localhost:1",
        _config(
            {"name": [{"service": "s.S", "method": "M"}], "timeout": "1s"},
            {"name": [{"service": "s.S"}], "timeout": "2.5s"},
            {"name": [{}], "timeout": "9s"},
        ),
    )
    assert info.target == "127.0.0.1:1"
    assert [info.config_timeout(m) for m in ("s.S/M", "s.S/N", "t.T/M")] == [1.0, 2.5, 9.0]


@pytest.mark.parametrize(
    "options",
    [
        None,
        [("grpc.max_receive_message_length", 5)],
        [("grpc.service_config", "{not json")],
        [("grpc.service_config", 5)],
        [("grpc.service_config", json.dumps([1]))],
        [("grpc.service_config", json.dumps({"methodConfig": 5}))],
        _config(5, {"name": [{"service": "s.S"}]}, {"name": 5, "timeout": "1s"}),
        _config({"name": [5], "timeout": "1s"}),
        _config(*({"name": [{"service": "s.S"}], "timeout": t} for t in ("1", "xs", "-1s", "infs", 5))),
        5,  # not a sequence of pairs: grpc says so itself
    ],
)
def test_a_service_config_without_usable_timeouts_gives_none(options: Any) -> None:
    assert ChannelInfo.of("t", options).config_timeout("s.S/M") is None


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), (True, None), ("abc", None), (2, 2.0), ("1.5", 1.5)]
)
def test_seconds_reads_what_grpc_would_and_nothing_else(value: Any, seconds: float | None) -> None:
    assert hooks.seconds(value) == seconds


def test_aio_timeout_keeps_the_callers_value_unless_an_interceptor_moved_it() -> None:
    site = sites.CallSite("t.py:1", None, False)
    info = ChannelInfo.of("t", None)
    now = time.time()
    assert hooks.aio_timeout(Pending(info, site, 5), now + 5) == (5, False)
    timeout, moved = hooks.aio_timeout(Pending(info, site, 5), now + 3)
    assert moved
    assert timeout is not None
    assert abs(timeout - 3) < 0.5  # margin: only the time between two time.time() calls
    assert hooks.aio_timeout(Pending(info, site, 5), None) == (None, True)
    assert hooks.aio_timeout(Pending(info, site, None), None) == (None, False)
    assert hooks.aio_timeout(Pending(info, site, 5), "not a time") == (5.0, False)


def _record() -> ClientCall:
    return ClientCall(method="s.S/M", target="t", timeout=None, site="t.py:1", test=None)


def test_a_call_object_without_a_status_finishes_cancelled() -> None:
    class Broken:
        def code(self) -> Any:
            raise RuntimeError("no status")

    record = _record()
    hooks._finish_from(record)(Broken())
    assert record.code is grpc.StatusCode.CANCELLED
    record = _record()
    hooks.aio_finish_from(record)(Broken())
    assert record.code is grpc.StatusCode.CANCELLED


def test_watch_settles_a_call_that_ended_before_its_callback_ran() -> None:
    class Done:
        def __init__(self) -> None:
            self.callbacks: list[Any] = []

        def add_done_callback(self, fn: Any) -> None:
            self.callbacks.append(fn)

        def done(self) -> bool:
            return True

        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.OK

        def details(self) -> str:
            return ""

    record, call = _record(), Done()
    hooks.watch(record, call, hooks._finish_from(record))
    record.settle()
    assert record.code is grpc.StatusCode.OK


def test_an_error_that_is_not_grpcs_finishes_without_a_status() -> None:
    record = _record()
    hooks.finish_from_error(record, ValueError("closed"))
    assert (record.code, record.details) == (None, "ValueError: closed")


# --- call sites -----------------------------------------------------------------------------


def test_the_calling_line_is_the_site() -> None:
    line = sys._getframe().f_lineno + 1
    site = sites.call_site(0)
    assert site == sites.CallSite(f"tests/test_recording_parts.py:{line}", None, False)


def test_a_frame_of_a_skipped_module_is_the_library_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "pgd_site_lib.py"
    module.write_text(
        "from pytest_grpc_deadlines.calls import _sites as sites\n\n"
        "def where():\n    return sites.call_site(0)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pgd_site_lib = importlib.import_module("pgd_site_lib")
    try:
        sites.configure_skips(["pgd_site_lib"])
        site = pgd_site_lib.where()
        sites.configure_skips([str(tmp_path) + "/"])
        by_path = pgd_site_lib.where()
    finally:
        sites.configure_skips([])
    line = sys._getframe().f_lineno
    assert site.site == f"tests/test_recording_parts.py:{line - 5}"
    assert site.library is not None
    assert site.library.endswith("pgd_site_lib.py:4")
    assert by_path.library == site.library


def test_a_stack_of_library_frames_only_is_sited_at_the_library() -> None:
    code = compile(
        "from pytest_grpc_deadlines.calls import _sites as sites\nsite = sites.call_site(0)\n",
        "/lib/x.py",
        "exec",
    )
    namespace: dict[str, Any] = {}
    sites.configure_skips(["/lib/"])
    try:
        exec(code, namespace)  # the test's own frame is below it: still the user's line
    finally:
        sites.configure_skips([])
    assert namespace["site"].library == "/lib/x.py:2"


def test_relative_prefixes_that_are_not_paths_match_modules_only() -> None:
    assert not sites._under("/a/b.py", "mylib")
    assert sites._under(str(Path("src/gen/x.py").resolve()), "src/gen/")
