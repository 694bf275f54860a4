//! # streamlib
//!
//! Kafka Streams–style stateful stream processing in Rust, on `rdkafka`, `tokio` and `rocksdb`.
//!
//! Build a [`topology::Topology`] with the DSL ([`topology::StreamsBuilder`]) or the
//! [`processor::Processor`] API, test it with [`testing::TopologyTestDriver`], and run it on
//! Kafka with [`runtime::KafkaStreams`].
//!
//! ```
//! use std::time::Duration;
//! use streamlib::prelude::*;
//! use streamlib::testing::{DriverConfig, TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("clicks", StringSerde, StringSerde)
//!     .group_by_key(StringSerde, StringSerde)
//!     .windowed_by(TimeWindows::of(Duration::from_secs(60)))
//!     .count("clicks-per-minute")
//!     .to_stream()
//!     .map(|w, n| (w.key, n))
//!     .to("counts", StringSerde, Nullable(I64Serde));
//!
//! let mut driver = TopologyTestDriver::new(builder.build(), DriverConfig::default()).unwrap();
//! for ts in [1_000, 2_000, 61_000] {
//!     driver.pipe("clicks", &StringSerde, &StringSerde, "alice".into(), "/".into(), ts).unwrap();
//! }
//! let counts: Vec<i64> = driver
//!     .read_output("counts", &StringSerde, &I64Serde)
//!     .unwrap()
//!     .into_iter()
//!     .map(|r| r.value)
//!     .collect();
//! assert_eq!(counts, vec![1, 2, 1]);
//! ```

pub mod error;
pub mod metrics;
pub mod partition;
pub mod processor;
pub mod query;
pub mod record;
pub mod runtime;
pub mod serdes;
pub mod state;
pub(crate) mod task;
pub mod testing;
pub mod topology;
pub mod window;

pub use task::{dead_letter_headers, ErrorHandlers, TaskMetrics};

/// The handful of types most topologies need.
pub mod prelude {
    pub use crate::error::{ErrorAction, ProcessError};
    pub use crate::processor::{Processor, ProcessorContext, PunctuationType};
    pub use crate::record::Record;
    pub use crate::serdes::{
        BytesSerde, F64Serde, I64Serde, JsonSerde, Nullable, Serde, StringSerde,
    };
    pub use crate::topology::{
        JoinWindows, KGroupedStream, KStream, KTable, Materialized, StoreKind, StoreSpec,
        StreamJoined, StreamsBuilder, Topology,
    };
    pub use crate::window::{EmitStrategy, TimeWindows, Window, Windowed, WindowedSerde};
}
