//! [`AvroSerde`]: Avro in the Confluent wire format, schemas kept in a schema registry.
//!
//! Wire format (Confluent's `KafkaAvroSerializer`): byte 0 is the magic byte `0`, bytes 1–4 the
//! schema id (big-endian `u32`) the registry gave the writer's schema, the rest one Avro binary
//! datum.
//!
//! The registry is spoken to with `schema_registry_converter`'s blocking client
//! ([`SrSettings`], `get_schema_by_subject`, `get_schema_by_id_and_type`); the Avro bytes are
//! written and read with `apache-avro` directly rather than through the crate's
//! `AvroEncoder`/`AvroDecoder`, for three reasons:
//! - a reader schema: bytes written with an older or newer writer schema are resolved to this
//!   serde's schema (defaults filled in, removed fields dropped), which `AvroDecoder` does not do;
//! - typed errors: a registry failure ([`SerdeError::Registry`], maybe retriable) stays distinct
//!   from bytes that do not decode ([`SerdeError::Avro`], never retriable), which `AvroDecoder`
//!   folds into one error type;
//! - the registry is called only on a cache miss, known to this type, so that call alone can be
//!   moved off a tokio worker (the blocking HTTP client must not run on one), without a thread hop
//!   per record.

use std::collections::HashMap;
use std::fmt;
use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use schema_registry_converter::blocking::schema_registry::{
    get_referenced_schema, get_schema_by_id_and_type, get_schema_by_subject, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Serde, SerdeError};

/// Confluent's magic byte, first byte of every framed record.
const MAGIC_BYTE: u8 = 0;
/// Magic byte plus 4-byte schema id.
const HEADER_LEN: usize = 5;
/// Default timeout of one registry call (connect and read).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Avro for any `T: Serialize + DeserializeOwned` in the Confluent wire format, with the schema
/// in a Confluent-compatible schema registry.
///
/// - **serialize** registers this serde's schema under the subject `<topic>-value` (or
///   `<topic>-key`, see [`AvroSerdeBuilder::for_keys`]: Confluent's `TopicNameStrategy`), once per
///   topic, and writes `0`, the id, then the datum. The registry answers with the existing id when
///   the schema is already there, and refuses an incompatible one ([`SerdeError::Registry`]).
/// - **deserialize** reads the id, fetches the writer's schema by id (once per id; references
///   are followed), decodes with it and resolves the result to this serde's schema.
///
/// Registry calls happen only on a cache miss and block the calling thread up to the timeout;
/// inside a tokio runtime they run on a short-lived helper thread. Clones share the caches.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use streamlib::serdes::{AvroSerde, Serde};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct Price { coin_id: String, price: f64 }
///
/// let schema = r#"{"type": "record", "name": "Price", "fields": [
///     {"name": "coin_id", "type": "string"}, {"name": "price", "type": "double"}]}"#;
/// let serde = AvroSerde::<Price>::new("http://127.0.0.1:8081", schema)?;
/// let price = Price { coin_id: "bitcoin".into(), price: 70187.0 };
/// let bytes = serde.serialize("prices", &price)?; // registers subject prices-value
/// assert_eq!(bytes[0], 0);
/// assert_eq!(serde.deserialize("prices", &bytes)?, price);
/// # Ok::<(), streamlib::serdes::SerdeError>(())
/// ```
pub struct AvroSerde<T> {
    inner: Arc<Inner>,
    _type: PhantomData<fn() -> T>,
}

struct Inner {
    settings: SrSettings,
    /// This serde's schema: the writer schema on serialize, the reader schema on deserialize.
    schema: Schema,
    /// `schema` as registered (apache-avro's JSON form of the parsed schema, so formatting of
    /// the text given does not create new registry versions).
    schema_json: String,
    is_key: bool,
    /// Topic → id of `schema` under that topic's subject.
    ids: RwLock<HashMap<String, u32>>,
    /// Schema id → the writer schema it names.
    writers: RwLock<HashMap<u32, Arc<WriterSchema>>>,
}

/// A writer schema fetched from the registry.
struct WriterSchema {
    root: Schema,
    /// Named schemas the root references (registry schema references).
    references: Vec<Schema>,
    /// Whether `root` equals this serde's schema, so decoding needs no resolution step.
    same_as_reader: bool,
}

/// Configures an [`AvroSerde`]: subject (value or key), timeout, or registry settings of your own.
pub struct AvroSerdeBuilder<T> {
    url: String,
    schema: String,
    is_key: bool,
    timeout: Duration,
    settings: Option<SrSettings>,
    _type: PhantomData<fn() -> T>,
}

impl<T> AvroSerde<T> {
    /// A value serde (subject `<topic>-value`) for the registry at `registry_url` (Confluent's
    /// `http://127.0.0.1:8081`, or `http://127.0.0.1:8081/apis/ccompat/v6` for the Apicurio
    /// registry `scripts/schema-registry` starts), writing with `schema`, an Avro schema in JSON.
    /// An unparsable schema is a [`SerdeError::InvalidSchema`] error. Contacts the registry only
    /// when first used.
    pub fn new(registry_url: &str, schema: &str) -> Result<Self, SerdeError> {
        Self::builder(registry_url, schema).build()
    }

    /// A builder, for a key serde or other registry settings.
    pub fn builder(registry_url: &str, schema: &str) -> AvroSerdeBuilder<T> {
        AvroSerdeBuilder {
            url: registry_url.trim_end_matches('/').to_string(),
            schema: schema.to_string(),
            is_key: false,
            timeout: DEFAULT_TIMEOUT,
            settings: None,
            _type: PhantomData,
        }
    }

    /// This serde's schema.
    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }

    /// The subject this serde registers its schema under for `topic`: `<topic>-value` or
    /// `<topic>-key`.
    pub fn subject(&self, topic: &str) -> String {
        subject_for(topic, self.inner.is_key)
    }

    /// The id of this serde's schema under `topic`'s subject, registering it first if needed:
    /// the id `serialize` writes into bytes 1–4.
    pub fn schema_id(&self, topic: &str) -> Result<u32, SerdeError> {
        self.inner.id_for(topic)
    }
}

impl<T> AvroSerdeBuilder<T> {
    /// Registers under `<topic>-key` instead of `<topic>-value`, for record keys.
    pub fn for_keys(mut self) -> Self {
        self.is_key = true;
        self
    }

    /// Timeout of one registry call (connect and read); default 10 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Uses registry settings of your own (several URLs, authentication, headers, TLS client)
    /// instead of the URL and timeout given to the builder.
    pub fn settings(mut self, settings: SrSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Parses the schema and prepares the registry client (no registry call yet).
    pub fn build(self) -> Result<AvroSerde<T>, SerdeError> {
        let schema = Schema::parse_str(&self.schema).map_err(|e| SerdeError::InvalidSchema {
            message: format!("Avro schema: {e}"),
        })?;
        let schema_json =
            serde_json::to_string(&schema).map_err(|e| SerdeError::InvalidSchema {
                message: format!("Avro schema cannot be written back as JSON: {e}"),
            })?;
        let settings = match self.settings {
            Some(settings) => settings,
            None => {
                let (url, timeout) = (self.url, self.timeout);
                off_async_runtime(move || SrSettings::new_builder(url).set_timeout(timeout).build())
                    .map_err(registry_error)?
            }
        };
        Ok(AvroSerde {
            inner: Arc::new(Inner {
                settings,
                schema,
                schema_json,
                is_key: self.is_key,
                ids: RwLock::default(),
                writers: RwLock::default(),
            }),
            _type: PhantomData,
        })
    }
}

impl Inner {
    fn id_for(&self, topic: &str) -> Result<u32, SerdeError> {
        if let Some(id) = read(&self.ids).get(topic) {
            return Ok(*id);
        }
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_string(),
            self.is_key,
            SuppliedSchema::new(None, SchemaType::Avro, self.schema_json.clone()),
        );
        // Registers the schema, or returns the id it already has under this subject.
        let registered = off_async_runtime(|| get_schema_by_subject(&self.settings, &strategy))
            .map_err(registry_error)?;
        write(&self.ids).insert(topic.to_string(), registered.id);
        Ok(registered.id)
    }

    fn writer(&self, id: u32) -> Result<Arc<WriterSchema>, SerdeError> {
        if let Some(writer) = read(&self.writers).get(&id) {
            return Ok(Arc::clone(writer));
        }
        let (root_json, reference_jsons) = off_async_runtime(|| self.fetch_writer(id))?;
        let (root, references) = Schema::parse_str_with_list(&root_json, &reference_jsons)
            .map_err(|e| SerdeError::Avro {
                context: "parsing the writer schema from the registry",
                source: Box::new(e),
            })?;
        let writer = Arc::new(WriterSchema {
            same_as_reader: references.is_empty() && root == self.schema,
            root,
            references,
        });
        write(&self.writers).insert(id, Arc::clone(&writer));
        Ok(writer)
    }

    /// The writer schema's JSON and the JSON of every schema it references, transitively.
    fn fetch_writer(&self, id: u32) -> Result<(String, Vec<String>), SerdeError> {
        let root = get_schema_by_id_and_type(id, &self.settings, SchemaType::Avro)
            .map_err(registry_error)?;
        let mut references = Vec::new();
        let mut seen = Vec::new();
        let mut pending = root.references.clone();
        while let Some(reference) = pending.pop() {
            let key = (reference.subject.clone(), reference.version);
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let referenced =
                get_referenced_schema(&self.settings, &reference).map_err(registry_error)?;
            pending.extend(referenced.references);
            references.push(referenced.schema);
        }
        Ok((root.schema, references))
    }
}

impl<T> Serde<T> for AvroSerde<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>, SerdeError> {
        // Encode first: a value that does not fit the schema fails without a registry call.
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[MAGIC_BYTE, 0, 0, 0, 0]);
        GenericDatumWriter::builder(&self.inner.schema)
            .build()
            .and_then(|writer| writer.write_ser(&mut bytes, value))
            .map_err(|e| SerdeError::Avro {
                context: "encoding the value with the schema",
                source: Box::new(e),
            })?;
        let id = self.inner.id_for(topic)?;
        bytes[1..HEADER_LEN].copy_from_slice(&id.to_be_bytes());
        Ok(bytes)
    }

    fn deserialize(&self, _topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        let id = schema_id(bytes)?;
        let writer = self.inner.writer(id)?;
        let mut datum = Cursor::new(&bytes[HEADER_LEN..]);
        let reader_schema = (!writer.same_as_reader).then_some(&self.inner.schema);
        let value = GenericDatumReader::builder(&writer.root)
            .writer_schemata(
                std::iter::once(&writer.root)
                    .chain(&writer.references)
                    .collect(),
            )
            .and_then(|builder| builder.maybe_reader_schema(reader_schema).build())
            .and_then(|reader| reader.read_value(&mut datum))
            .map_err(|e| SerdeError::Avro {
                context: "decoding the bytes with the writer schema",
                source: Box::new(e),
            })?;
        let trailing = datum.get_ref().len() as u64 - datum.position();
        if trailing > 0 {
            return Err(SerdeError::WireFormat {
                message: format!(
                    "{trailing} bytes left after the Avro datum (schema id {id}): \
                     the bytes were not written with this schema"
                ),
            });
        }
        apache_avro::from_value(&value).map_err(|e| SerdeError::Avro {
            context: "converting the decoded value to the Rust type",
            source: Box::new(e),
        })
    }
}

impl<T> Clone for AvroSerde<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for AvroSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvroSerde")
            .field("type", &std::any::type_name::<T>())
            .field("is_key", &self.inner.is_key)
            .field("schema", &self.inner.schema_json)
            .finish_non_exhaustive()
    }
}

/// The schema id in Confluent framing, or why the bytes are not framed.
fn schema_id(bytes: &[u8]) -> Result<u32, SerdeError> {
    if bytes.len() < HEADER_LEN {
        return Err(SerdeError::WireFormat {
            message: format!(
                "{} bytes, shorter than the {HEADER_LEN}-byte header (magic byte 0, 4-byte schema id)",
                bytes.len()
            ),
        });
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(SerdeError::WireFormat {
            message: format!(
                "first byte is {:#04x}, not the magic byte 0x00: not written by a \
                 Confluent-compatible Avro serializer",
                bytes[0]
            ),
        });
    }
    Ok(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
}

fn subject_for(topic: &str, is_key: bool) -> String {
    format!("{topic}-{}", if is_key { "key" } else { "value" })
}

fn registry_error(error: SRCError) -> SerdeError {
    let message = match &error.cause {
        Some(cause) => format!("{}: {cause}", error.error),
        None => error.error.clone(),
    };
    // The client calls only 502/503 retriable; a registry's other 5xx are transient too (Confluent:
    // 50001 backend store error, 50002 timeout, 50003 forwarding to the leader failed). The status
    // is only in the message, which the client words "... failed with status <code> <reason>".
    let server_error = error.error.contains("failed with status 5");
    SerdeError::Registry {
        message,
        retriable: error.retriable || server_error,
    }
}

/// Runs `f` here, or on a helper thread when called from inside a tokio runtime: reqwest's
/// blocking client must not be created or used on a runtime thread (it panics in debug builds).
fn off_async_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Poisoning is ignored: the maps only cache registry answers and stay valid after a panic.
fn read<V>(lock: &RwLock<V>) -> std::sync::RwLockReadGuard<'_, V> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<V>(lock: &RwLock<V>) -> std::sync::RwLockWriteGuard<'_, V> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_error(status: &str) -> SerdeError {
        registry_error(SRCError::new(
            &format!("HTTP request to schema registry failed with status {status}"),
            Some("error_code: 50001, message: store".to_string()),
            false,
        ))
    }

    #[test]
    fn server_errors_are_retriable_client_errors_are_not() {
        assert!(http_error("500 Internal Server Error").is_retriable());
        assert!(!http_error("404 Not Found").is_retriable());
        assert!(!http_error("409 Conflict").is_retriable());
        let error = http_error("404 Not Found").to_string();
        assert!(
            error.contains("404 Not Found: error_code: 50001"),
            "{error}"
        );
    }

    #[test]
    fn framing_is_checked_before_anything_else() {
        assert_eq!(schema_id(&[0, 0, 0, 1, 2, 9]).unwrap(), 258);
        assert!(matches!(
            schema_id(&[0, 0, 0, 1]),
            Err(SerdeError::WireFormat { .. })
        ));
        assert!(matches!(
            schema_id(&[1, 0, 0, 0, 1]),
            Err(SerdeError::WireFormat { .. })
        ));
    }
}
