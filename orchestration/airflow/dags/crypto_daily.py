"""crypto_daily: once a day, the whole day again, then housekeeping.

    wait_for_bronze → silver → gold → load_warehouse → quality_check
                                                     → compact → vacuum
                                                     → maintain_warehouse

The run for day D ([D 00:00, D+1 00:00)) starts at midnight, when the day ends, and first waits for
Bronze like the hourly DAG. Its Silver may commit at the same moment as the last hourly run's:
Delta's optimistic concurrency makes one of them fail, and its retry (both are idempotent)
recomputes on top of the other. Recomputing Silver, Gold and the warehouse over the whole day picks up late Bronze records that
arrived after their hour ran, and rebuilds the day-grain models (daily candles, daily metrics,
dominance) from the complete day. Then the Delta tables are compacted and vacuumed, and the
warehouse gets VACUUM (ANALYZE) (`warehouse maintain`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from crypto_tasks import DEFAULT_ARGS, INTERVAL, bronze_sensor, lake_task, quality_gate

#: Delta files older than this are deleted by vacuum: a week of time travel.
VACUUM_RETENTION_HOURS = 168

with DAG(
    dag_id="crypto_daily",
    description="The day's Silver, Gold and warehouse again (late data), compaction, vacuum",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "execution_timeout": timedelta(hours=1)},
    dagrun_timeout=timedelta(hours=12),
    tags=["crypto", "lake", "warehouse", "maintenance"],
    doc_md=__doc__,
) as dag:
    wait_for_bronze = bronze_sensor("wait_for_bronze", timeout=timedelta(hours=4).total_seconds())
    silver = lake_task("silver", "lakehouse", "silver", '--lake "$lake"', INTERVAL)
    gold = lake_task("gold", "lakehouse", "gold", '--lake "$lake"', INTERVAL)
    load_warehouse = lake_task("load_warehouse", "warehouse", "load", '--lake "$lake"', INTERVAL)
    quality_check = quality_gate("quality_check")
    compact = lake_task("compact", "lakehouse", "compact", '--lake "$lake"')
    vacuum = lake_task(
        "vacuum", "lakehouse", "vacuum", '--lake "$lake"', f"--retention-hours {VACUUM_RETENTION_HOURS}"
    )
    maintain_warehouse = lake_task(
        "maintain_warehouse",
        "warehouse",
        "maintain",
        doc_md="VACUUM (ANALYZE) of the warehouse (WAREHOUSE_URL, else the PG* variables).",
    )

    wait_for_bronze >> silver >> gold >> load_warehouse >> quality_check
    load_warehouse >> compact >> vacuum
    load_warehouse >> maintain_warehouse
