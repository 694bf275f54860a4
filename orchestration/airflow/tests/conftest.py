"""Shared fixtures of the DAG tests. Run them with `scripts/airflow test`, which installs the venv
from the lock file, points AIRFLOW_HOME at a fresh folder with a migrated SQLite metadata DB,
and starts Kafka and PostgreSQL when KAFKA_BOOTSTRAP / WAREHOUSE_URL are unset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"


def pytest_configure(config):
    if Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER", "")).resolve() != DAGS_FOLDER:
        pytest.exit("run these tests with scripts/airflow test (it sets AIRFLOW_HOME and the DAGs folder)", 2)


@pytest.fixture(scope="session")
def dagbag():
    """Every DAG of orchestration/airflow/dags, parsed the way the DAG processor parses the
    `dags-folder` bundle (which puts the folder on sys.path, so the DAGs share crypto_tasks.py)."""
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS_FOLDER), bundle_path=DAGS_FOLDER, bundle_name="dags-folder")


@pytest.fixture
def platform(tmp_path):
    """A fresh lake, warehouse database and topic prefix on the real services, with the lake sink."""
    from platform_under_test import Platform

    for name in ("KAFKA_BOOTSTRAP", "WAREHOUSE_URL", "STREAMLIB_BIN_DIR"):
        if not os.environ.get(name):
            pytest.fail(f"{name} is not set: run these tests with scripts/airflow test")
    stack = Platform(root=tmp_path, kafka=os.environ["KAFKA_BOOTSTRAP"], admin_url=os.environ["WAREHOUSE_URL"])
    stack.start()
    yield stack
    stack.stop()
