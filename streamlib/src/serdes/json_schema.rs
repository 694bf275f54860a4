//! [`JsonSchemaSerde`]: JSON that must satisfy a JSON Schema, checked both ways.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{SchemaViolation, Serde, SerdeError};

/// A violation message longer than this is cut: some messages quote the whole offending value.
const MAX_MESSAGE_CHARS: usize = 300;

/// UTF-8 JSON for `T`, validated against a JSON Schema on deserialize **and** on serialize, so a
/// topic carries only contract-conforming values and a bad producer fails at its own sink.
///
/// The draft comes from the schema's `$schema` and defaults to 2020-12. `format` is asserted
/// (e.g. `date-time` must be a real RFC 3339 date-time), not only annotated; for other options,
/// build the validator yourself and use [`JsonSchemaSerde::from_validator`]. External `$ref`s
/// (http, file) are not fetched: the schema must be self-contained.
///
/// Errors, in the order they are checked:
/// - bytes that are not JSON: [`SerdeError::Json`];
/// - JSON that breaks the schema: [`SerdeError::Schema`] with a [`SchemaViolation`] naming the
///   failed keyword (`rule`), the JSON pointer into the data (`instance_pointer`) and into the
///   schema (`schema_pointer`), plus how many more violations the value has;
/// - valid JSON the type `T` cannot hold: [`SerdeError::Json`].
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
/// use streamlib::serdes::{JsonSchemaSerde, Serde, SerdeError};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Price { coin_id: String, price: f64 }
///
/// let serde = JsonSchemaSerde::<Price>::new(&json!({
///     "type": "object",
///     "required": ["coin_id", "price"],
///     "properties": {
///         "coin_id": { "type": "string", "pattern": "^[a-z0-9-]+$" },
///         "price": { "type": "number", "exclusiveMinimum": 0 }
///     }
/// })).unwrap();
///
/// let ok = serde.deserialize("prices", br#"{"coin_id":"bitcoin","price":1.5}"#).unwrap();
/// assert_eq!(ok, Price { coin_id: "bitcoin".into(), price: 1.5 });
///
/// // Serializing checks too: a negative price never reaches the topic.
/// let error = serde.serialize("prices", &Price { coin_id: "x".into(), price: -1.0 }).unwrap_err();
/// assert!(error.to_string().contains("rule `exclusiveMinimum` failed at `/price`"), "{error}");
/// ```
pub struct JsonSchemaSerde<T> {
    validator: Arc<jsonschema::Validator>,
    _type: PhantomData<fn() -> T>,
}

impl<T> JsonSchemaSerde<T> {
    /// Compiles `schema`. An invalid schema (e.g. `"type": 12`, an unresolvable `$ref`) is a
    /// [`SerdeError::InvalidSchema`] error.
    pub fn new(schema: &Value) -> Result<Self, SerdeError> {
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|error| SerdeError::InvalidSchema {
                message: error.to_string(),
            })?;
        Ok(Self::from_validator(validator))
    }

    /// Reads and compiles the schema in the JSON file at `path`. A missing or unreadable file is
    /// a [`SerdeError::SchemaFile`] error; a file that is not JSON or not a valid schema is a
    /// [`SerdeError::InvalidSchema`] error naming the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SerdeError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|source| SerdeError::SchemaFile {
            path: path.to_path_buf(),
            source,
        })?;
        let schema: Value =
            serde_json::from_slice(&text).map_err(|error| SerdeError::InvalidSchema {
                message: format!("{} is not JSON: {error}", path.display()),
            })?;
        Self::new(&schema).map_err(|error| match error {
            SerdeError::InvalidSchema { message } => SerdeError::InvalidSchema {
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    /// Uses a validator built with options of your own (`jsonschema::options()...build(..)`).
    pub fn from_validator(validator: jsonschema::Validator) -> Self {
        Self {
            validator: Arc::new(validator),
            _type: PhantomData,
        }
    }

    /// Checks a JSON value against the schema: `Ok`, or [`SerdeError::Schema`] describing the
    /// first violation. For stages that route on validity without converting (a validator that
    /// dead-letters bad events).
    pub fn validate(&self, instance: &Value) -> Result<(), SerdeError> {
        let mut errors = self.validator.iter_errors(instance);
        let Some(first) = errors.next() else {
            return Ok(());
        };
        Err(SerdeError::Schema(Box::new(SchemaViolation {
            rule: first.kind().keyword().to_string(),
            instance_pointer: first.instance_path().as_str().to_string(),
            schema_pointer: first.schema_path().as_str().to_string(),
            message: truncate(first.to_string()),
            additional: errors.count(),
        })))
    }
}

impl<T> Clone for JsonSchemaSerde<T> {
    fn clone(&self) -> Self {
        Self {
            validator: Arc::clone(&self.validator),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for JsonSchemaSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSchemaSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T> Serde<T> for JsonSchemaSerde<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn serialize(&self, _topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        // Validate the bytes as written (re-parsed) rather than `serde_json::to_value`, so the
        // output keeps the struct's field order, byte for byte what `JsonSerde` would write.
        let bytes = serde_json::to_vec(value)?;
        self.validate(&serde_json::from_slice(&bytes)?)?;
        Ok(bytes)
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        let instance: Value = serde_json::from_slice(bytes)?;
        self.validate(&instance)?;
        Ok(serde_json::from_value(instance)?)
    }
}

fn truncate(mut message: String) -> String {
    if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(cut);
        message.push('…');
    }
    message
}
