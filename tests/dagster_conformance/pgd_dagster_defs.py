"""Definitions for the Dagster harness tests: a schedule and a sensor that answer at once, and a
schedule that takes 4 s (for the real `dagster code-server start`, where no gate can hold it)."""

import time

import dagster as dg


@dg.op
def hello() -> int:
    return 1


@dg.job
def hello_job() -> None:
    hello()


@dg.schedule(cron_schedule="* * * * *", job=hello_job)
def every_minute(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest()


@dg.schedule(cron_schedule="* * * * *", job=hello_job)
def four_seconds(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    time.sleep(4)  # margin: the schedule Dagster's maintainers describe, 2 s past the proxy hop
    return dg.RunRequest()


@dg.sensor(job=hello_job)
def ping_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    return dg.SkipReason("nothing to do")


defs = dg.Definitions(jobs=[hello_job], schedules=[every_minute, four_seconds], sensors=[ping_sensor])
