//! The crypto market analytics platform built on `streamlib`: producer, validator, dedup,
//! metrics, alerts and the one-process pipeline arrive with issue 5. Today the crate holds the
//! contract tests (`tests/contracts.rs`) for the schemas in `contracts/`.
