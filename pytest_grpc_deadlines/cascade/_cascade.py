"""The timeout cascade: settings read from environment variables, resolved by a pure function.

A :class:`Cascade` is an ordered list of :class:`Setting` objects. Each setting names its
environment variable, its default (a constant or a rule over earlier settings) and a
:class:`ValueRule` saying when the variable counts as set, how its text parses and how a
marker value is written back. ``Cascade.resolve(environ)`` returns a frozen :class:`Resolved`.

Nothing here imports pytest or reads ``os.environ`` by itself.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from .._errors import ArgumentError, CascadeError
from ._rules import PARSE_ERRORS, Flag, Max, Ref, Text, ValueRule, WholeNumber

__all__ = [
    "DAGSTER",
    "Binding",
    "Cascade",
    "CascadeError",
    "Check",
    "Finding",
    "Flag",
    "Max",
    "Process",
    "Ref",
    "Resolved",
    "Setting",
    "Text",
    "ValueRule",
    "WholeNumber",
]

#: What a setting's value is, for the checks: a call timeout (``seconds``), a shutdown grace period
#: (``grace``), a message size limit (``bytes``), or ``other``.
Kind = Literal["seconds", "grace", "bytes", "other"]
#: What a cascade-level check reports: (severity "error" or "warning", settings, message).
Finding = tuple[Literal["error", "warning"], tuple[str, ...], str]
#: A check over a whole resolution, for rules that span settings (port and socket exclude each
#: other); it must tolerate settings listed in ``resolved.errors``.
Check = Callable[["Resolved"], Iterable[Finding]]


#: grpc keeps message limits in a C int: larger values raise OverflowError at creation.
INT32_MAX = 2_147_483_647


@dataclass(frozen=True)
class Setting:
    """One variable of a cascade.

    ``floor_consequence`` (for a :class:`Max` default) says what breaks when the variable is set
    explicitly below a term of that rule; it may use ``{name}``, ``{value}``, ``{term}`` and
    ``{term_value}``.
    """

    name: str
    env_var: str
    default: object
    rule: ValueRule = field(default_factory=WholeNumber)
    kind: Kind = "other"
    doc: str = ""
    floor_consequence: str = ""


@dataclass(frozen=True)
class Binding:
    """A module attribute that copies a setting when the module is imported.

    While a test's settings are in force, the attribute of an already-imported module is set to
    the resolved value and restored afterwards, and so is every default argument in the module's
    source whose default expression names the attribute. ``captured_by`` names other code that
    took the value at import and no patch reaches (the plugin warns when a test changes it).
    ``convert`` turns the setting's value into what the module keeps (grpc's simple stubs keep
    a ``timedelta``).
    """

    module: str
    attribute: str
    setting: str
    captured_by: str = ""
    convert: Callable[[object], object] | None = None

    def __str__(self) -> str:
        return f"{self.module}:{self.attribute} -> {self.setting}"


@dataclass(frozen=True)
class Process:
    """A program that reads some of a cascade's settings (``explain --process`` checks only
    those): its name on the command line, what it is, and the settings it reads."""

    name: str
    description: str
    settings: tuple[str, ...]


@dataclass(frozen=True)
class Cascade:
    """An ordered, declarative list of settings read from environment variables.

    ``reader`` names the program whose behaviour the cascade models ("Dagster"), so errors can
    say what that program itself would do.
    """

    name: str
    settings: tuple[Setting, ...]
    bindings: tuple[Binding, ...] = ()
    reader: str = ""
    checks: tuple[Check, ...] = ()
    processes: tuple[Process, ...] = ()
    #: which setting governs the timeout of which RPC methods: ``(pattern, setting)`` pairs (or a
    #: mapping), ``pattern`` an ``fnmatch`` pattern of ``"pkg.Service/Method"``, the first
    #: match winning; methods no pattern matches are not governed
    methods: Mapping[str, str] | tuple[tuple[str, str], ...] = ()
    #: the reader reads every variable in one go (a module at its import), so one variable that
    #: does not parse leaves it none of the values
    read_together: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.methods, Mapping):
            object.__setattr__(self, "methods", tuple(self.methods.items()))
        seen: set[str] = set()
        env_vars: set[str] = set()
        for setting in self.settings:
            if not setting.name.isidentifier() or setting.name == "inherit":
                raise ArgumentError(
                    f"setting name {setting.name!r} must be an identifier other than 'inherit'"
                )
            if setting.name.startswith("_") or _is_resolved_attribute(setting.name):
                raise ArgumentError(
                    f"setting name {setting.name!r} is taken: resolved.{setting.name} would not "
                    "read the setting; choose a name that does not start with '_' and is not an "
                    "attribute of Resolved (cascade, errors, source, raw, is_explicit, environ, "
                    "get, keys, items, values)"
                )
            if setting.name in seen or setting.env_var in env_vars:
                raise ArgumentError(f"setting {setting.name!r} ({setting.env_var}) is defined twice")
            if isinstance(setting.default, (Ref, Max)):
                for dep in setting.default.depends_on:
                    if dep not in seen:
                        raise ArgumentError(
                            f"setting {setting.name!r} derives from {dep!r}, which is not an earlier setting"
                        )
            seen.add(setting.name)
            env_vars.add(setting.env_var)
        for process in self.processes:
            unknown = [name for name in process.settings if name not in seen]
            if unknown:
                raise ArgumentError(f"process {process.name!r} names unknown settings {unknown}")
        for binding in self.bindings:
            if binding.setting not in seen:
                raise ArgumentError(f"binding {binding} names an unknown setting")
        for entry in self.method_settings:
            if not (isinstance(entry, tuple) and len(entry) == 2 and all(isinstance(x, str) for x in entry)):
                raise ArgumentError(
                    f"methods entry {entry!r} is not accepted; give (pattern, setting) pairs of "
                    "strings, e.g. ('pkg.Service/Method', 'default')"
                )
            if entry[1] not in seen:
                raise ArgumentError(
                    f"methods entry {entry!r} names an unknown setting; the settings: {', '.join(seen)}"
                )

    @property
    def method_settings(self) -> tuple[tuple[str, str], ...]:
        """``methods`` as ``(pattern, setting)`` pairs, in order."""
        methods = self.methods
        return tuple(methods.items()) if isinstance(methods, Mapping) else methods

    def setting_for(self, method: str) -> str | None:
        """The setting that governs ``method``'s timeout (``"pkg.Service/Method"``), if any."""
        method = method.lstrip("/")
        for pattern, setting in self.method_settings:
            if fnmatch.fnmatchcase(method, pattern.lstrip("/")):
                return setting
        return None

    def ambiguous(self, name: str) -> tuple[str, ...]:
        """The settings that ``name`` could mean, when cascades combined into this one each have
        a setting of that name (then each is called by its cascade's name); none otherwise."""
        return ()

    @property
    def names(self) -> tuple[str, ...]:
        """The settings' names, in cascade order."""
        return tuple(s.name for s in self.settings)

    @property
    def env_vars(self) -> tuple[str, ...]:
        """The settings' environment variables, in cascade order."""
        return tuple(s.env_var for s in self.settings)

    def __getitem__(self, name: str) -> Setting:
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise KeyError(name)

    def __iter__(self) -> Iterator[Setting]:
        return iter(self.settings)

    def __len__(self) -> int:
        return len(self.settings)

    def resolve(self, environ: Mapping[str, str], origins: Mapping[str, str] | None = None) -> Resolved:
        """Resolve every setting from ``environ``; pure, and never raises for bad values.

        ``origins`` maps an env var to where its value came from ("marker on test_x");
        anything not named there came from "environment".
        """
        origins = origins or {}
        values: dict[str, object] = {}
        errors: dict[str, CascadeError] = {}
        raws: dict[str, str | None] = {}
        explicit: dict[str, bool] = {}
        sources: dict[str, str] = {}
        reader = f"{self.reader} itself" if self.reader else "its reader"
        for setting in self.settings:
            raw = environ.get(setting.env_var)
            origin = origins.get(setting.env_var, "environment")
            raws[setting.name] = raw
            is_set = setting.rule.is_set(raw)
            explicit[setting.name] = is_set
            if is_set:
                assert raw is not None
                where = f"{setting.env_var}={raw!r} ({origin})"
                sources[setting.name] = where
                try:
                    values[setting.name] = setting.rule.parse(raw)
                except PARSE_ERRORS as exc:
                    refusal = (
                        setting.rule.refusal(exc) or f"{reader} raises {type(exc).__name__} there ({exc})"
                    )
                    errors[setting.name] = CascadeError(
                        f"{where} is not {setting.rule.accepts}: {refusal}",
                        setting=setting.name,
                        env_var=setting.env_var,
                        value=raw,
                        origin=origin,
                    )
                continue
            unset = "" if raw is None else f" ({setting.env_var}={raw!r} counts as unset)"
            default = setting.default
            if not isinstance(default, (Ref, Max)):
                values[setting.name] = default
                sources[setting.name] = f"default: {default!r}{unset}"
                continue
            broken = [dep for dep in default.depends_on if dep in errors]
            if broken:
                cause = errors[broken[0]]
                sources[setting.name] = f"derived from {broken[0]}, which is invalid"
                errors[setting.name] = CascadeError(
                    f"{setting.name} derives from {broken[0]}, which is invalid: {cause}",
                    setting=setting.name,
                    env_var=cause.env_var,
                    value=cause.value,
                    origin=cause.origin,
                )
                continue
            values[setting.name] = default.evaluate(values)
            sources[setting.name] = f"derived: {default.describe(values)}{unset}"
        if self.read_together and errors:
            cause = next(iter(errors.values()))
            for name in self.names:
                if name not in errors:
                    errors[name] = CascadeError(
                        f"{name} is not read: {reader} reads every variable at once, and "
                        f"{cause.env_var} fails it: {cause}",
                        setting=name,
                        env_var=cause.env_var,
                        value=cause.value,
                        origin=cause.origin,
                    )
        return Resolved(self, values, errors, raws, explicit, sources)


class Resolved(Mapping[str, object]):
    """A cascade's values for one environment: ``r.sensor``, ``r["sensor"]``, ``r.source("sensor")``.

    Reading a setting whose variable does not parse (or that derives from one that does not)
    raises :class:`CascadeError`; ``errors`` lists those settings.
    """

    __slots__ = ("_cascade", "_errors", "_explicit", "_raws", "_sources", "_values")

    _cascade: Cascade
    _values: Mapping[str, object]
    _errors: Mapping[str, CascadeError]
    _raws: Mapping[str, str | None]
    _explicit: Mapping[str, bool]
    _sources: Mapping[str, str]

    def __init__(
        self,
        cascade: Cascade,
        values: Mapping[str, object],
        errors: Mapping[str, CascadeError],
        raws: Mapping[str, str | None],
        explicit: Mapping[str, bool],
        sources: Mapping[str, str],
    ) -> None:
        fields: dict[str, object] = {
            "_cascade": cascade,
            "_values": MappingProxyType(dict(values)),
            "_errors": MappingProxyType(dict(errors)),
            "_raws": MappingProxyType(dict(raws)),
            "_explicit": MappingProxyType(dict(explicit)),
            "_sources": MappingProxyType(dict(sources)),
        }
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Resolved is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Resolved is frozen")

    @property
    def cascade(self) -> Cascade:
        return self._cascade

    @property
    def errors(self) -> Mapping[str, CascadeError]:
        """The settings that cannot be read, each with its error."""
        return self._errors

    def __getitem__(self, name: str) -> object:
        if name in self._errors:
            raise self._errors[name]
        return self._values[name]

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{self._cascade.name} cascade has no setting {name!r}; "
                f"settings: {', '.join(self._cascade.names)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._cascade.names)

    def __len__(self) -> int:
        return len(self._cascade.names)

    def __contains__(self, name: object) -> bool:
        return name in self._cascade.names

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resolved):
            return NotImplemented
        return (
            self._cascade == other._cascade
            and dict(self._values) == dict(other._values)
            and set(self._errors) == set(other._errors)
        )

    __hash__ = None  # type: ignore[assignment]

    def source(self, name: str) -> str:
        """Where the setting's value came from, in words."""
        self._cascade[name]
        return self._sources[name]

    def raw(self, name: str) -> str | None:
        """The variable's text as found (None when absent)."""
        self._cascade[name]
        return self._raws[name]

    def is_explicit(self, name: str) -> bool:
        """Whether the variable counted as set (so the default did not apply)."""
        self._cascade[name]
        return self._explicit[name]

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The env-var strings that reproduce this resolution, e.g. for a subprocess.

        Without ``base``: the cascade's variables that are present. With ``base`` (such as
        ``os.environ``): a copy of it whose cascade variables are replaced by these.
        """
        env = {k: v for k, v in (base or {}).items() if k not in self._cascade.env_vars}
        for setting in self._cascade.settings:
            raw = self._raws[setting.name]
            if raw is not None:
                env[setting.env_var] = raw
        return env

    def __repr__(self) -> str:
        parts = []
        for name in self._cascade.names:
            shown = "<invalid>" if name in self._errors else repr(self._values[name])
            parts.append(f"{name}={shown}")
        return f"Resolved({self._cascade.name}: {', '.join(parts)})"


def _is_resolved_attribute(name: str) -> bool:
    """Whether ``resolved.<name>`` finds a class attribute (a method) instead of the setting."""
    return any(name in vars(klass) for klass in Resolved.__mro__)


_GRACE_CUT = (
    "in-flight {term} calls (up to {term_value} s) are cut at shutdown after {value} s: the "
    "client sees UNAVAILABLE 'Cancelling all calls' while the server may still finish the work"
)
_REPOSITORY_FLOOR = (
    "repository loads slower than {value} s fail with DEADLINE_EXCEEDED, below the "
    "{term_value} s Dagster uses when the variable is unset"
)

_CLICK_INT = "`dagster api grpc` refuses it: click reports it is not a valid integer ({exc})"
_CLICK_INT_START = "`dagster code-server start` refuses it: click reports it is not a valid integer ({exc})"


def _byte_limits_asymmetry(resolved: Resolved) -> list[Finding]:
    """A receive limit raised without the send limit (or the other way): Dagster's processes
    share these variables, and the message between the two limits fails on one side."""
    if {"max_rx_bytes", "max_send_bytes"} & set(resolved.errors):
        return []
    rx, send = resolved["max_rx_bytes"], resolved["max_send_bytes"]
    if not isinstance(rx, int) or not isinstance(send, int):
        return []
    # 0, below -1 and beyond 32 bits get findings of their own; -1 is no limit at all
    if any(limit == 0 or limit < -1 or limit > INT32_MAX for limit in (rx, send)):
        return []
    rx_limit = math.inf if rx == -1 else rx
    send_limit = math.inf if send == -1 else send
    if rx_limit > send_limit:
        return [
            (
                "warning",
                ("max_rx_bytes", "max_send_bytes"),
                f"max_rx_bytes {rx} > max_send_bytes {send}: a message between the two (a large "
                "repository snapshot, say) is accepted by the receiving side but not sent: the "
                "code server fails it with RESOURCE_EXHAUSTED 'SERVER: Sent message larger than "
                "max'. Raise DAGSTER_GRPC_MAX_SEND_BYTES with DAGSTER_GRPC_MAX_RX_BYTES.",
            )
        ]
    if send_limit > rx_limit:
        return [
            (
                "warning",
                ("max_rx_bytes", "max_send_bytes"),
                f"max_send_bytes {send} > max_rx_bytes {rx}: a message between the two is sent "
                "but refused by the receiving side with RESOURCE_EXHAUSTED 'Received message "
                "larger than max'. Raise DAGSTER_GRPC_MAX_RX_BYTES with DAGSTER_GRPC_MAX_SEND_BYTES.",
            )
        ]
    return []


def _port_and_socket(resolved: Resolved, port_name: str, socket_name: str, command: str) -> list[Finding]:
    """Dagster's two checks of a server command's port and socket: `not (port or (socket and not
    (port and socket)))` in the command and `(port or socket) and not (port and socket)` in
    DagsterGrpcServer. Both test the port's truth: a port of 0 with a socket passes both and the
    server listens on the socket."""
    if {port_name, socket_name} & set(resolved.errors):
        return []
    port, socket = resolved[port_name], resolved[socket_name]
    port_var, socket_var = resolved.cascade[port_name].env_var, resolved.cascade[socket_name].env_var
    if port and socket is not None:
        return [
            (
                "error",
                (port_name, socket_name),
                f"{port_var}={resolved.raw(port_name)!r} and {socket_var}="
                f"{resolved.raw(socket_name)!r} are both set: `{command}` fails with "
                "CheckError 'You must pass one and only one of `port` or `socket`.'",
            )
        ]
    if port == 0 and socket is None:
        return [
            (
                "error",
                (port_name,),
                f"{port_var}={resolved.raw(port_name)!r} (port 0) with no {socket_var}: "
                f"`{command}` fails with UsageError 'You must pass one and only one of "
                "--port/-p or --socket/-s.'",
            )
        ]
    if isinstance(port, int) and socket is None and not 0 <= port <= 65535:
        # checked after Dagster's own checks, which come first in the command
        return [
            (
                "error",
                (port_name,),
                f"{port_var}={resolved.raw(port_name)!r} is not a TCP port (0 to 65535): `{command}` "
                "fails when grpc cannot bind it",
            )
        ]
    return []


def _dagster_server_checks(resolved: Resolved) -> list[Finding]:
    """The rules of `dagster api grpc` and `dagster code-server start` that span settings."""
    found: list[Finding] = _byte_limits_asymmetry(resolved)
    found += _port_and_socket(resolved, "port", "socket", "dagster api grpc")
    found += _port_and_socket(resolved, "code_server_port", "code_server_socket", "dagster code-server start")
    if "restart_interval" not in resolved.errors:
        interval = resolved["restart_interval"]
        if isinstance(interval, int) and interval <= 0:
            found.append(
                (
                    "warning",
                    ("restart_interval",),
                    f"restart_interval {interval} <= 0: `dagster dev` checks the code server "
                    "processes it manages in a busy loop, using a whole CPU core, instead of every "
                    "few seconds (`dagster code-server start` and `dagster api grpc` never read it)",
                )
            )
    if "max_workers" not in resolved.errors:
        workers = resolved["max_workers"]
        if isinstance(workers, int) and workers < 1:
            found.append(
                (
                    "error",
                    ("max_workers",),
                    f"max_workers {workers} < 1: grpc's thread pool raises ValueError "
                    "'max_workers must be greater than 0' when the server starts",
                )
            )
        elif workers == 1:
            found.append(
                (
                    "warning",
                    ("max_workers",),
                    "max_workers 1: one slow call blocks every other call to the code server, "
                    "and `dagster api grpc --heartbeat` refuses it (it needs None or more than 1)",
                )
            )
    if "code_server_max_workers" not in resolved.errors:
        workers = resolved["code_server_max_workers"]
        if isinstance(workers, int) and workers < 1:
            found.append(
                (
                    "error",
                    ("code_server_max_workers",),
                    f"code_server_max_workers {workers} < 1: `dagster code-server start`'s thread "
                    "pool raises ValueError 'max_workers must be greater than 0' when it starts",
                )
            )
    return found


#: Dagster 1.13's gRPC timeout cascade (``dagster/_grpc/utils.py``).
DAGSTER = Cascade(
    name="dagster",
    reader="Dagster",
    settings=(
        Setting(
            "default",
            "DAGSTER_GRPC_TIMEOUT_SECONDS",
            60,
            kind="seconds",
            doc="timeout of most calls to a code server, in whole seconds",
        ),
        Setting(
            "repository",
            "DAGSTER_REPOSITORY_GRPC_TIMEOUT_SECONDS",
            Max(180, "default"),
            kind="seconds",
            floor_consequence=_REPOSITORY_FLOOR,
            doc="timeout of the calls that load repository definitions",
        ),
        Setting(
            "schedule",
            "DAGSTER_SCHEDULE_GRPC_TIMEOUT_SECONDS",
            Ref("default"),
            kind="seconds",
            doc="timeout of schedule evaluation calls",
        ),
        Setting(
            "sensor",
            "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS",
            Ref("default"),
            kind="seconds",
            doc="timeout of sensor evaluation calls",
        ),
        Setting(
            "grace",
            "DAGSTER_GRPC_SHUTDOWN_GRACE_PERIOD",
            Max("default", "schedule", "sensor"),
            kind="grace",
            floor_consequence=_GRACE_CUT,
            doc="seconds a stopping code server lets in-flight calls finish "
            "(repository is not part of the default: Dagster leaves it out)",
        ),
        Setting(
            "max_rx_bytes",
            "DAGSTER_GRPC_MAX_RX_BYTES",
            100_000_000,
            kind="bytes",
            doc="largest message a server or client accepts",
        ),
        Setting(
            "max_send_bytes",
            "DAGSTER_GRPC_MAX_SEND_BYTES",
            100_000_000,
            kind="bytes",
            doc="largest message a server or client sends",
        ),
        Setting(
            "restart_interval",
            "DAGSTER_CODE_SERVER_AUTO_RESTART_INTERVAL",
            5,
            rule=WholeNumber(empty_is_unset=False),
            doc="seconds `dagster dev` waits between checks of the code server processes it "
            "manages, restarting one that exited (read as int(os.getenv(X, '5')) in "
            "dagster/_cli/proxy_server_manager.py, so an empty value is an error there); "
            "`dagster code-server start` and `dagster api grpc` never read it; the environment "
            "document's 30 is the default of an unused function in dagster/_grpc/server.py",
        ),
        Setting(
            "log_exceptions",
            "DAGSTER_CODE_SERVER_LOG_EXCEPTIONS",
            False,
            rule=Flag(),
            doc="log exceptions of code server calls; any non-empty value turns it on, '0' included",
        ),
        Setting(
            "port",
            "DAGSTER_GRPC_PORT",
            None,
            rule=WholeNumber(reader="click.INT", refuses=_CLICK_INT),
            doc="TCP port of `dagster api grpc` (usually given on its command line)",
        ),
        Setting(
            "socket",
            "DAGSTER_GRPC_SOCKET",
            None,
            rule=Text(),
            doc="unix socket path of `dagster api grpc`; excludes port",
        ),
        Setting(
            "host",
            "DAGSTER_GRPC_HOST",
            "localhost",
            rule=Text(),
            doc="host `dagster api grpc` binds",
        ),
        Setting(
            "max_workers",
            "DAGSTER_GRPC_MAX_WORKERS",
            None,
            rule=WholeNumber(reader="click.INT", refuses=_CLICK_INT),
            doc="worker threads of `dagster api grpc` (None: grpc's default)",
        ),
        Setting(
            "code_server_port",
            "DAGSTER_CODE_SERVER_PORT",
            None,
            rule=WholeNumber(reader="click.INT", refuses=_CLICK_INT_START),
            doc="TCP port of `dagster code-server start`",
        ),
        Setting(
            "code_server_socket",
            "DAGSTER_CODE_SERVER_SOCKET",
            None,
            rule=Text(),
            doc="unix socket path of `dagster code-server start`; excludes code_server_port",
        ),
        Setting(
            "code_server_host",
            "DAGSTER_CODE_SERVER_HOST",
            "localhost",
            rule=Text(),
            doc="host `dagster code-server start` binds",
        ),
        Setting(
            "code_server_max_workers",
            "DAGSTER_CODE_SERVER_MAX_WORKERS",
            None,
            rule=WholeNumber(reader="click.INT", refuses=_CLICK_INT_START),
            doc="worker threads of `dagster code-server start` (None: Python's default)",
        ),
        Setting(
            "startup_timeout",
            "DAGSTER_CODE_SERVER_STARTUP_TIMEOUT",
            0,
            rule=WholeNumber(reader="click.INT", refuses=_CLICK_INT_START),
            doc="seconds `dagster code-server start` waits for its code server process to load (0: no limit)",
        ),
        Setting(
            "heartbeat_ttl",
            "DAGSTER_GRPC_PROXY_HEARTBEAT_TTL_SECONDS",
            30,
            rule=WholeNumber(empty_is_unset=False),
            doc="seconds the code server process of `dagster code-server start` lives without a "
            "heartbeat from it (read as int(os.getenv(X, '30')) when dagster._cli.code_server "
            "is imported, so an empty or bad value fails every `dagster` command)",
        ),
        Setting(
            "heartbeat_timeout",
            "DAGSTER_PROXY_SERVER_HEARTBEAT_TIMEOUT",
            30,
            rule=WholeNumber(empty_is_unset=False),
            doc="seconds `dagster code-server start --heartbeat` waits for a heartbeat before it "
            "shuts down (read as int(os.getenv(X, '30')) when dagster._cli.code_server is "
            "imported)",
        ),
    ),
    checks=(_dagster_server_checks,),
    processes=(
        Process(
            "client",
            "the webserver and the daemon: DagsterGrpcClient calls to code servers",
            ("default", "repository", "schedule", "sensor", "max_rx_bytes", "max_send_bytes"),
        ),
        Process(
            "code-server",
            "`dagster api grpc`: a code server",
            (
                "grace",
                "max_rx_bytes",
                "max_send_bytes",
                "log_exceptions",
                "port",
                "socket",
                "host",
                "max_workers",
            ),
        ),
        Process(
            "code-server-start",
            "`dagster code-server start`: a proxy in front of a `dagster api grpc` process it "
            "starts (which reads the code-server settings)",
            (
                "default",
                "repository",
                "sensor",
                "grace",
                "max_rx_bytes",
                "max_send_bytes",
                "code_server_port",
                "code_server_socket",
                "code_server_host",
                "code_server_max_workers",
                "startup_timeout",
                "heartbeat_ttl",
                "heartbeat_timeout",
            ),
        ),
        Process(
            "dev",
            "`dagster dev`: the webserver, the daemon and the code servers it manages",
            (
                "default",
                "repository",
                "schedule",
                "sensor",
                "grace",
                "max_rx_bytes",
                "max_send_bytes",
                "restart_interval",
                "log_exceptions",
            ),
        ),
    ),
    # Which setting each method of Dagster's API service gets from DagsterGrpcClient (1.13: the
    # timeout its methods pass, read from Dagster's source; tox -e dagster fails when it
    # changes). ShutdownServer (15 s), ReloadCode (the caller's) and RefreshComponentState (a
    # constant of its own) follow no setting.
    methods=(
        ("api.DagsterApi/ExternalRepository", "repository"),
        ("api.DagsterApi/StreamingExternalRepository", "repository"),
        ("api.DagsterApi/SyncExternalScheduleExecution", "schedule"),
        ("api.DagsterApi/ExternalScheduleExecution", "schedule"),
        ("api.DagsterApi/SyncExternalSensorExecution", "sensor"),
        ("api.DagsterApi/ExternalSensorExecution", "sensor"),
        *(
            (f"api.DagsterApi/{method}", "default")
            for method in (
                "CanCancelExecution",
                "CancelExecution",
                "ExecutionPlanSnapshot",
                "ExternalJob",
                "ExternalNotebookData",
                "ExternalPartitionConfig",
                "ExternalPartitionNames",
                "ExternalPartitionSetExecutionParams",
                "ExternalPartitionTags",
                "ExternalPipelineSubsetSnapshot",
                "GetCurrentImage",
                "GetCurrentRuns",
                "GetServerId",
                "Heartbeat",
                "ListRepositories",
                "Ping",
                "ReloadCodeWithState",
                "StartRun",
                "StreamingPing",
            )
        ),
    ),
    # Every module of Dagster 1.13 that copies a timeout at import (tox -e dagster scans Dagster's
    # source and fails on a copy not listed here); the default arguments that name these
    # constants are found in each module's source and follow too.
    bindings=(
        Binding("dagster._grpc.client", "DEFAULT_GRPC_TIMEOUT", "default"),
        Binding("dagster._grpc.client", "DEFAULT_REPOSITORY_GRPC_TIMEOUT", "repository"),
        Binding("dagster._grpc.client", "DEFAULT_SCHEDULE_GRPC_TIMEOUT", "schedule"),
        Binding("dagster._grpc.client", "DEFAULT_SENSOR_GRPC_TIMEOUT", "sensor"),
        Binding("dagster._grpc.proxy_server", "DEFAULT_GRPC_TIMEOUT", "default"),
        Binding("dagster._grpc.proxy_server", "DEFAULT_REPOSITORY_GRPC_TIMEOUT", "repository"),
        Binding("dagster._grpc.proxy_server", "DEFAULT_SENSOR_GRPC_TIMEOUT", "sensor"),
        Binding("dagster._api.snapshot_sensor", "DEFAULT_GRPC_TIMEOUT", "default"),
    ),
)
