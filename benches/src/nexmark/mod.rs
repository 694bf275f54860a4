//! Nexmark on streamlib, as `benches/NEXMARK.md` defines it: the events and how they reach the
//! three input topics ([`events`]), the eight queries on streamlib's DSL ([`queries`]), a
//! reference model of each query's output ([`model`]) and the three ways outputs are compared
//! ([`compare`]). `peers nexmark` runs the queries on streamlib and on Kafka Streams and checks
//! both against the model and each other.
//!
//! ```
//! use benches::nexmark::{events, model::Model, Query};
//!
//! let mut model = Model::new(&[Query::Q2, Query::Q7]);
//! for event in events::generate(2_000, events::BASE_TIME_MS) {
//!     model.add(&event);
//! }
//! let q2 = model.expected(Query::Q2);
//! assert_eq!(q2.output.records(), q2.records.unwrap());
//! ```

pub mod compare;
pub mod events;
pub mod model;
pub mod queries;

use std::fmt;

use clap::ValueEnum;

use compare::Mode;
use events::Kind;

/// Nexmark's tumbling windows (q7, q8) and q5's window size, ms.
pub const WINDOW_MS: u64 = 10_000;

/// The start of the tumbling 10 s window holding `date_time` (ms since the epoch).
pub fn window_start(date_time: u64) -> u64 {
    date_time - date_time % WINDOW_MS
}

/// A Nexmark query of `benches/NEXMARK.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Query {
    /// Pass-through: every bid.
    Q0,
    /// Currency conversion: the price in euros.
    Q1,
    /// Selection: the bids of every 123rd auction.
    Q2,
    /// Local item suggestion: a foreign-key join of auctions and their sellers.
    Q3,
    /// Average of the highest bids per category.
    Q4,
    /// Hot items: the auction with the most bids per hopping window.
    Q5,
    /// Highest bid per tumbling window.
    Q7,
    /// New sellers: people who opened an auction in the window in which they joined.
    Q8,
}

impl Query {
    /// Every query, in order.
    pub const ALL: [Self; 8] = [
        Self::Q0,
        Self::Q1,
        Self::Q2,
        Self::Q3,
        Self::Q4,
        Self::Q5,
        Self::Q7,
        Self::Q8,
    ];

    /// Name in flags, tables, JSON and topic names: `q0` … `q8`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Q0 => "q0",
            Self::Q1 => "q1",
            Self::Q2 => "q2",
            Self::Q3 => "q3",
            Self::Q4 => "q4",
            Self::Q5 => "q5",
            Self::Q7 => "q7",
            Self::Q8 => "q8",
        }
    }

    /// The kinds of events the query reads: its input events per second count these.
    pub fn reads(self) -> &'static [Kind] {
        match self {
            Self::Q0 | Self::Q1 | Self::Q2 | Self::Q5 | Self::Q7 => &[Kind::Bid],
            Self::Q3 | Self::Q8 => &[Kind::Person, Kind::Auction],
            Self::Q4 => &[Kind::Auction, Kind::Bid],
        }
    }

    /// Whether it joins a stream with a table (q4): its output then depends on whether a row
    /// reaches the table before the stream records that join it.
    pub fn joins_a_stream_with_a_table(self) -> bool {
        self == Self::Q4
    }

    /// How its outputs are compared (NEXMARK.md's "compare" column).
    pub fn mode(self) -> Mode {
        match self {
            Self::Q0 | Self::Q1 | Self::Q2 => Mode::All,
            Self::Q3 | Self::Q4 | Self::Q5 | Self::Q7 => Mode::Final,
            Self::Q8 => Mode::Distinct,
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names of the three input topics, one per kind of event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// People.
    pub person: String,
    /// Auctions.
    pub auction: String,
    /// Bids.
    pub bid: String,
}

impl Topics {
    /// `{prefix}-person`, `{prefix}-auction`, `{prefix}-bid`.
    pub fn prefixed(prefix: &str) -> Self {
        Self {
            person: format!("{prefix}-person"),
            auction: format!("{prefix}-auction"),
            bid: format!("{prefix}-bid"),
        }
    }

    /// The topic of `kind`.
    pub fn of(&self, kind: Kind) -> &str {
        match kind {
            Kind::Person => &self.person,
            Kind::Auction => &self.auction,
            Kind::Bid => &self.bid,
        }
    }

    /// All three names.
    pub fn all(&self) -> [&str; 3] {
        [&self.person, &self.auction, &self.bid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_are_multiples_of_ten_seconds() {
        assert_eq!(window_start(1_767_225_600_000), 1_767_225_600_000);
        assert_eq!(window_start(1_767_225_609_999), 1_767_225_600_000);
        assert_eq!(window_start(1_767_225_610_000), 1_767_225_610_000);
    }

    #[test]
    fn names_round_trip_through_the_flag_parser() {
        for query in Query::ALL {
            assert_eq!(Query::from_str(query.name(), false), Ok(query));
        }
    }
}
