"""OTEL_OTLP against opentelemetry-exporter-otlp-proto-grpc's own exporters (``tox -e otel``).

Skipped where the exporter is not installed. Each resolver makes the exporter of its signal
(insecure, to a loopback endpoint: no connection is made), reads the timeout it took, and
shuts it down. The general variable alone is what an exporter uses when its signal's variable
is absent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_grpc_deadlines import OTEL_OTLP, assert_cascade_conforms

trace_exporter = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
metric_exporter = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.metric_exporter")
log_exporter = pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc._log_exporter")


def timeout_of(make: Callable[..., Any]) -> Callable[[], object]:
    def resolve() -> object:
        exporter = make(endpoint="127.0.0.1:4317", insecure=True)
        try:
            return exporter._timeout
        finally:
            exporter.shutdown()

    return resolve


@contextmanager
def without(env_var: str) -> Iterator[None]:
    saved = os.environ.pop(env_var, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[env_var] = saved


def general() -> object:
    with without("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"):
        return timeout_of(trace_exporter.OTLPSpanExporter)()


def test_otel_otlp_cascade_conforms_to_the_exporters() -> None:
    resolvers = {
        "timeout": general,
        "traces": timeout_of(trace_exporter.OTLPSpanExporter),
        "metrics": timeout_of(metric_exporter.OTLPMetricExporter),
        "logs": timeout_of(log_exporter.OTLPLogExporter),
    }
    assert_cascade_conforms(OTEL_OTLP, resolvers, max_examples=1000)


def test_the_method_map_names_the_exporters_services() -> None:
    services = {
        "traces": trace_exporter.TraceServiceStub,
        "metrics": metric_exporter.MetricsServiceStub,
        "logs": log_exporter.LogsServiceStub,
    }
    for setting, stub in services.items():
        [pattern] = [p for p, s in OTEL_OTLP.method_settings if s == setting]
        service = pattern.rpartition("/")[0]
        # the generated stub's module names its service in its method paths
        source = __import__(stub.__module__, fromlist=["_"]).__file__
        assert source is not None
        with open(source, encoding="utf-8") as handle:
            assert f"/{service}/Export" in handle.read(), (setting, service)
