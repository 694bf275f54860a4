//! How Silver's typed timestamps travel: read from the contracts' RFC 3339 text, written to
//! Delta `timestamp` columns as microseconds since the epoch (UTC).

use chrono::{DateTime, Utc};

use crate::job::interval::days_since_epoch;

/// A required timestamp: RFC 3339 text in, microseconds out (`#[serde(with = "micros")]`).
pub(crate) mod micros {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Microseconds since the epoch.
    pub(crate) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.timestamp_micros())
    }

    /// RFC 3339 text (chrono's parser).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// A nullable timestamp, like [`micros`].
pub(crate) mod micros_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Microseconds since the epoch, or null.
    pub(crate) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.timestamp_micros()),
            None => s.serialize_none(),
        }
    }

    /// RFC 3339 text or null.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

/// The `event_date` partition value of an event at `t`: days since 1970-01-01 of its UTC date.
pub(crate) fn event_date(t: DateTime<Utc>) -> i32 {
    days_since_epoch(t.date_naive())
}

/// The instant `micros` microseconds after the epoch, when representable.
pub(crate) fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}
