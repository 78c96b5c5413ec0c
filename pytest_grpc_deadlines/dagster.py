"""Dagster's own gRPC servers, hosted in-process on the plugin's test servers.

Needs the ``dagster`` extra (``pip install "pytest-grpc-deadlines[dagster]"``); Dagster is
imported when a server is made, never when the plugin loads.

:class:`DagsterCodeServer` hosts Dagster's real ``DagsterApiServer`` (what ``dagster api grpc``
serves) for a definitions module, with Dagster's health service and gzip compression and the
cascade's byte limits, on a :class:`~pytest_grpc_deadlines.GrpcTestServer`. Every call is
recorded, and the plugin's delays, gates and faults apply to Dagster's methods: a schedule or
sensor call can be held on a gate instead of a schedule that sleeps. It hands a
``DagsterGrpcClient`` and the arguments a sensor or schedule call needs.

:class:`DagsterProxy` puts Dagster's own ``DagsterProxyApiServicer`` (what ``dagster code-server
start`` serves) in front of a code server, also in-process, so the proxy hop is tested without
a subprocess: the code server's record of a forwarded call shows the deadline the proxy gave it.

Usable without pytest, as context managers; the plugin's fixtures ``grpc_dagster_code_server``
and ``grpc_dagster_proxy`` make one per test.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
import threading
from types import TracebackType
from typing import Any

import grpc

from ._errors import ArgumentError, MissingExtraError
from .cascade import DAGSTER, Cascade
from .servers._options import Transport
from .servers._sync import GrpcTestServer

__all__ = ["INSTALL_HINT", "DagsterCodeServer", "DagsterProxy"]

INSTALL_HINT = 'pip install "pytest-grpc-deadlines[dagster]"'

#: The location name the servers report unless told otherwise.
LOCATION = "test_location"
#: The repository name of a module that defines a ``Definitions`` object.
REPOSITORY = "__repository__"


def _dagster(module: str, user: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{user} needs Dagster, which could not be imported ({exc}); install the dagster "
            f"extra: {INSTALL_HINT}"
        ) from exc


def _address(target: str) -> dict[str, Any]:
    """``DagsterGrpcClient`` and origin keyword arguments for a test server's target."""
    if target.startswith("unix:"):
        return {"host": "localhost", "port": None, "socket": target[len("unix:") :]}
    host, _, port = target.rpartition(":")
    return {"host": host.strip("[]"), "port": int(port), "socket": None}


class _Hosted:
    """A Dagster servicer on a test server, with Dagster's health service and compression."""

    server: GrpcTestServer

    def __init__(self, transport: Transport, cascade: Cascade, location_name: str) -> None:
        if not isinstance(location_name, str) or not location_name:
            raise ArgumentError(f"location_name={location_name!r} must be a non-empty str")
        self._transport: Transport = transport
        self._cascade = cascade
        self.location_name = location_name
        self._started = False

    def _host(self, servicer: Any) -> None:
        api = _dagster("dagster._grpc.__generated__.dagster_api_pb2_grpc", type(self).__name__)
        health = _dagster("grpc_health.v1.health", type(self).__name__)
        health_pb2 = _dagster("grpc_health.v1.health_pb2", type(self).__name__)
        health_grpc = _dagster("grpc_health.v1.health_pb2_grpc", type(self).__name__)
        checker = health.HealthServicer()
        self.server = GrpcTestServer(
            (api.add_DagsterApiServicer_to_server, servicer),
            (health_grpc.add_HealthServicer_to_server, checker),
            transport=self._transport,
            # as DagsterGrpcServer: grpc.server(..., compression=grpc.Compression.Gzip)
            options={"grpc.default_compression_algorithm": int(grpc.Compression.Gzip)},
            cascade=self._cascade,
        )
        self.server.start()
        checker.set("DagsterApi", health_pb2.HealthCheckResponse.SERVING)

    @property
    def target(self) -> str:
        return self.server.target

    def client(self) -> Any:
        """A ``DagsterGrpcClient`` to this server (Dagster's own client, a channel per call)."""
        client = _dagster("dagster._grpc.client", type(self).__name__)
        return client.DagsterGrpcClient(**_address(self.target))

    def origin(self, repository_name: str = REPOSITORY) -> Any:
        """The ``RemoteRepositoryOrigin`` a sensor or schedule call names, for this server."""
        origins = _dagster("dagster._core.remote_origin", type(self).__name__)
        location = origins.GrpcServerCodeLocationOrigin(
            location_name=self.location_name, **_address(self.target)
        )
        return origins.RemoteRepositoryOrigin(code_location_origin=location, repository_name=repository_name)


class DagsterCodeServer(_Hosted):
    """Dagster's ``DagsterApiServer`` for a definitions module, in-process (see the module)."""

    def __init__(
        self,
        module_name: str | None = None,
        *,
        python_file: str | None = None,
        attribute: str | None = None,
        working_directory: str | None = None,
        location_name: str = LOCATION,
        transport: Transport = "tcp",
        cascade: Cascade = DAGSTER,
    ) -> None:
        super().__init__(transport, cascade, location_name)
        if (module_name is None) == (python_file is None):
            raise ArgumentError(
                f"module_name={module_name!r}, python_file={python_file!r}: give exactly one, "
                "naming the definitions the code server loads (as `dagster api grpc -m` or -f)"
            )
        self._target = {
            "module_name": module_name,
            "python_file": python_file,
            "attribute": attribute,
            "working_directory": working_directory,
        }
        self._instance_dir: str | None = None
        self._termination = threading.Event()
        self._executor: Any = None
        self._servicer: Any = None

    def start(self) -> DagsterCodeServer:
        if self._started:
            return self
        server_module = _dagster("dagster._grpc.server", "DagsterCodeServer")
        utils = _dagster("dagster._core.utils", "DagsterCodeServer")
        origins = _dagster("dagster._core.types.loadable_target_origin", "DagsterCodeServer")
        self._executor = utils.FuturesAwareThreadPoolExecutor(
            max_workers=8, thread_name_prefix="grpc-deadlines-dagster"
        )
        try:
            self._servicer = server_module.DagsterApiServer(
                server_termination_event=self._termination,
                logger=logging.getLogger("dagster.code_server"),
                server_threadpool_executor=self._executor,
                loadable_target_origin=origins.LoadableTargetOrigin(**self._target),
                location_name=self.location_name,
            )
            self._host(self._servicer)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        self._started = True
        return self

    @property
    def instance_ref(self) -> Any:
        """An ``InstanceRef`` to a Dagster instance in a temporary directory, removed at close."""
        if self._instance_dir is None:
            ref = _dagster("dagster._core.instance.ref", "DagsterCodeServer")
            self._instance_dir = tempfile.mkdtemp(prefix="grpc-deadlines-dagster-")
            self._ref = ref.InstanceRef.from_dir(self._instance_dir)
        return self._ref

    def schedule_args(self, schedule_name: str, *, timeout: int | None = None, **fields: Any) -> Any:
        """``ExternalScheduleExecutionArgs`` for ``schedule_name`` on this server."""
        types = _dagster("dagster._grpc.types", "DagsterCodeServer")
        return types.ExternalScheduleExecutionArgs(
            repository_origin=fields.pop("repository_origin", self.origin()),
            instance_ref=self.instance_ref,
            schedule_name=schedule_name,
            scheduled_execution_timestamp=fields.pop("scheduled_execution_timestamp", None),
            scheduled_execution_timezone=fields.pop("scheduled_execution_timezone", None),
            log_key=fields.pop("log_key", None),
            timeout=timeout,
            **fields,
        )

    def sensor_args(self, sensor_name: str, *, timeout: int | None = None, **fields: Any) -> Any:
        """``SensorExecutionArgs`` for ``sensor_name`` on this server."""
        types = _dagster("dagster._grpc.types", "DagsterCodeServer")
        defaults = {
            "last_tick_completion_time": None,
            "last_run_key": None,
            "cursor": None,
            "log_key": None,
            "last_sensor_start_time": None,
        }
        return types.SensorExecutionArgs(
            repository_origin=fields.pop("repository_origin", self.origin()),
            instance_ref=self.instance_ref,
            sensor_name=sensor_name,
            timeout=timeout,
            **{**defaults, **fields},
        )

    def close(self) -> None:
        """Stop at once, release held calls, remove the instance directory."""
        if self._started:
            self.server.close()
            self._termination.set()
            self._executor.shutdown(wait=False)
            self._started = False
        if self._instance_dir is not None:
            shutil.rmtree(self._instance_dir, ignore_errors=True)
            self._instance_dir = None

    def __enter__(self) -> DagsterCodeServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DagsterProxy(_Hosted):
    """Dagster's ``DagsterProxyApiServicer`` in front of ``code_server``, in-process: it forwards
    each call with the timeouts ``dagster code-server start`` uses (see the module)."""

    def __init__(self, code_server: DagsterCodeServer, *, transport: Transport = "tcp") -> None:
        if not isinstance(code_server, DagsterCodeServer):
            raise ArgumentError(f"code_server={code_server!r} must be a DagsterCodeServer")
        super().__init__(transport, code_server._cascade, code_server.location_name)
        self.code_server = code_server
        self._termination = threading.Event()
        self._servicer: Any = None

    def start(self) -> DagsterProxy:
        if self._started:
            return self
        self.code_server.start()
        proxy = _dagster("dagster._grpc.proxy_server", "DagsterProxy")
        target = self.code_server

        class _InProcessProxy(proxy.DagsterProxyApiServicer):  # type: ignore[misc, name-defined]
            """Forwards to the in-process code server instead of a process it starts."""

            def _reload_location(self) -> None:
                self._load_error = None
                self._client = target.client()

        origins = _dagster("dagster._core.types.loadable_target_origin", "DagsterProxy")
        self._servicer = _InProcessProxy(
            loadable_target_origin=origins.LoadableTargetOrigin(**target._target),
            fixed_server_id=None,
            container_image=None,
            container_context=None,
            inject_env_vars_from_instance=False,
            location_name=self.location_name,
            log_level="WARNING",
            startup_timeout=0,
            server_termination_event=self._termination,
            instance_ref=None,
            logger=logging.getLogger("dagster.code_server"),
            server_heartbeat=False,
            server_heartbeat_timeout=30,
            heartbeat_ttl=30,
            defs_state_info=None,
        )
        try:
            self._host(self._servicer)
        except BaseException:
            self._stop_servicer()
            raise
        self._started = True
        return self

    def schedule_args(self, schedule_name: str, **kwargs: Any) -> Any:
        """``ExternalScheduleExecutionArgs`` naming this proxy as the code location."""
        return self.code_server.schedule_args(schedule_name, repository_origin=self.origin(), **kwargs)

    def sensor_args(self, sensor_name: str, **kwargs: Any) -> Any:
        """``SensorExecutionArgs`` naming this proxy as the code location."""
        return self.code_server.sensor_args(sensor_name, repository_origin=self.origin(), **kwargs)

    def _stop_servicer(self) -> None:
        self._termination.set()  # ends the servicer's cleanup thread at its next tick
        self._servicer.cleanup()

    def close(self) -> None:
        """Stop the proxy (the code server is closed by whoever made it)."""
        if self._started:
            self.server.close()
            self._stop_servicer()
            self._started = False

    def __enter__(self) -> DagsterProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
