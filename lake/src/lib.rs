//! The lake of the crypto platform: Delta tables on a local folder or S3, the exactly-once
//! Kafka → Bronze sink, and table maintenance. Silver and Gold jobs live beside them.
//!
//! - [`storage`]: where the lake lives ([`storage::Lake`]) and how its tables are opened.
//! - [`bronze`]: the Bronze schema, the append-with-progress commit, and the sink.
//! - [`silver`]: per data interval, Bronze typed, contract-checked and deduplicated; the rest
//!   quarantined with its reason.
//! - [`gold`]: the SQL models (`models/gold/*.sql`) run by DataFusion over Silver.
//! - [`job`]: what the Silver and Gold jobs share (interval, queries, one-commit replacement).
//! - [`maintenance`]: compaction and vacuum of any table.

pub mod bronze;
mod error;
pub mod gold;
pub mod job;
pub mod maintenance;
pub mod silver;
pub mod storage;
pub mod testing;

pub use error::LakeError;
