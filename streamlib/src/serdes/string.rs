//! [`StringSerde`]: UTF-8 text.

use super::{Serde, SerdeError};

/// `String` as UTF-8 bytes, like Kafka's `StringSerializer`/`StringDeserializer` (default
/// encoding). Deserializing bytes that are not UTF-8 is a [`SerdeError::Utf8`] error, never a
/// lossy conversion.
///
/// ```
/// use streamlib::serdes::{Serde, StringSerde};
///
/// assert_eq!(StringSerde.serialize("t", &"héllo".to_string()).unwrap(), "héllo".as_bytes());
/// assert!(StringSerde.deserialize("t", &[0xff]).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Vec<u8>, SerdeError> {
        Ok(value.as_bytes().to_vec())
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<String, SerdeError> {
        Ok(std::str::from_utf8(bytes)?.to_owned())
    }
}
