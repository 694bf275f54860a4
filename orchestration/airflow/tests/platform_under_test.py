"""A real platform for the DAG tests: a topic prefix of its own on the real broker, a fresh
PostgreSQL database (migrated with `warehouse migrate`), a local-folder lake, and the lake sink
running against them. Data comes in the real way: a generated /coins/markets recording replayed by
`pipeline --mode replay --until-drained`, sunk to Bronze by `lake-sink`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: Coins of the generated recordings, with a starting price and 24 h volume.
COINS = [("bitcoin", "btc", 90000.0, 3.0e10), ("ethereum", "eth", 3000.0, 1.5e10), ("solana", "sol", 150.0, 4.0e9)]
DAY = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: Seconds after a poll's 5-minute boundary that its `last_updated` says, so every poll's
#: event time stays inside the hour of its boundary.
LAST_UPDATED_AFTER_S = 20


def hour(n: int) -> datetime:
    """Hour n of the test day (2026-01-01T0n:00Z)."""
    return DAY + timedelta(hours=n)



def market_item(coin_id, symbol, rank, price, market_cap, volume, at):
    """One `/coins/markets` item as CoinGecko sends it, with the fields the tests vary."""
    return {
        "id": coin_id, "symbol": symbol, "name": coin_id.title(), "image": "https://example.invalid/x.png",
        "current_price": price, "market_cap": market_cap, "market_cap_rank": rank,
        "fully_diluted_valuation": None, "total_volume": volume, "high_24h": price * 1.01,
        "low_24h": price * 0.99, "price_change_24h": 0.5, "price_change_percentage_24h": 0.3,
        "market_cap_change_24h": 1000.0, "market_cap_change_percentage_24h": 0.3,
        "circulating_supply": 1.0e7, "total_supply": None, "max_supply": None, "ath": price * 2,
        "ath_change_percentage": -50.0, "ath_date": "2021-11-10T14:24:11.849Z", "atl": 1.0,
        "atl_change_percentage": 1000.0, "atl_date": "2015-10-20T00:00:00.000Z", "roi": None,
        "last_updated": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "price_change_percentage_1h_in_currency": 0.1,
    }

def polls(start: datetime, coins=None, indexes=range(12), skip=frozenset()):
    """One /coins/markets response per poll `i` of `indexes` of the hour from `start` (polls every
    5 minutes), with every coin of `coins` except `(coin_id, i)` pairs in `skip`."""
    chosen = [c for c in COINS if coins is None or c[0] in coins]
    lines = []
    for i in indexes:
        at = start + timedelta(minutes=5 * i, seconds=LAST_UPDATED_AFTER_S)
        items = []
        for rank, (coin_id, symbol, base, volume) in enumerate(chosen, 1):
            if (coin_id, i) in skip:
                continue
            steps = int((at - DAY).total_seconds() // 300)
            price = round(base * (1 + 0.0002 * ((steps * 7) % 11 - 5)), 6)
            items.append(market_item(coin_id, symbol, rank, price, round(price * 1e7, 2), volume, at))
        if items:
            lines.append(json.dumps(items))
    return lines


def _binary(name: str) -> str:
    path = Path(os.environ["STREAMLIB_BIN_DIR"]) / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: cargo build --release --locked --workspace --all-features --bins")
    return str(path)


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


@dataclass
class Platform:
    """One test's own lake, warehouse database, topics and lake sink."""

    root: Path
    kafka: str
    admin_url: str
    prefix: str = field(default_factory=lambda: f"airflow-{uuid.uuid4().hex[:10]}.")
    database: str = field(default_factory=lambda: f"airflow_{uuid.uuid4().hex[:10]}")
    sink: subprocess.Popen | None = None
    replays: int = 0

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def warehouse_url(self) -> str:
        return _with_database(self.admin_url, self.database)

    def env(self) -> dict[str, str]:
        """The environment of the Airflow tasks (as an operator would set it on a worker)."""
        return {
            **os.environ,
            "LAKE_URL": str(self.lake),
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "WAREHOUSE_URL": self.warehouse_url,
            # Read by lake-sink and by `lakehouse bronze-progress` alike: the sink's routes and id.
            "LAKE_SINK_TOPICS": self.routes,
            "LAKE_SINK_ID": f"sink-{self.database}",
        }

    @property
    def routes(self) -> str:
        return ",".join(
            f"{self.prefix}{topic}={table}"
            for topic, table in [
                ("crypto.prices.raw", "bronze/prices_raw"),
                ("crypto.prices.dlq", "bronze/dead_letters"),
                ("crypto.alerts", "bronze/alerts"),
            ]
        )

    def start(self) -> None:
        self.lake.mkdir(parents=True)
        self.psql(self.admin_url, f"CREATE DATABASE {self.database}")
        self.run([_binary("warehouse"), "migrate", "--warehouse-url", self.warehouse_url])

    def stop(self) -> None:
        if self.sink is not None:
            self.sink.send_signal(signal.SIGTERM)
            try:
                self.sink.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.sink.kill()
                self.sink.wait()
        self.psql(self.admin_url, f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")

    def run(self, args, timeout=300, check=True, env=None) -> subprocess.CompletedProcess:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env or self.env())
        if check and result.returncode != 0:
            raise AssertionError(f"{args[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def psql(self, url: str, sql: str) -> list[list[str]]:
        """Rows of `sql`, each a list of column texts."""
        out = self.run(["psql", url, "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", sql]).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def query(self, sql: str) -> list[list[str]]:
        """Rows of `sql` in this test's warehouse."""
        return self.psql(self.warehouse_url, sql)

    def replay(self, lines: list[str]) -> None:
        """Produces the recording through the pipeline, then waits until the sink has committed
        everything the broker holds."""
        self.replays += 1
        recording = self.root / f"recording-{self.replays}.jsonl"
        recording.write_text("\n".join(lines) + "\n")
        # The pipeline's own embedded lake and warehouse load are off: here the standalone sink
        # and the DAG's tasks do that work, as in production.
        pipeline_env = {k: v for k, v in self.env().items() if k not in ("LAKE_URL", "WAREHOUSE_URL")}
        self.run([
            _binary("pipeline"), "--bootstrap-servers", self.kafka, "--mode", "replay", "--file", str(recording),
            "--speedup", "0", "--until-drained", "--no-view", "--no-lake", "--topic-prefix", self.prefix,
            "--state-dir", str(self.root / "pipeline-state"),
            # The recordings are of a fixed day of 2026, older than the topics' 30-day retention:
            # Kafka would delete them by their event-time stamps at its next retention check.
            "--keep-records",
        ], timeout=600, env=pipeline_env)
        if self.sink is None:
            # The sink's topics must exist before it subscribes: the first replay creates them.
            with open(self.root / "lake-sink.log", "w") as log:
                self.sink = subprocess.Popen(
                    [_binary("lake-sink"), "--lake", str(self.lake), "--bootstrap-servers", self.kafka,
                     "--flush-records", "50", "--flush-interval-ms", "500"],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                )
        # Nothing is produced after the replay ended, so progress past this moment means the sink
        # reached every partition's high watermark.
        self.await_bronze(datetime.now(timezone.utc))

    def await_bronze(self, end: datetime, deadline_s: float = 180) -> None:
        args = [_binary("lakehouse"), "bronze-progress", "--lake", str(self.lake), "--bootstrap-servers", self.kafka,
                "--end", end.isoformat()]
        deadline = time.monotonic() + deadline_s
        while True:
            result = self.run(args, check=False)
            if result.returncode == 0:
                return
            if result.returncode != 3:
                raise AssertionError(f"bronze-progress exited {result.returncode}: {result.stdout}{result.stderr}")
            if self.sink is not None and self.sink.poll() is not None:
                raise AssertionError(f"lake-sink exited {self.sink.returncode}: see {self.root / 'lake-sink.log'}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the sink did not commit past {end} in {deadline_s} s: {result.stdout}")
            time.sleep(0.5)

    def dags_test(self, dag_id: str, interval_end: datetime) -> "DagRun":
        """`airflow dags test DAG END`: one run over the interval that ends at `interval_end`."""
        result = subprocess.run(
            ["airflow", "dags", "test", dag_id, interval_end.isoformat()],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900, env=self.env(),
        )
        output = result.stdout
        if "DagRun Finished:" not in output:
            raise AssertionError(f"airflow dags test did not finish a run:\n{output}")
        return DagRun(returncode=result.returncode, output=output, states=_task_states(output))


def _task_states(output: str) -> dict[str, str]:
    """Each task's last state, from the `[DAG TEST] starting task_id=…` and `new_state=…` lines
    that `airflow dags test` logs while it runs the tasks one by one."""
    states, task = {}, None
    for line in output.splitlines():
        if started := re.search(r"\[DAG TEST\] starting task_id=(\S+)", line):
            task = started.group(1)
        elif (state := re.search(r"new_state=(\w+)", line)) and task is not None:
            states[task] = state.group(1)
    return states


@dataclass
class DagRun:
    """What `airflow dags test` left: its exit code, its log, each task's final state."""

    returncode: int
    output: str
    states: dict[str, str]
