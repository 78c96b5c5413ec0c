"""The fake-clock server without a usable grpcio-testing: the error says what is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_grpc_deadlines import FakeServer
from pytest_grpc_deadlines.probe import PROBE_SERVICE, ProbeServicer
from pytest_grpc_deadlines.servers._fake import INSTALL_HINT

_INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:asyncio")


def test_grpcio_testing_that_fails_to_import_says_what_it_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # grpcio-testing 1.48 and older import six, which they do not declare: installed, not usable
    package = tmp_path / "grpc_testing"
    package.mkdir()
    (package / "__init__.py").write_text("import six_not_installed_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "grpc_testing", raising=False)
    with pytest.raises(
        ImportError,
        match=r"FakeServer needs grpcio-testing, which is installed \(version [^)]+\) but failed to "
        r"import: ModuleNotFoundError: No module named 'six_not_installed_here'; install what it "
        r"needs \(pip install six_not_installed_here\)",
    ):
        FakeServer((PROBE_SERVICE, ProbeServicer()))


def test_missing_extra_is_a_clear_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc_testing", None)
    with pytest.raises(ImportError, match=r'FakeServer needs grpcio-testing.*\[fake-time\]"$'):
        FakeServer((PROBE_SERVICE, ProbeServicer()))
    assert INSTALL_HINT == 'pip install "pytest-grpc-deadlines[fake-time]"'
    pytester.makepyfile(
        """
        def test_uses_it(grpc_fake_server):
            pass
        """
    )
    result = pytester.runpytest(*_INNER)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ['*grpc_fake_server fixture needs grpcio-testing*"pytest-grpc-deadlines[[]fake-time[]]"']
    )
