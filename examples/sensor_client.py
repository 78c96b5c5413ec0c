"""A small client that evaluates a "sensor" over gRPC with the sensor timeout, as Dagster does."""

from __future__ import annotations

import os

import grpc

from pytest_grpc_deadlines.probe import ProbeRequest, ProbeStub


def sensor_timeout() -> int:
    value = os.getenv("DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS") or os.getenv("DAGSTER_GRPC_TIMEOUT_SECONDS")
    return int(value) if value else 60


def evaluate_sensor(channel: grpc.Channel) -> str:
    """Ask the code server to evaluate a sensor; say "timed out" instead of raising."""
    try:
        ProbeStub(channel).Unary(ProbeRequest(), timeout=sensor_timeout())
    except grpc.RpcError as exc:
        if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
            return "timed out"
        raise
    return "ok"
