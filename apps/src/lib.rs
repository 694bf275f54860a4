//! The crypto market analytics platform built on `streamlib` (DESIGN.md §4): the price event
//! contract, the coin reference rows, the topics, the configuration shared by the app binaries
//! in `src/bin/`, and the topology of each stream app (validator, dedup, metrics, alerts), the
//! CoinGecko producer, the apps' interactive queries over HTTP and the live dashboard built on
//! them.

pub mod alerts;
pub mod analytics;
pub mod batch;
pub mod cli;
pub mod counters;
pub mod dashboard;
pub mod dedup;
pub mod event;
pub mod metrics;
pub mod pipeline;
pub mod producer;
pub mod queries;
pub mod reference;
pub mod runner;
pub mod serving;
pub mod topics;
pub mod validator;
pub mod view;
