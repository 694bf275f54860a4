//! The live dashboard (DESIGN.md §6): a web page the platform serves itself, fed by
//! interactive queries and pushed to the browser over server-sent events.
//!
//! Every second the [`server`] asks the metrics and alerts apps' query servers
//! ([`crate::queries`], through [`sources::QuerySource`]) for the latest metrics, the price
//! histories and the recent alerts, reads pipeline health from the apps' Prometheus text
//! ([`health`]), builds one [`snapshot::Snapshot`] (freshness per coin against the SLO, hourly
//! candles with a volatility pane and alert markers, a returns heatmap, a correlation matrix
//! of recent log returns, the alert feed and health) and pushes it to every open page. The
//! page (`dashboard/web/`) and its chart library (lightweight-charts, vendored from npm at
//! build time by `apps/build.rs`) are compiled into the binary: nothing is fetched at run time.
//!
//! `pipeline` serves it at a printed local address; the `dashboard` binary serves it against
//! the apps of a cluster.

pub mod charts;
pub mod health;
pub mod server;
pub mod snapshot;
pub mod sources;
