"""Fixtures of the BI tests. Run them with `scripts/superset test`, which installs the venv from the
lock file, points SUPERSET_HOME at a fresh folder with a set-up SQLite metadata DB, and starts
Kafka and PostgreSQL when KAFKA_BOOTSTRAP / WAREHOUSE_URL are unset.

One warehouse and one Superset serve the whole session: filling the warehouse through the real
binaries and starting Superset are the slow parts, and every test only reads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

BI = Path(__file__).resolve().parents[1]
ROOT = BI.parents[1]
ASSETS = BI / "assets"
# The platform the Airflow tests fill (topics of its own on the real broker, lake-sink, a fresh
# database migrated by `warehouse migrate`): the same real path, shared rather than copied.
sys.path.insert(0, str(ROOT / "orchestration" / "airflow" / "tests"))


def pytest_configure(config):
    if Path(os.environ.get("SUPERSET_CONFIG_PATH", "")).resolve() != BI / "superset_config.py":
        pytest.exit("run these tests with scripts/superset test (it sets SUPERSET_HOME and the config)", 2)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    """A warehouse database filled the production way: the recording replayed by `pipeline` onto
    the broker, sunk to Bronze by `lake-sink`, `lakehouse all` and `warehouse load` over its two
    days, then `warehouse check` over the same interval."""
    from platform_under_test import Platform

    import recording

    for name in ("KAFKA_BOOTSTRAP", "WAREHOUSE_URL", "STREAMLIB_BIN_DIR"):
        if not os.environ.get(name):
            pytest.fail(f"{name} is not set: run these tests with scripts/superset test")
    stack = Platform(
        root=tmp_path_factory.mktemp("platform"), kafka=os.environ["KAFKA_BOOTSTRAP"],
        admin_url=os.environ["WAREHOUSE_URL"], prefix=f"superset-{uuid.uuid4().hex[:10]}.",
        database=f"superset_{uuid.uuid4().hex[:10]}",
    )
    stack.start()
    try:
        stack.replay(recording.lines())
        interval = ["--start", recording.START.isoformat(), "--end", recording.end().isoformat()]
        bins = Path(os.environ["STREAMLIB_BIN_DIR"])
        stack.run([str(bins / "lakehouse"), "all", "--lake", str(stack.lake), *interval], timeout=600)
        stack.run([str(bins / "warehouse"), "load", "--lake", str(stack.lake), *interval], timeout=600)
        # The planted gap of polls is a critical breach: exit code 1, results recorded.
        check = stack.run([str(bins / "warehouse"), "check", "--lake", str(stack.lake), *interval], check=False)
        assert check.returncode == 1, f"warehouse check exited {check.returncode}:\n{check.stdout}\n{check.stderr}"
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def superset(warehouse, tmp_path_factory):
    """`scripts/superset serve` against the test's warehouse: it imports the assets (the URL written
    into a temporary copy), starts the web server on a free port and prints the address once
    /health answers."""
    from superset_api import Superset

    log_path = tmp_path_factory.mktemp("superset") / "serve.log"
    env = {**os.environ, "WAREHOUSE_URL": warehouse.warehouse_url}
    env.pop("SUPERSET_PORT", None)
    with open(log_path, "w") as log:
        server = subprocess.Popen([str(ROOT / "scripts" / "superset"), "serve"], stdout=subprocess.PIPE,
                                  stderr=log, text=True, env=env, start_new_session=True)
        try:
            address = None
            # serve prints its progress, then the address as its last line before it serves;
            # EOF means it exited without serving.
            for line in server.stdout:
                log.write(line)
                log.flush()
                if line.startswith("http://127.0.0.1:"):
                    address = line.strip()
                    break
            if address is None:
                server.wait(timeout=60)
                pytest.fail(f"scripts/superset serve exited {server.returncode}:\n{log_path.read_text()}")
            yield Superset(address, "admin", os.environ["SUPERSET_ADMIN_PASSWORD"])
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
