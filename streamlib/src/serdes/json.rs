//! [`JsonSerde`] and [`JsonValueSerde`]: UTF-8 JSON through serde.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Serde, SerdeError};

/// Any `T: Serialize + DeserializeOwned` as compact UTF-8 JSON (`serde_json`). Bytes that are not
/// JSON, or JSON of another shape than `T`, give [`SerdeError::Json`] with line and column.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use streamlib::serdes::{JsonSerde, Serde};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Price { coin_id: String, price: f64 }
///
/// let serde = JsonSerde::<Price>::new();
/// let price = Price { coin_id: "bitcoin".into(), price: 70187.0 };
/// let bytes = serde.serialize("prices", &price).unwrap();
/// assert_eq!(bytes, br#"{"coin_id":"bitcoin","price":70187.0}"#);
/// assert_eq!(serde.deserialize("prices", &bytes).unwrap(), price);
/// assert!(serde.deserialize("prices", b"{not json").is_err());
/// ```
pub struct JsonSerde<T> {
    // `fn() -> T`: the serde holds no `T`, so it is `Send + Sync` whatever `T` is.
    _type: PhantomData<fn() -> T>,
}

impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub const fn new() -> Self {
        Self { _type: PhantomData }
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for JsonSerde<T> {}

impl<T> fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Untyped JSON ([`serde_json::Value`]): any well-formed JSON document round-trips. Handy for
/// pass-through stages (validators, routers) that must not drop fields they do not know.
///
/// ```
/// use serde_json::json;
/// use streamlib::serdes::{JsonValueSerde, Serde};
///
/// let value = JsonValueSerde.deserialize("t", br#"{"a":[1,null]}"#).unwrap();
/// assert_eq!(value, json!({"a": [1, null]}));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonValueSerde;

impl Serde<serde_json::Value> for JsonValueSerde {
    fn serialize(&self, _topic: &str, value: &serde_json::Value) -> Result<Vec<u8>, SerdeError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<serde_json::Value, SerdeError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}
