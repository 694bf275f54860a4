//! [`I64Serde`]: 8 bytes, big-endian.

use super::{Serde, SerdeError};

/// `i64` as 8 bytes big-endian (two's complement), the layout of Kafka's `LongSerializer`, so Java
/// consumers read the same numbers. Deserializing anything but exactly 8 bytes is a
/// [`SerdeError::Length`] error, as in Kafka's `LongDeserializer`.
///
/// ```
/// use streamlib::serdes::{I64Serde, Serde};
///
/// assert_eq!(I64Serde.serialize("t", &1).unwrap(), [0, 0, 0, 0, 0, 0, 0, 1]);
/// assert_eq!(I64Serde.deserialize("t", &[0xff; 8]).unwrap(), -1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct I64Serde;

impl Serde<i64> for I64Serde {
    fn serialize(&self, _topic: &str, value: &i64) -> Result<Vec<u8>, SerdeError> {
        Ok(value.to_be_bytes().to_vec())
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<i64, SerdeError> {
        Ok(i64::from_be_bytes(eight_bytes(bytes)?))
    }
}

/// The 8 bytes of a fixed-width number, or the error naming the length received.
pub(super) fn eight_bytes(bytes: &[u8]) -> Result<[u8; 8], SerdeError> {
    bytes.try_into().map_err(|_| SerdeError::Length {
        expected: 8,
        actual: bytes.len(),
    })
}
