"""The DAG files import cleanly and have the shape the platform relies on."""

from __future__ import annotations

import pendulum
import pytest

from airflow.timetables.interval import CronDataIntervalTimetable



def utc(*fields):
    return pendulum.datetime(*fields, tz="UTC")


EXPECTED = {
    "crypto_hourly": {
        "wait_for_bronze": [],
        "silver": ["wait_for_bronze"],
        "gold": ["silver"],
        "load_warehouse": ["gold"],
        "quality_check": ["load_warehouse"],
    },
    "crypto_daily": {
        "wait_for_bronze": [],
        "silver": ["wait_for_bronze"],
        "gold": ["silver"],
        "load_warehouse": ["gold"],
        "quality_check": ["load_warehouse"],
        "compact": ["load_warehouse"],
        "vacuum": ["compact"],
        "maintain_warehouse": ["load_warehouse"],
    },
}


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags(dagbag):
    assert sorted(dagbag.dag_ids) == sorted(EXPECTED)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_tasks_and_their_upstreams(dagbag, dag_id):
    dag = dagbag.get_dag(dag_id)
    upstreams = {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks}
    assert upstreams == EXPECTED[dag_id]


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_no_cycles(dagbag, dag_id):
    dagbag.get_dag(dag_id).check_cycle()


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_every_task_retries_with_backoff_within_a_timeout(dagbag, dag_id):
    for task in dagbag.get_dag(dag_id).tasks:
        assert task.execution_timeout is not None or task.timeout, task.task_id
        if task.task_id != "quality_check":
            assert task.retries >= 1 and task.retry_exponential_backoff, task.task_id
    sensor = dagbag.get_dag(dag_id).get_task("wait_for_bronze")
    assert sensor.mode == "reschedule" and sensor.timeout > 0 and sensor.retry_exit_code == 3


def test_hourly_runs_cover_whole_hours(dagbag):
    timetable = dagbag.get_dag("crypto_hourly").timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    interval = timetable.infer_manual_data_interval(run_after=utc(2026, 1, 1, 5))
    assert (interval.start, interval.end) == (
        utc(2026, 1, 1, 4),
        utc(2026, 1, 1, 5),
    )


def test_daily_runs_cover_whole_days(dagbag):
    timetable = dagbag.get_dag("crypto_daily").timetable
    interval = timetable.infer_manual_data_interval(run_after=utc(2026, 1, 2))
    assert (interval.start, interval.end) == (
        utc(2026, 1, 1),
        utc(2026, 1, 2),
    )


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_jobs_take_the_data_interval_and_never_the_clock(dagbag, dag_id):
    for task in dagbag.get_dag(dag_id).tasks:
        command = task.bash_command
        assert "now" not in command, task.task_id
        if task.task_id in ("silver", "gold", "load_warehouse", "quality_check"):
            assert "--start {{ data_interval_start | ts }} --end {{ data_interval_end | ts }}" in command
