#!/usr/bin/env bash
# The foreign-engine check of the Gold tables, after the Rust test `gold_models` wrote them: read them
# with DuckDB + deltalake from PyPI (pinned in requirements.txt) in a throwaway venv.
#   lake/tests/python/run.sh [DIR]     DIR defaults to the test's folder under CARGO_TARGET_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-${CARGO_TARGET_DIR:-$here/../../../target}/tmp/gold_foreign_engine}"
if [ ! -f "$dir/expected.json" ]; then
  echo "no $dir/expected.json: run the Rust test first:" >&2
  echo "  cargo test --release --locked --workspace --all-features --test gold_models" >&2
  exit 2
fi
venv="${GOLD_CHECK_VENV:-${TMPDIR:-/tmp}/gold-check-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" "$here/check_gold.py" "$dir"
