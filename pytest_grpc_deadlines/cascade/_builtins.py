"""The built-in cascades besides Dagster's: OpenTelemetry's OTLP gRPC exporter and grpcio's
simple stubs, each as its library reads it (checked against the library by ``tox -e otel`` and
``tox -e simple-stubs``), and the names ``grpc_deadlines_cascade`` and ``explain --cascade``
take for them.
"""

from __future__ import annotations

import datetime

from ._cascade import DAGSTER, Binding, Cascade, Setting
from ._rules import OrDefault, Ref, Seconds, WholeNumber

__all__ = ["BUILT_IN", "GRPC_SIMPLE_STUBS", "OTEL_OTLP"]

#: Texts worth drawing for a float() timeout: the edges ``or`` and ``float()`` treat apart.
_FLOAT_EXAMPLES = ("0.5", "1.5", "30", " 2 ", "1e3", "0", "0.0", "-0", "-1", "nan", "inf", "1_000")
_FLOAT_INVALID = ("", "abc", "1.2.3", "1,5", "30s")

_SIGNAL_DOC = (
    "timeout of the OTLP gRPC {signal} exporter, in seconds: float(text) when the variable is set "
    "(an empty value fails), and 0 falls through to OTEL_EXPORTER_OTLP_TIMEOUT "
    "(`timeout or float(environ.get(OTEL_EXPORTER_OTLP_TIMEOUT, 10))`)"
)


def _signal(name: str, signal: str) -> Setting:
    return Setting(
        name,
        f"OTEL_EXPORTER_OTLP_{name.upper()}_TIMEOUT",
        Ref("timeout"),
        rule=OrDefault(
            Seconds(empty_is_unset=False, examples=_FLOAT_EXAMPLES, invalid_examples=_FLOAT_INVALID)
        ),
        kind="seconds",
        doc=_SIGNAL_DOC.format(signal=signal),
    )


#: opentelemetry-exporter-otlp-proto-grpc 1.45's timeouts. Seconds, as its Python code reads
#: them (the OpenTelemetry specification says milliseconds), read when an exporter is made.
OTEL_OTLP = Cascade(
    name="otel_otlp",
    reader="the OTLP gRPC exporter",
    settings=(
        Setting(
            "timeout",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            10.0,
            rule=Seconds(empty_is_unset=False, examples=_FLOAT_EXAMPLES, invalid_examples=_FLOAT_INVALID),
            kind="seconds",
            doc="timeout of every OTLP gRPC export whose signal's own variable is unset or 0, in "
            "seconds: float(environ.get(X, 10)), so an empty value fails",
        ),
        _signal("traces", "span"),
        _signal("metrics", "metric"),
        _signal("logs", "log"),
    ),
    methods=(
        ("opentelemetry.proto.collector.trace.v1.TraceService/Export", "traces"),
        ("opentelemetry.proto.collector.metrics.v1.MetricsService/Export", "metrics"),
        ("opentelemetry.proto.collector.logs.v1.LogsService/Export", "logs"),
    ),
)


def _timedelta(seconds: object) -> object:
    """How grpc's simple stubs keep the eviction period: a timedelta."""
    assert isinstance(seconds, float)
    return datetime.timedelta(seconds=seconds)


class _EvictionSeconds(Seconds):
    """``datetime.timedelta(seconds=float(text))``: NaN, inf and beyond timedelta's range fail."""

    def parse(self, raw: str) -> object:
        return datetime.timedelta(seconds=float(raw)).total_seconds()


_STUBS = "grpc._simple_stubs"
_AT_IMPORT = "importing grpc._simple_stubs (grpc.experimental) fails there ({kind}: {exc})"

#: grpcio's simple stubs (``grpc.experimental``'s ``unary_unary`` and friends): read once, when
#: ``grpc._simple_stubs`` is imported, into module constants and the stubs' default arguments.
GRPC_SIMPLE_STUBS = Cascade(
    name="grpc_simple_stubs",
    reader="grpc's simple stubs",
    settings=(
        Setting(
            "default_timeout",
            "GRPC_PYTHON_DEFAULT_TIMEOUT_SECONDS",
            60.0,
            rule=Seconds(
                empty_is_unset=False,
                refuses=_AT_IMPORT,
                examples=_FLOAT_EXAMPLES,
                invalid_examples=_FLOAT_INVALID,
            ),
            kind="seconds",
            doc="timeout of a simple-stub call that passes none, in seconds (float(text) at import: "
            "an empty or bad value makes importing grpc._simple_stubs fail)",
        ),
        Setting(
            "eviction_seconds",
            "GRPC_PYTHON_MANAGED_CHANNEL_EVICTION_SECONDS",
            600.0,
            rule=_EvictionSeconds(
                empty_is_unset=False,
                refuses=_AT_IMPORT,
                examples=(*_FLOAT_EXAMPLES, "1e300", "86400000000000"),
                invalid_examples=_FLOAT_INVALID,
            ),
            doc="seconds an unused managed channel lives (timedelta(seconds=float(text)) at "
            "import: NaN, inf and beyond timedelta's range fail there too)",
        ),
        Setting(
            "maximum_channels",
            "GRPC_PYTHON_MANAGED_CHANNEL_MAXIMUM",
            256,
            rule=WholeNumber(empty_is_unset=False, refuses=_AT_IMPORT),
            doc="managed channels kept before the oldest is closed (int(text) at import)",
        ),
    ),
    read_together=True,
    bindings=(
        Binding(_STUBS, "_DEFAULT_TIMEOUT", "default_timeout"),
        Binding(_STUBS, "_EVICTION_PERIOD", "eviction_seconds", convert=_timedelta),
        Binding(_STUBS, "_MAXIMUM_CHANNELS", "maximum_channels"),
    ),
)

#: The built-in cascades by the names ``grpc_deadlines_cascade`` and ``explain --cascade`` take.
BUILT_IN: dict[str, Cascade] = {c.name: c for c in (DAGSTER, OTEL_OTLP, GRPC_SIMPLE_STUBS)}
