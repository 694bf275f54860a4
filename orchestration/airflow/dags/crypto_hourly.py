"""crypto_hourly: every hour's data interval from the lake sink's Bronze to the warehouse.

    wait_for_bronze → silver → gold → load_warehouse → quality_check

`CronDataIntervalTimetable` gives each run a real interval: the run for [04:00, 05:00) starts at
05:00 (a plain cron schedule would give a zero-length interval). The jobs replace exactly their
interval's rows, so a retry, a cleared run and a backfill all give the same result.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from crypto_tasks import DEFAULT_ARGS, INTERVAL, bronze_sensor, lake_task, quality_gate

with DAG(
    dag_id="crypto_hourly",
    description="Bronze → Silver → Gold → warehouse → data-quality checks, per hour",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    dagrun_timeout=timedelta(hours=6),
    tags=["crypto", "lake", "warehouse"],
    doc_md=__doc__,
) as dag:
    wait_for_bronze = bronze_sensor(
        "wait_for_bronze",
        timeout=timedelta(hours=2).total_seconds(),
        doc_md="The lake sink has committed every partition past the interval's end.",
    )
    silver = lake_task(
        "silver",
        "lakehouse",
        "silver",
        '--lake "$lake"',
        INTERVAL,
        doc_md="Bronze → silver/prices (+ quarantine, dead letters, alerts) for the interval.",
    )
    gold = lake_task(
        "gold",
        "lakehouse",
        "gold",
        '--lake "$lake"',
        INTERVAL,
        doc_md="Silver → the Gold models of the interval (hourly candles, data quality, and the "
        "day-grain models of the day it touches).",
    )
    load_warehouse = lake_task(
        "load_warehouse",
        "warehouse",
        "load",
        '--lake "$lake"',
        INTERVAL,
        doc_md="Gold → the warehouse's star schema, replacing the interval's rows.",
    )
    quality_check = quality_gate(
        "quality_check",
        execution_timeout=timedelta(minutes=10),
        doc_md="`warehouse check`: results in dq_check_result; fails on a critical breach.",
    )

    wait_for_bronze >> silver >> gold >> load_warehouse >> quality_check
