"""What every task of the crypto platform's DAGs shares: how it calls the project's binaries.

A task is one call of a binary (`lakehouse`, `warehouse`) over the run's data interval
`[data_interval_start, data_interval_end)`; the binary's exit code decides the task's state.
Nothing here reads the clock: every time comes from the data interval.

Where things come from (all read when the task runs, never when the DAG file is parsed):

- the binaries: the Airflow Variable `streamlib_bin_dir`, else env `STREAMLIB_BIN_DIR`, else PATH;
- the lake: the Variable `lake_url`, else env `LAKE_URL` (required: a task's working folder is a
  temporary one, so the binaries' relative default would point nowhere);
- the Kafka bootstrap servers of the lake sink: the Variable `kafka_bootstrap_servers`, else env
  `KAFKA_BOOTSTRAP_SERVERS`; the sink's routes and id, when not the defaults, from the same
  environment as the sink's own (`LAKE_SINK_TOPICS`, `LAKE_SINK_ID`);
- the warehouse: env `WAREHOUSE_URL` of the worker, else libpq's `PG*` variables (read by the
  `warehouse` binary itself). It is deliberately not a Variable: a templated value is shown in the
  UI's rendered-template view, and this one can carry a password;
- the data-quality rules file: the Variable `dq_rules_file`, else env `DQ_RULES_FILE`, else the
  defaults built into `warehouse check`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.bash import BashSensor

#: The run's data interval as RFC 3339 arguments.
INTERVAL = "--start {{ data_interval_start | ts }} --end {{ data_interval_end | ts }}"

#: `lakehouse bronze-progress` answers 3 while the sink has not committed past the interval end.
NOT_YET_EXIT_CODE = 3

#: Retries with exponential backoff for every task: each job is idempotent for its interval
#: (it replaces exactly that interval's rows), so running it again is always safe.
DEFAULT_ARGS = {
    "owner": "data-platform",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(minutes=20),
}

# Variables reach the shell through the environment, not spliced into the script, so no value
# can break the script's quoting.
_ENV = {
    "STREAMLIB_VAR_BIN_DIR": "{{ var.value.get('streamlib_bin_dir', '') }}",
    "STREAMLIB_VAR_LAKE_URL": "{{ var.value.get('lake_url', '') }}",
    "STREAMLIB_VAR_KAFKA": "{{ var.value.get('kafka_bootstrap_servers', '') }}",
    "STREAMLIB_VAR_DQ_RULES": "{{ var.value.get('dq_rules_file', '') }}",
}

_PRELUDE = r"""set -euo pipefail
bin_dir="${STREAMLIB_VAR_BIN_DIR:-${STREAMLIB_BIN_DIR:-}}"
lake="${STREAMLIB_VAR_LAKE_URL:-${LAKE_URL:-}}"
: "${lake:?set the Airflow Variable lake_url or the environment variable LAKE_URL}"
bin() { if [[ -n "$bin_dir" ]]; then echo "$bin_dir/$1"; else echo "$1"; fi; }
"""


def binary_call(*args: str) -> str:
    """The bash script that runs `args` (a binary's name, then its arguments) with the lake set.

    `$lake`, `$kafka` and `$rules` may appear in the arguments; the binary is `exec`ed, so its exit
    code is the task's.
    """
    name, *rest = args
    return _PRELUDE + f'exec "$(bin {name})" ' + " ".join(rest) + "\n"


def lake_task(task_id: str, *args: str, **kwargs) -> BashOperator:
    """A task that runs one binary (`args`: its name and arguments) over the data interval."""
    return BashOperator(
        task_id=task_id,
        bash_command=binary_call(*args),
        env=_ENV,
        append_env=True,
        **kwargs,
    )


class _InheritingBashSensor(BashSensor):
    """A BashSensor whose script sees the worker's environment plus `env`, like BashOperator's
    `append_env=True` (BashSensor's `env` alone would replace the environment, PATH included)."""

    def poke(self, context):
        self.env = {**os.environ, **(self.env or {})}
        return super().poke(context)


def bronze_sensor(task_id: str, **kwargs) -> BashSensor:
    """Waits until the lake sink has committed every partition past the data interval's end.

    Reschedule mode frees the worker slot between checks; exit 3 means "not yet", any other
    non-zero exit fails the task at once (a broken sensor must not look like a slow sink).
    """
    script = (
        _PRELUDE
        + 'kafka="${STREAMLIB_VAR_KAFKA:-${KAFKA_BOOTSTRAP_SERVERS:-}}"\n'
        + ': "${kafka:?set the Airflow Variable kafka_bootstrap_servers or KAFKA_BOOTSTRAP_SERVERS}"\n'
        + 'exec "$(bin lakehouse)" bronze-progress --lake "$lake" --bootstrap-servers "$kafka" '
        + "--end {{ data_interval_end | ts }}\n"
    )
    return _InheritingBashSensor(
        task_id=task_id,
        bash_command=script,
        env=_ENV,
        retry_exit_code=NOT_YET_EXIT_CODE,
        mode="reschedule",
        poke_interval=60,
        exponential_backoff=True,
        **kwargs,
    )


def quality_gate(task_id: str, **kwargs) -> BashOperator:
    """`warehouse check` over the data interval: records every result, fails on a critical breach.

    No retries: a breach is a fact about the data, not a transient fault. When late data has
    arrived, clear the run (or backfill the interval) and the whole chain recomputes it.
    """
    script = (
        _PRELUDE
        + 'rules="${STREAMLIB_VAR_DQ_RULES:-${DQ_RULES_FILE:-}}"\n'
        + 'exec "$(bin warehouse)" check --lake "$lake" '
        + INTERVAL
        + ' ${rules:+--rules "$rules"}\n'
    )
    return BashOperator(
        task_id=task_id,
        bash_command=script,
        env=_ENV,
        append_env=True,
        retries=0,
        **kwargs,
    )
