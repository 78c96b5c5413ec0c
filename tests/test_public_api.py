"""The public API: exactly what ``__all__`` lists, typed, and light to import."""

from __future__ import annotations

import importlib
import importlib.resources
import json
import pathlib
import subprocess
import sys

import pytest

import pytest_grpc_deadlines

PUBLIC = {
    "DAGSTER",
    "GRPC_SIMPLE_STUBS",
    "OTEL_OTLP",
    "AioGate",
    "AioGrpcTestServer",
    "ArgumentError",
    "ArgumentTypeError",
    "Binding",
    "CallLog",
    "Cascade",
    "CascadeError",
    "CheckError",
    "ClientCall",
    "FakeRpc",
    "FakeServer",
    "Flag",
    "Gate",
    "GrpcDeadlinesError",
    "GrpcDeadlinesWarning",
    "GrpcTestServer",
    "Max",
    "MethodError",
    "MissingExtraError",
    "Milliseconds",
    "OrDefault",
    "OverrideError",
    "Pair",
    "Process",
    "Ref",
    "Resolved",
    "Seconds",
    "ServerCall",
    "ServerStateError",
    "Setting",
    "Text",
    "ValueRule",
    "Violation",
    "WaitTimeoutError",
    "WholeNumber",
    "WireGate",
    "WireProxy",
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


def test_assert_cascade_conforms_is_the_strategies_one() -> None:
    from pytest_grpc_deadlines.strategies import assert_cascade_conforms

    assert pytest_grpc_deadlines.assert_cascade_conforms is assert_cascade_conforms


#: Modules whose names are public: the package, its documented submodules, the plugin's entry
#: point, and the layer packages (``cascade`` and ``wire`` re-export their names; ``servers`` and
#: ``calls`` export nothing of their own). Every other module is private: its name starts with "_".
PUBLIC_MODULES = {
    "pytest_grpc_deadlines",
    "pytest_grpc_deadlines.probe",
    "pytest_grpc_deadlines.strategies",
    "pytest_grpc_deadlines.dagster",
    "pytest_grpc_deadlines.plugin",
    "pytest_grpc_deadlines.cascade",
    "pytest_grpc_deadlines.servers",
    "pytest_grpc_deadlines.calls",
    "pytest_grpc_deadlines.wire",
}


def _modules() -> list[str]:
    root = pathlib.Path(pytest_grpc_deadlines.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def test_every_module_outside_the_public_ones_is_private() -> None:
    modules = _modules()
    assert set(modules) >= PUBLIC_MODULES
    leaked = [
        name
        for name in modules
        if name not in PUBLIC_MODULES and name != "pytest_grpc_deadlines.__main__"
        if not name.rsplit(".", 1)[1].startswith("_")
    ]
    assert leaked == []


@pytest.mark.parametrize("name", sorted(PUBLIC_MODULES - {"pytest_grpc_deadlines.plugin"}))
def test_a_public_module_lists_what_it_exports(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    assert all(hasattr(module, attribute) for attribute in exported)
    if name in ("pytest_grpc_deadlines.servers", "pytest_grpc_deadlines.calls"):
        assert exported == []  # layers whose public names the package exports


def test_every_error_derives_from_the_one_base_and_its_builtin() -> None:
    from pytest_grpc_deadlines.strategies import StrategyArgumentError

    errors = [getattr(pytest_grpc_deadlines, name) for name in PUBLIC if name.endswith("Error")]
    errors.append(StrategyArgumentError)
    assert all(issubclass(error, pytest_grpc_deadlines.GrpcDeadlinesError) for error in errors)
    builtin = {
        "ArgumentError": ValueError,
        "ArgumentTypeError": TypeError,
        "CascadeError": ValueError,
        "CheckError": AssertionError,
        "MethodError": ValueError,
        "MissingExtraError": ImportError,
        "OverrideError": ValueError,
        "ServerStateError": RuntimeError,
        "WaitTimeoutError": TimeoutError,
        "StrategyArgumentError": ValueError,
    }
    assert {e.__name__ for e in errors} == set(builtin) | {"GrpcDeadlinesError"}
    for error in errors:
        if error.__name__ in builtin:
            assert issubclass(error, builtin[error.__name__]), error


def test_version_is_a_string() -> None:
    assert isinstance(pytest_grpc_deadlines.__version__, str)
    assert pytest_grpc_deadlines.__version__.count(".") == 2


def test_cascade_error_is_a_value_error_and_the_warning_a_user_warning() -> None:
    assert issubclass(pytest_grpc_deadlines.CascadeError, ValueError)
    assert issubclass(pytest_grpc_deadlines.GrpcDeadlinesWarning, UserWarning)


def test_importing_the_package_and_plugin_does_not_import_hypothesis() -> None:
    code = (
        "import json, sys\n"
        "import pytest_grpc_deadlines, pytest_grpc_deadlines.plugin, pytest_grpc_deadlines.cascade._explain\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'hypothesis')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(proc.stdout) == []


def test_py_typed_is_shipped() -> None:
    assert (importlib.resources.files("pytest_grpc_deadlines") / "py.typed").is_file()
