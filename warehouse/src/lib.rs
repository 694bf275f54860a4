//! The PostgreSQL warehouse of the crypto platform (DESIGN.md §5, docs/DATA_MODEL.md): a Kimball
//! star schema kept as numbered SQL migrations, and an idempotent loader that copies one data
//! interval of the Silver/Gold Delta tables into it.
//!
//! - [`connection`]: where the warehouse is ([`connection::WarehouseTarget`], from a URL or the
//!   libpq `PG*` environment), shown without its password.
//! - [`migrations`]: the schema's migrations, applied once each, in order, checksummed.
//! - [`interval`]: the data interval `[start, end)` of a load, widened to each fact's grain.
//! - [`facts`]: each fact table, its grain, its Delta source and its columns.
//! - [`source`]: reading an interval of a Delta table with DataFusion.
//! - [`staging`]: binary COPY of Arrow batches into temporary staging tables.
//! - [`load`]: one transaction that upserts the dimensions and replaces each fact's interval.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use warehouse::{connection::WarehouseTarget, interval::Interval};
//! let lake = lake::storage::Lake::parse("./lake")?;
//! let target = WarehouseTarget::from_url_or_env(Some("postgres://me:secret@127.0.0.1:5432/warehouse"))?;
//! let interval = Interval::parse("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")?;
//! let report = warehouse::load::load(&lake, &target, interval).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

pub mod connection;
pub mod facts;
pub mod interval;
pub mod load;
pub mod migrations;
pub mod source;
pub mod staging;
