"""`airflow dags test crypto_hourly` on the real path: a recording replayed by `pipeline` onto
the real broker, sunk by `lake-sink` into a local-folder lake, then the DAG's tasks (the real
binaries) into a real PostgreSQL warehouse."""

from __future__ import annotations

from platform_under_test import COINS, hour, polls

TASKS = ["wait_for_bronze", "silver", "gold", "load_warehouse", "quality_check"]
CHECKS = 7


def hourly_candles(platform, first: int, last: int):
    """(hour, coin, polls) of fact_candle_hour for hours first..last of the test day."""
    return platform.query(
        "SELECT to_char(f.bucket_start AT TIME ZONE 'UTC', 'HH24'), c.coin_id, f.polls "
        "FROM fact_candle_hour f JOIN dim_coin c USING (coin_key) "
        f"WHERE f.bucket_start >= '{hour(first).isoformat()}' AND f.bucket_start < '{hour(last + 1).isoformat()}' "
        "ORDER BY 1, 2"
    )


def snapshot_counts(platform):
    """(rows, distinct (coin, vs_currency, ts_event)) of fact_price_snapshot."""
    [[rows, distinct]] = platform.query(
        "SELECT count(*), count(DISTINCT (coin_key, vs_currency, ts_event)) FROM fact_price_snapshot"
    )
    return int(rows), int(distinct)


def results_of(platform, end_hour: int):
    """(check, coin, status) recorded for the hourly interval ending at `end_hour`."""
    return platform.query(
        "SELECT check_name, coin_id, status FROM dq_check_result "
        f"WHERE interval_end = '{hour(end_hour).isoformat()}' AND interval_start = '{hour(end_hour - 1).isoformat()}' "
        "ORDER BY 1, 2"
    )


def test_three_consecutive_hours_reach_the_warehouse_and_pass_the_checks(platform):
    platform.replay(polls(hour(0)) + polls(hour(1)) + polls(hour(2)))

    for end in (1, 2, 3):
        run = platform.dags_test("crypto_hourly", hour(end))
        assert run.returncode == 0, run.output
        assert run.states == {task: "success" for task in TASKS}

    coins = sorted(c[0] for c in COINS)
    assert hourly_candles(platform, 0, 23) == [[f"{h:02d}", coin, "12"] for h in (0, 1, 2) for coin in coins]
    assert snapshot_counts(platform) == (3 * 12 * len(COINS), 3 * 12 * len(COINS))
    for end in (1, 2, 3):
        results = results_of(platform, end)
        assert len(results) == CHECKS * len(COINS)
        assert all(status == "pass" for _, _, status in results), results


def test_a_gap_of_polls_fails_the_check_naming_coin_hour_and_kpi(platform):
    missing = {("bitcoin", i) for i in range(3, 8)}
    platform.replay(polls(hour(4), skip=missing))

    run = platform.dags_test("crypto_hourly", hour(5))

    assert run.returncode != 0
    assert run.states == {**{task: "success" for task in TASKS[:-1]}, "quality_check": "failed"}
    assert "completeness: bitcoin 2026-01-01T04:00Z received 7 of 12 polls (KPI ≥ 11)" in run.output
    failed = [(check, coin) for check, coin, status in results_of(platform, 5) if status == "fail"]
    assert failed == [("completeness", "bitcoin")]


def test_a_backfill_after_late_data_gives_the_right_result_without_duplicates(platform):
    late = {("ethereum", i) for i in range(8, 12)}
    platform.replay(polls(hour(6), skip=late))
    first = platform.dags_test("crypto_hourly", hour(7))
    assert first.states["load_warehouse"] == "success"
    assert ["06", "ethereum", "8"] in hourly_candles(platform, 6, 6)

    # The late polls arrive, with a re-sent copy of one the lake already holds.
    platform.replay(polls(hour(6), coins={"ethereum"}, indexes=[8, 9, 10, 11, 0]))
    rerun = platform.dags_test("crypto_hourly", hour(7))

    assert rerun.returncode == 0, rerun.output
    assert rerun.states == {task: "success" for task in TASKS}
    coins = sorted(c[0] for c in COINS)
    assert hourly_candles(platform, 0, 23) == [["06", coin, "12"] for coin in coins]
    assert snapshot_counts(platform) == (12 * len(COINS), 12 * len(COINS))
    results = results_of(platform, 7)
    assert len(results) == CHECKS * len(COINS)
    assert all(status == "pass" for _, _, status in results), results
