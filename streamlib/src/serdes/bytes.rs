//! [`BytesSerde`]: bytes as they are.

use super::{Serde, SerdeError};

/// `Vec<u8>` passed through unchanged, like Kafka's `ByteArraySerializer`. Never fails.
///
/// ```
/// use streamlib::serdes::{BytesSerde, Serde};
///
/// assert_eq!(BytesSerde.deserialize("t", &[0, 255]).unwrap(), vec![0, 255]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Vec<u8>, SerdeError> {
        Ok(value.clone())
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }
}
