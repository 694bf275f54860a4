"""Reads the Gold tables the Rust test `gold_models` wrote with engines that are not ours and
compares them with the values the test computed independently (expected.json).

The Delta log is resolved by the `deltalake` package (which files are live); the data files are
read and queried by DuckDB. Exit 0 when every row and value matches, 1 otherwise.

Usage: check_gold.py DIR   (DIR holds lake/ and expected.json; the test writes
       $CARGO_TARGET_TMPDIR/gold_foreign_engine)
"""

import datetime
import json
import math
import sys
from pathlib import Path

import duckdb
from deltalake import DeltaTable


def live_rows(table_path: Path):
    """Every live row of a Delta table: the log from deltalake, the Parquet files through DuckDB.
    Partition values are not in Delta's data files; DuckDB reads them from the hive-style paths."""
    table = DeltaTable(str(table_path))
    files = [uri.removeprefix("file://") for uri in table.file_uris()]
    if not files:
        return []
    relation = duckdb.sql(
        "SELECT * FROM read_parquet($files, hive_partitioning = true)",
        params={"files": files},
    )
    columns = relation.columns
    return [dict(zip(columns, values)) for values in relation.fetchall()]


def normalise(row):
    """Timestamps as microseconds since the epoch (key `<name>_us`), dates as ISO text."""
    out = {}
    for name, value in row.items():
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.timezone.utc)
            epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
            out[f"{name}_us"] = (value - epoch) // datetime.timedelta(microseconds=1)
        elif isinstance(value, datetime.date):
            out[name] = value.isoformat()
        else:
            out[name] = value
    return out


def same(got, want):
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, float) or isinstance(got, float):
        return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)
    return str(got) == str(want)


def main(directory: Path) -> int:
    expected = json.loads((directory / "expected.json").read_text())
    failures = []
    for table, spec in expected.items():
        rows = [normalise(row) for row in live_rows(directory / "lake" / table)]
        if "count" in spec:
            if len(rows) != spec["count"]:
                failures.append(f"{table}: {len(rows)} rows, want {spec['count']}")
            continue
        key = spec["key"]
        got = {tuple(str(row[k]) for k in key): row for row in rows}
        want = {tuple(str(row[k]) for k in key): row for row in spec["rows"]}
        if set(got) != set(want):
            failures.append(f"{table}: keys differ: only read {sorted(set(got) - set(want))[:3]}, "
                            f"only expected {sorted(set(want) - set(got))[:3]}")
            continue
        for k, want_row in want.items():
            for field, value in want_row.items():
                if not same(got[k].get(field), value):
                    failures.append(f"{table} {k} {field}: read {got[k].get(field)!r}, want {value!r}")
        print(f"{table}: {len(rows)} rows match")
    for failure in failures[:50]:
        print("MISMATCH", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
