"""Call sites: the caller's file, relative to the working directory even after a chdir; the calling
line; and the user's line rather than a library's, with the library shown beside it."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from pytest_grpc_deadlines import CallLog
from pytest_grpc_deadlines.calls import _sites as sites
from pytest_grpc_deadlines.calls._sites import relative as _relative
from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub

pytest_plugins = ["pytester"]

QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")


# --- the caller's file ----------------------------------------------------------------------------


def test_a_file_inside_the_working_directory_is_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _relative(str(tmp_path / "tests" / "test_x.py")) == os.path.join("tests", "test_x.py")


def test_a_file_outside_the_working_directory_stays_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "inside").mkdir()
    monkeypatch.chdir(tmp_path / "inside")
    assert _relative(str(tmp_path / "test_x.py")) == str(tmp_path / "test_x.py")


def test_the_memoised_path_follows_a_change_of_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "a" / "test_x.py")
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _relative(path) == os.path.join("a", "test_x.py")
    monkeypatch.chdir(tmp_path / "a")
    assert _relative(path) == "test_x.py"
    monkeypatch.chdir(tmp_path)
    assert _relative(path) == os.path.join("a", "test_x.py")


def test_a_removed_working_directory_leaves_the_path_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert _relative(str(tmp_path / "test_x.py")) == str(tmp_path / "test_x.py")


# --- the calling line -----------------------------------------------------------------------------


def test_the_calling_line_is_the_site() -> None:
    line = sys._getframe().f_lineno + 1
    site = sites.call_site(0)
    assert site == sites.CallSite(f"tests/calls/test_sites.py:{line}", None, False)


def test_a_recorded_site_stays_relative_to_where_pytest_was_invoked(
    channel: grpc.Channel, grpc_calls: CallLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recording reports sites from the invocation directory, as pytest reports its own
    paths: a test that changes directory keeps them readable (and no call asks the system
    where it is)."""
    monkeypatch.chdir(tmp_path)
    ProbeStub(channel).Unary(ProbeRequest(), timeout=5)
    line = sys._getframe().f_lineno - 1
    [call] = grpc_calls
    assert call.site == f"tests/calls/test_sites.py:{line}"
    assert sites.call_site(0).site.startswith("/")  # the working directory's view: outside it


def test_a_caller_that_calls_again_keeps_each_of_its_lines(
    channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    """Sites are kept by calling instruction: a function that calls from two lines, again and
    again, gets the right line each time."""
    stub = ProbeStub(channel)

    def call_twice() -> None:
        stub.Unary(ProbeRequest(), timeout=5)
        stub.Unary(
            ProbeRequest(),
            timeout=5,
        )

    first = call_twice.__code__.co_firstlineno + 1
    for _ in range(3):
        call_twice()
    lines = [f"tests/calls/test_sites.py:{first}", f"tests/calls/test_sites.py:{first + 1}"]
    assert [call.site for call in grpc_calls] == lines * 3


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
    assert site.site == f"tests/calls/test_sites.py:{line - 5}"
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


# --- libraries between the user's line and grpc ---------------------------------------------------


def _line() -> int:
    import sys

    return sys._getframe(1).f_lineno


def test_a_call_through_an_installed_interceptor_library_is_sited_at_the_users_line(
    channel: grpc.Channel, grpc_calls: CallLog
) -> None:
    otel = pytest.importorskip("opentelemetry.instrumentation.grpc")
    intercepted = otel.grpcext.intercept_channel(channel, otel.client_interceptor())
    ProbeStub(intercepted).Unary(ProbeRequest(), timeout=5)
    line = _line() - 1
    [call] = grpc_calls
    assert call.site == f"tests/calls/test_sites.py:{line}"
    assert call.library_site is not None
    assert "opentelemetry" in call.library_site  # the interceptor library's frame, shown beside it


def test_a_library_named_in_ini_is_skipped_and_shown_beside_the_users_line(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("mylib")
    pytester.path.joinpath("mylib", "rpc.py").write_text(
        "from pytest_grpc_deadlines.probe import ProbeRequest\n"
        "\n"
        "def fetch(stub):\n"
        "    return stub.Unary(ProbeRequest())  # the library's line\n"
    )
    pytester.makeini("[pytest]\ngrpc_call_site_skip =\n    mylib\n")
    pytester.makepyfile(
        """
        import pytest
        from mylib.rpc import fetch

        @pytest.mark.grpc_require_deadlines
        def test_fetch(grpc_test_server):
            fetch(grpc_test_server.probe())  # the user's line
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest_grpc_deadlines.probe.v1.Probe/Unary to 127.0.0.1:* with no deadline, at "
            "test_a_library_named_in_ini_is_skipped_and_shown_beside_the_users_line.py:6 (via mylib/rpc.py:4)"
        ]
    )
