"""The dashboards of bi/superset/assets, imported by `scripts/superset serve` into a real Superset
over a real PostgreSQL warehouse that the real binaries filled (conftest.py): every file arrives,
and every chart of every dashboard answers its data query with rows."""

from __future__ import annotations

from pathlib import Path

import yaml

import recording

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def files(kind: str) -> dict[str, dict]:
    """uuid → content of every YAML file of assets/<kind>."""
    docs = [yaml.safe_load(path.read_text()) for path in sorted((ASSETS / kind).rglob("*.yaml"))]
    return {doc["uuid"]: doc for doc in docs}


def chart_uuids(dashboard: dict) -> set[str]:
    return {item["meta"]["uuid"] for item in dashboard["position"].values()
            if isinstance(item, dict) and item.get("type") == "CHART"}


def rows(superset, chart_id: int) -> list[dict]:
    results = superset.chart_data(chart_id)
    assert results, f"chart {chart_id}: no query results"
    for result in results:
        assert not result.get("error"), f"chart {chart_id}: {result['error']}"
    return [row for result in results for row in result["data"]]


def test_the_files_hold_no_credentials():
    [database] = files("databases").values()
    assert database["sqlalchemy_uri"] == "${WAREHOUSE_URL}"
    for path in ASSETS.rglob("*.yaml"):
        assert "postgres://" not in path.read_text() and "postgresql://" not in path.read_text(), path


def test_every_file_is_imported(superset):
    imported = {kind: {obj["uuid"] for obj in superset.list(kind)} for kind in ("dashboard", "chart", "dataset")}
    for kind in ("dashboard", "chart", "dataset"):
        expected = set(files(f"{kind}s"))
        assert len(expected) > 0
        assert imported[kind] == expected, kind
    [database] = superset.list("database")
    assert database["uuid"] in files("databases")


def test_every_dashboard_has_the_charts_of_its_file(superset):
    by_uuid = files("dashboards")
    dashboards = superset.list("dashboard")
    assert len(dashboards) == 3
    charts = {chart["id"]: chart["uuid"] for chart in superset.list("chart")}
    for dashboard in dashboards:
        on_dashboard = {charts[chart["id"]] for chart in superset.dashboard_charts(dashboard["id"])}
        assert on_dashboard == chart_uuids(by_uuid[dashboard["uuid"]]), dashboard["dashboard_title"]


def test_every_chart_of_every_dashboard_returns_rows(superset):
    empty, answered = [], 0
    for dashboard in superset.list("dashboard"):
        for chart in superset.dashboard_charts(dashboard["id"]):
            answered += 1
            if not rows(superset, chart["id"]):
                empty.append(f"{dashboard['dashboard_title']}: {chart['slice_name']}")
    assert answered == len(files("charts"))
    assert empty == []


def chart_rows(superset, name: str) -> list[dict]:
    [chart] = [chart for chart in superset.list("chart") if chart["slice_name"] == name]
    return rows(superset, chart["id"])


def test_the_charts_show_what_the_recording_planted(superset):
    # The gap of bitcoin polls: one incomplete hour, and the completeness check failed on it.
    incomplete = chart_rows(superset, "Incomplete hours")
    assert [(row["coin_id"], row["polls_received"], row["polls_expected"]) for row in incomplete] == [
        ("bitcoin", 6, 12)
    ]
    failed = chart_rows(superset, "Failed and warning checks")
    assert [(row["check_name"], row["coin_id"], row["status"]) for row in failed] == [
        ("completeness", "bitcoin", "fail")
    ]
    # The solana crash: alerts of solana only, price_move among them.
    feed = chart_rows(superset, "Alert feed")
    assert {row["coin_id"] for row in feed} == {"solana"}
    assert "price_move" in {row["rule"] for row in feed}
    # Every coin of the recording has a price and a dominance share.
    coins = {coin for coin, *_ in recording.COINS}
    assert {row["coin_id"] for row in chart_rows(superset, "Coins")} == coins
    shares = {row["coin_id"]: row["share"] for row in chart_rows(superset, "Market-cap dominance")}
    assert set(shares) == coins and abs(sum(shares.values()) - 1) < 1e-9
