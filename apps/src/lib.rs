//! The crypto market analytics platform built on `streamlib` (DESIGN.md §4): the price event
//! contract, the topics, and the configuration shared by the app binaries in `src/bin/`.

pub mod cli;
pub mod event;
pub mod producer;
pub mod topics;
