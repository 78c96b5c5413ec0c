"""The public API: exactly what ``__all__`` lists, typed, and light to import."""

from __future__ import annotations

import importlib.resources
import json
import subprocess
import sys

import pytest

import pytest_grpc_deadlines

PUBLIC = {
    "DAGSTER",
    "AioGate",
    "AioGrpcTestServer",
    "Binding",
    "CallLog",
    "Cascade",
    "CascadeError",
    "ClientCall",
    "FakeRpc",
    "FakeServer",
    "Flag",
    "Gate",
    "GrpcDeadlinesWarning",
    "GrpcTestServer",
    "Max",
    "MethodError",
    "Pair",
    "Ref",
    "Resolved",
    "ServerCall",
    "Setting",
    "Text",
    "ValueRule",
    "Violation",
    "WholeNumber",
    "__version__",
    "assert_cascade_conforms",
    "check",
    "jitter",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(pytest_grpc_deadlines.__all__) == PUBLIC
    assert len(pytest_grpc_deadlines.__all__) == len(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(pytest_grpc_deadlines, name) is not None


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        pytest_grpc_deadlines.nope  # noqa: B018


def test_assert_cascade_conforms_is_the_conformance_helper() -> None:
    from pytest_grpc_deadlines.conformance import assert_cascade_conforms
    from pytest_grpc_deadlines.strategies import assert_cascade_conforms as from_strategies

    assert pytest_grpc_deadlines.assert_cascade_conforms is assert_cascade_conforms is from_strategies


def test_version_is_a_string() -> None:
    assert isinstance(pytest_grpc_deadlines.__version__, str)
    assert pytest_grpc_deadlines.__version__.count(".") == 2


def test_cascade_error_is_a_value_error_and_the_warning_a_user_warning() -> None:
    assert issubclass(pytest_grpc_deadlines.CascadeError, ValueError)
    assert issubclass(pytest_grpc_deadlines.GrpcDeadlinesWarning, UserWarning)


def test_importing_the_package_and_plugin_does_not_import_hypothesis() -> None:
    code = (
        "import json, sys\n"
        "import pytest_grpc_deadlines, pytest_grpc_deadlines.plugin, pytest_grpc_deadlines.explain\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'hypothesis')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(proc.stdout) == []


def test_py_typed_is_shipped() -> None:
    assert (importlib.resources.files("pytest_grpc_deadlines") / "py.typed").is_file()
