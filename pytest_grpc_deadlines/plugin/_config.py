"""The plugin's options and ini keys, and what ``pytest_configure`` settles from them."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING

import pytest

from .._errors import OverrideError
from ..calls._audit import parse_ini_policy
from ._calls import CallsPlugin
from ._state import STATE, State

if TYPE_CHECKING:
    from ..calls._hops import Mode as PropagationMode
    from ..cascade._cascade import Cascade
    from ..cascade._overrides import Layer

HELP_TIMEOUT = (
    "set a timeout cascade setting for every test, NAME=VALUE (e.g. sensor=30); repeatable. "
    "Overrides ini grpc_timeouts; markers override it. Tests it touches run with a clean cascade."
)
HELP_TIMEOUTS_INI = (
    "timeout cascade settings for every test, one NAME=VALUE a line (e.g. sensor=30); "
    "--grpc-timeout and markers override them. Tests they touch run with a clean cascade."
)
HELP_REQUIRE = (
    "fail (true) or warn (warn) a test whose code makes an RPC without a deadline, or with one "
    "above grpc_max_deadline; @pytest.mark.grpc_require_deadlines(False) exempts a test. "
    "Default: false"
)
HELP_PROPAGATION = (
    "fail (true) or warn (warn) a test in which a handler of the plugin's servers makes a call "
    "without passing its deadline on (no deadline, or one past the served call's); "
    "@pytest.mark.grpc_require_propagation(False) exempts a test. Default: false"
)
HELP_MAX_DEADLINE = "with grpc_require_deadlines: the longest acceptable deadline, in seconds"
HELP_EXEMPT = (
    "with grpc_require_deadlines: methods never flagged, one pattern a line "
    "(fnmatch, e.g. grpc.health.v1.Health/*)"
)
HELP_REPORT = (
    "always print the gRPC deadlines summary (by default: when the run used the plugin's markers, "
    "options, ini keys or fixtures)"
)
HELP_RECORD = (
    "record client calls (for grpc_calls, the deadline audit and the summary): true or false. "
    "Default: true. To keep the plugin from loading at all, use -p no:grpc_deadlines"
)
HELP_SITE_SKIP = (
    "module or path prefixes whose frames are not a call's site, one a line (e.g. myproject.rpc "
    "or src/generated/); grpc, installed packages and the standard library are always skipped"
)
HELP_JSON = "write the gRPC deadlines summary as JSON to PATH (merged across xdist workers)"
HELP_RUN = (
    "name this run or shard in the JSON report (e.g. shard-2 or py3.12), for "
    "`python -m pytest_grpc_deadlines merge`"
)
HELP_CASCADE = (
    "the timeout cascades to use, apart by spaces or lines: built-in names (dagster, otel_otlp, "
    "grpc_simple_stubs) or module:attribute naming a pytest_grpc_deadlines.Cascade; a setting "
    "two of them have is called <cascade>_<setting> (default: dagster)"
)


_CALLS = pytest.StashKey[CallsPlugin]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grpc-deadlines", "gRPC deadlines")
    group.addoption(
        "--grpc-timeout",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        dest="grpc_timeout",
        help=HELP_TIMEOUT,
    )
    group.addoption("--grpc-deadlines-report", action="store_true", help=HELP_REPORT)
    group.addoption("--grpc-deadlines-json", metavar="PATH", default=None, help=HELP_JSON)
    group.addoption("--grpc-deadlines-run", metavar="NAME", default=None, help=HELP_RUN)
    parser.addini("grpc_timeouts", HELP_TIMEOUTS_INI, type="linelist", default=[])
    parser.addini("grpc_deadlines_cascade", HELP_CASCADE, default="")
    parser.addini("grpc_require_deadlines", HELP_REQUIRE, default="false")
    parser.addini("grpc_max_deadline", HELP_MAX_DEADLINE, default="")
    parser.addini("grpc_require_propagation", HELP_PROPAGATION, default="false")
    parser.addini("grpc_deadline_exempt_methods", HELP_EXEMPT, type="linelist", default=[])
    parser.addini("grpc_record_calls", HELP_RECORD, default="true")
    parser.addini("grpc_call_site_skip", HELP_SITE_SKIP, type="linelist", default=[])


#: ini keys of this plugin whose setting means the run uses it (their defaults are empty)
_INI_KEYS = (
    "grpc_timeouts",
    "grpc_deadlines_cascade",
    "grpc_max_deadline",
    "grpc_deadline_exempt_methods",
    "grpc_call_site_skip",
)


def _parse_bool(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise OverrideError(f"{where}: {text!r} is not accepted; use true or false")


def _check_json_path(path: str) -> None:
    """The report's path, checked before any test runs; its folders are made (as --junitxml's)."""
    where = f"--grpc-deadlines-json {path}"
    if os.path.isdir(path):
        raise OverrideError(f"{where}: is a folder; give the path of a file to write")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise OverrideError(f"{where}: cannot make its folder: {exc}") from None
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise OverrideError(f"{where}: cannot be written (no permission)")


def _used(config: pytest.Config) -> bool:
    """Whether the run's options or ini file name this plugin's settings."""
    if config.getoption("grpc_timeout") or config.getoption("grpc_deadlines_json"):
        return True
    for key in ("grpc_require_deadlines", "grpc_require_propagation"):
        if str(config.getini(key)).strip().lower() not in ("", "false"):
            return True
    return any(config.getini(key) for key in _INI_KEYS)


def _marker_signature(cascade: Cascade | None) -> str:
    """The marker's line in ``pytest --markers``: with the settings' names when ``cascade`` is
    given (only that run needs them, and other runs need not load the cascade model)."""
    if cascade is None:
        keywords, whose = "SETTING=...", "timeout cascade's"
    else:
        keywords, whose = ", ".join(f"{name}=..." for name in cascade.names), f"{cascade.name} cascade's"
    return (
        f"grpc_timeouts(*, {keywords}, inherit=False): set the {whose} environment variables "
        "for this test only (int/float values, True/False for a Flag setting, str written "
        "verbatim, None removes the variable); every other cascade variable is removed unless "
        "inherit=True. The grpc_timeouts fixture gives the resolved values and their sources."
    )


def pytest_configure(config: pytest.Config) -> None:
    path = str(config.getini("grpc_deadlines_cascade") or "")
    ini_lines, cli_lines = config.getini("grpc_timeouts"), config.getoption("grpc_timeout")
    layers: tuple[Layer, ...] = ()
    configured: Cascade | None = None  # None: Dagster's, loaded when a test needs it
    try:
        if path or ini_lines or cli_lines:  # else nothing to parse: a run that never sets them
            from ..cascade._cascade import DAGSTER
            from ..cascade._overrides import load_cascades, parse_assignments

            configured = load_cascades(path, "ini grpc_deadlines_cascade") if path.strip() else None
            cascade = configured or DAGSTER
            ini = parse_assignments(cascade, ini_lines, "ini grpc_timeouts", repeats=False)
            cli = parse_assignments(cascade, cli_lines, "--grpc-timeout")
            layers = tuple(layer for layer in (ini, cli) if layer.values)
        policy = parse_ini_policy(
            str(config.getini("grpc_require_deadlines")),
            str(config.getini("grpc_max_deadline")),
            config.getini("grpc_deadline_exempt_methods"),
        )
        record = _parse_bool(str(config.getini("grpc_record_calls")), "ini grpc_record_calls")
        propagation_ini = str(config.getini("grpc_require_propagation"))
        propagation: PropagationMode = "off"
        if propagation_ini.strip().lower() not in ("", "false"):
            from ..calls._hops import parse_propagation_ini

            propagation = parse_propagation_ini(propagation_ini)
        json_path = config.getoption("grpc_deadlines_json")
        if json_path:
            _check_json_path(json_path)
        for key, mode in (("grpc_require_deadlines", policy.mode), ("grpc_require_propagation", propagation)):
            if mode != "off" and not record:
                raise OverrideError(
                    f"ini {key} needs call recording, which ini grpc_record_calls = false turns off; "
                    "set one of them differently"
                )
    except OverrideError as exc:
        raise pytest.UsageError(str(exc)) from None
    state = State(configured, layers)
    # The settings' names, for `pytest --markers` only: other runs need not load the cascade.
    shows_markers = bool(config.getoption("markers", False))
    config.addinivalue_line("markers", _marker_signature(state.cascade if shows_markers else None))
    config.addinivalue_line(
        "markers",
        "grpc_require_propagation(enabled=True, /): fail this test when a handler of the plugin's "
        "servers makes a call without passing its deadline on (no deadline, or one past the served "
        "call's); grpc_require_propagation(False) exempts it from ini grpc_require_propagation.",
    )
    config.addinivalue_line(
        "markers",
        "grpc_require_deadlines(enabled=True, /, *, max_seconds=None): fail this test when its "
        "code makes an RPC without a deadline (or with one above max_seconds); "
        "grpc_require_deadlines(False) exempts it from ini grpc_require_deadlines.",
    )
    skips = config.getini("grpc_call_site_skip")
    if skips or "pytest_grpc_deadlines.calls._sites" in sys.modules:  # else loaded with grpc
        from ..calls._sites import configure_skips

        configure_skips(skips)
    calls = CallsPlugin(config, policy, record=record, used=_used(config), propagation=propagation)
    config.stash[_CALLS] = calls
    config.pluginmanager.register(calls, "grpc_deadlines.calls")
    config.stash[STATE] = state
    from . import _fake, _servers, _wire  # each imports what it serves when a fixture needs it

    config.pluginmanager.register(_servers, "grpc_deadlines.fixtures")
    config.pluginmanager.register(_fake, "grpc_deadlines.fake")
    config.pluginmanager.register(_wire, "grpc_deadlines.wire")
    if importlib.util.find_spec("dagster") is not None:  # the Dagster harness needs it
        from . import _dagster

        config.pluginmanager.register(_dagster, "grpc_deadlines.dagster")
    if config.pluginmanager.has_plugin("asyncio"):  # pytest-asyncio, installed and enabled
        from . import _aio_servers

        config.pluginmanager.register(_aio_servers, "grpc_deadlines.aio_fixtures")
    else:  # the same names, failing with what to do
        from . import _aio_missing

        config.pluginmanager.register(_aio_missing, "grpc_deadlines.aio_fixtures")


def pytest_unconfigure(config: pytest.Config) -> None:
    calls = config.stash.get(_CALLS, None)
    if calls is not None:
        calls.close()
        del config.stash[_CALLS]
