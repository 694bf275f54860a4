//! Serdes: values ⇄ the bytes stored in Kafka records and state stores.
//!
//! A [`Serde<T>`] turns a `T` into bytes and back; the topic is passed along because some formats
//! depend on it (the Avro serde registers its schema under `<topic>-value`).
//!
//! | serde | bytes | compatible with |
//! |---|---|---|
//! | [`StringSerde`] | UTF-8 | Kafka's `StringSerializer` |
//! | [`BytesSerde`] | as is | Kafka's `ByteArraySerializer` |
//! | [`I64Serde`] | 8 bytes, big-endian | Kafka's `LongSerializer` |
//! | [`F64Serde`] | 8 bytes, big-endian IEEE 754 | Kafka's `DoubleSerializer` |
//! | [`JsonSerde`], [`JsonValueSerde`] | UTF-8 JSON | any JSON consumer |
//! | [`JsonSchemaSerde`] | UTF-8 JSON, checked against a JSON Schema both ways | any JSON consumer |
//! | `AvroSerde` (feature `avro`) | magic byte 0, 4-byte schema id, Avro binary | Confluent's `KafkaAvroSerializer` |
//! | [`Nullable`]`(S)` | `None` ⇄ a null key or value (tombstone), `Some` as `S` | any serializer that writes null |
//!
//! ```
//! use serde_json::json;
//! use streamlib::serdes::{I64Serde, JsonSchemaSerde, Serde, SerdeError};
//!
//! # fn main() -> Result<(), SerdeError> {
//! assert_eq!(I64Serde.serialize("counts", &1)?, [0, 0, 0, 0, 0, 0, 0, 1]);
//!
//! let prices = JsonSchemaSerde::<serde_json::Value>::new(&json!({
//!     "type": "object",
//!     "properties": { "price": { "type": "number", "exclusiveMinimum": 0 } }
//! }))?;
//! let error = prices.deserialize("prices", br#"{"price": -1}"#).unwrap_err();
//! let SerdeError::Schema(violation) = &error else { panic!("{error}") };
//! assert_eq!(violation.rule, "exclusiveMinimum");
//! assert_eq!(violation.instance_pointer, "/price");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

#[cfg(feature = "avro")]
mod avro;
mod bytes;
mod double;
mod error;
mod json;
mod json_schema;
mod long;
mod nullable;
mod string;

#[cfg(feature = "avro")]
pub use avro::{AvroSerde, AvroSerdeBuilder};
pub use bytes::BytesSerde;
pub use double::F64Serde;
pub use error::{SchemaViolation, SerdeError};
pub use json::{JsonSerde, JsonValueSerde};
pub use json_schema::JsonSchemaSerde;
pub use long::I64Serde;
pub use nullable::Nullable;
pub use string::StringSerde;

/// Converts values to and from the bytes stored in Kafka records and state stores.
pub trait Serde<T>: Send + Sync + 'static {
    /// Encodes `value`, to be written to `topic` (or to a store's changelog topic).
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError>;
    /// Decodes `bytes` read from `topic`.
    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError>;

    /// Whether `value` is what Kafka calls null: a null key, or a null value (a tombstone).
    /// Only serdes of optional values have one ([`Nullable`]: `None`); the DSL drops or
    /// forwards null keys and values where Kafka Streams does.
    fn is_null(&self, _value: &T) -> bool {
        false
    }

    /// Encodes a record's key or value: `None` for null. By default every value has bytes.
    fn serialize_nullable(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        self.serialize(topic, value).map(Some)
    }

    /// Decodes a record's key or value, which Kafka may carry as null. By default a null
    /// decodes as if it were empty bytes (an empty string for [`StringSerde`], an error for
    /// [`I64Serde`]); read with [`Nullable`] to see nulls as `None`.
    fn deserialize_nullable(&self, topic: &str, bytes: Option<&[u8]>) -> Result<T, SerdeError> {
        self.deserialize(topic, bytes.unwrap_or_default())
    }
}

/// A shared serde is a serde, so one instance (and its caches, e.g. the Avro schema ids) can serve
/// several sources, sinks and stores: pass `Arc<AvroSerde<T>>` where an `impl Serde<T>` is wanted.
///
/// Only for sized `S`: an `Arc<dyn Serde<T>>` is used through its deref, which keeps method calls
/// on it free of the `T: 'static` bound that matching this impl would add.
impl<T, S> Serde<T> for Arc<S>
where
    S: Serde<T>,
{
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        (**self).serialize(topic, value)
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        (**self).deserialize(topic, bytes)
    }

    fn is_null(&self, value: &T) -> bool {
        (**self).is_null(value)
    }

    fn serialize_nullable(&self, topic: &str, value: &T) -> Result<Option<Vec<u8>>, SerdeError> {
        (**self).serialize_nullable(topic, value)
    }

    fn deserialize_nullable(&self, topic: &str, bytes: Option<&[u8]>) -> Result<T, SerdeError> {
        (**self).deserialize_nullable(topic, bytes)
    }
}
