//! [`F64Serde`]: IEEE 754 double, 8 bytes, big-endian.

use super::long::eight_bytes;
use super::{Serde, SerdeError};

/// Java's `Double.doubleToLongBits` writes every NaN as this one bit pattern.
const CANONICAL_NAN_BITS: u64 = 0x7ff8_0000_0000_0000;

/// `f64` as its IEEE 754 bits in 8 bytes big-endian, the layout of Kafka's `DoubleSerializer`.
/// Like Java's `doubleToLongBits`, every NaN is written as the canonical NaN `0x7ff8000000000000`;
/// all other values (±0, ±∞, subnormals) round-trip bit for bit. Deserializing anything but
/// exactly 8 bytes is a [`SerdeError::Length`] error.
///
/// ```
/// use streamlib::serdes::{F64Serde, Serde};
///
/// assert_eq!(F64Serde.serialize("t", &1.0).unwrap(), [0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
/// assert_eq!(F64Serde.deserialize("t", &[0x40, 0, 0, 0, 0, 0, 0, 0]).unwrap(), 2.0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F64Serde;

impl Serde<f64> for F64Serde {
    fn serialize(&self, _topic: &str, value: &f64) -> Result<Vec<u8>, SerdeError> {
        let bits = if value.is_nan() {
            CANONICAL_NAN_BITS
        } else {
            value.to_bits()
        };
        Ok(bits.to_be_bytes().to_vec())
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<f64, SerdeError> {
        Ok(f64::from_be_bytes(eight_bytes(bytes)?))
    }
}
