//! [`Nullable`]: a serde of `Option<T>` whose `None` is Kafka's null.

use super::{Serde, SerdeError};

/// `Option<T>` in Kafka records: `None` is a null key or a null value (a tombstone), `Some` is
/// encoded by the inner serde. Read a topic with it wherever nulls are meaningful (a table's
/// deletes, a stream whose keys may be missing), and write a table's updates with it
/// ([`KTable::to_stream`](crate::topology::KTable::to_stream) gives `None` for deletes).
///
/// A null has no bytes: [`Serde::serialize`] of `None` (as a state store would ask) is
/// [`SerdeError::Null`]; only [`Serde::serialize_nullable`], which record sinks use, writes it.
///
/// ```
/// use streamlib::serdes::{Nullable, Serde, StringSerde};
///
/// let serde = Nullable(StringSerde);
/// assert_eq!(serde.serialize_nullable("t", &None).unwrap(), None);
/// assert_eq!(serde.deserialize_nullable("t", None).unwrap(), None);
/// assert_eq!(serde.deserialize_nullable("t", Some(b"")).unwrap(), Some(String::new()));
/// assert!(serde.is_null(&None) && !serde.is_null(&Some("x".into())));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nullable<S>(pub S);

impl<T, S: Serde<T>> Serde<Option<T>> for Nullable<S> {
    fn serialize(&self, topic: &str, value: &Option<T>) -> Result<Vec<u8>, SerdeError> {
        match value {
            Some(value) => self.0.serialize(topic, value),
            None => Err(SerdeError::Null),
        }
    }

    fn deserialize(&self, topic: &str, bytes: &[u8]) -> Result<Option<T>, SerdeError> {
        self.0.deserialize(topic, bytes).map(Some)
    }

    fn is_null(&self, value: &Option<T>) -> bool {
        value.is_none()
    }

    fn serialize_nullable(
        &self,
        topic: &str,
        value: &Option<T>,
    ) -> Result<Option<Vec<u8>>, SerdeError> {
        value
            .as_ref()
            .map(|value| self.0.serialize(topic, value))
            .transpose()
    }

    fn deserialize_nullable(
        &self,
        topic: &str,
        bytes: Option<&[u8]>,
    ) -> Result<Option<T>, SerdeError> {
        bytes
            .map(|bytes| self.0.deserialize(topic, bytes))
            .transpose()
    }
}
