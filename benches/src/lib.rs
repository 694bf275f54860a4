//! Benchmarks of `streamlib`: Criterion benches of the operators (`benches/windows.rs`) and the
//! end-to-end harness on a real broker (`src/bin/harness.rs`, see `HARNESS.md`).
