# Sourced by the scripts that build: one profile (release), one feature set (the whole workspace,
# all features) and one target folder, so that `scripts/pipeline`, `scripts/test` and
# `scripts/peers` share every compiled dependency and none of them rebuilds RocksDB or librdkafka
# after another (../shared/REFERENCE.md §D: a changed feature or profile costs ~10 minutes).
export CARGO_INCREMENTAL=0
if [[ -z "${CARGO_TARGET_DIR:-}" && -d /work/target ]]; then
  # This machine's shared build folder, when there is one.
  export CARGO_TARGET_DIR=/work/target
fi
# The workspace's crates are compiled by clippy-driver (scripts/lib/clippy-rustc), so a build
# also lints them and `scripts/test` needs no separate `cargo clippy` pass over the dependencies.
# Every script sets it, so they share the workspace's compiled crates too.
export RUSTC_WORKSPACE_WRAPPER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/clippy-rustc"
CARGO_FLAGS=(--release --locked --workspace --all-features)
BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"
