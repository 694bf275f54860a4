//! Avro serde against a real Confluent-compatible schema registry.
//!
//! Needs `SCHEMA_REGISTRY_URL`; without it the registry tests fail (they never pass silently):
//!
//! ```sh
//! scripts/schema-registry fetch
//! export SCHEMA_REGISTRY_URL="$(scripts/schema-registry start | tail -1)"
//! ```
#![cfg(feature = "avro")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use streamlib::serdes::{AvroSerde, Serde, SerdeError};

const PRICE_V1: &str = r#"{
  "type": "record", "name": "Price", "namespace": "streamlib.test",
  "fields": [
    {"name": "coin_id", "type": "string"},
    {"name": "price", "type": "double"},
    {"name": "rank", "type": ["null", "long"], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []}
  ]
}"#;

/// V1 plus a field with a default: readers of v2 can read v1 bytes and the other way round.
const PRICE_V2: &str = r#"{
  "type": "record", "name": "Price", "namespace": "streamlib.test",
  "fields": [
    {"name": "coin_id", "type": "string"},
    {"name": "price", "type": "double"},
    {"name": "rank", "type": ["null", "long"], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "vs_currency", "type": "string", "default": "usd"}
  ]
}"#;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Price {
    coin_id: String,
    price: f64,
    rank: Option<i64>,
    tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct PriceV2 {
    coin_id: String,
    price: f64,
    rank: Option<i64>,
    tags: Vec<String>,
    vs_currency: String,
}

/// Apicurio 2.1's in-memory storage loses races between concurrent registrations (HTTP 409/500
/// from unique-key violations and lock timeouts in H2), so the tests take turns at the registry.
static REGISTRY_TURN: Mutex<()> = Mutex::new(());

/// The registry's URL, and this test's turn at it (held until the returned guard drops).
fn registry() -> (String, MutexGuard<'static, ()>) {
    let turn = REGISTRY_TURN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    (registry_url(), turn)
}

fn registry_url() -> String {
    match std::env::var("SCHEMA_REGISTRY_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => panic!(
            "SCHEMA_REGISTRY_URL is not set: this test needs a Confluent-compatible schema \
             registry. Start one with\n  scripts/schema-registry fetch\n  export \
             SCHEMA_REGISTRY_URL=\"$(scripts/schema-registry start | tail -1)\"\nand run the \
             tests again."
        ),
    }
}

/// A topic name no earlier run used: the registry keeps subjects as long as it runs.
fn fresh_topic(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn btc() -> Price {
    Price {
        coin_id: "bitcoin".into(),
        price: 70187.25,
        rank: Some(1),
        tags: vec!["pow".into(), "l1".into()],
    }
}

/// `GET <registry>/<path>` with a plain socket, to check what the registry holds without going
/// through the code under test. Returns status and body.
fn registry_get(path: &str) -> (u16, serde_json::Value) {
    let url = registry_url();
    let rest = url
        .strip_prefix("http://")
        .expect("an http:// registry URL");
    let (host, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {base}/{path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

fn framed_id(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[1..5].try_into().unwrap())
}

#[test]
fn round_trip_through_the_registry_in_confluent_wire_format() {
    let (url, _turn) = registry();
    let topic = fresh_topic("prices");
    let serde = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    let bytes = serde.serialize(&topic, &btc()).unwrap();

    // Magic byte 0, then the id the registry holds for <topic>-value.
    assert_eq!(bytes[0], 0);
    let (status, latest) = registry_get(&format!("subjects/{topic}-value/versions/latest"));
    assert_eq!(status, 200, "{latest}");
    assert_eq!(u64::from(framed_id(&bytes)), latest["id"].as_u64().unwrap());
    assert_eq!(serde.schema_id(&topic).unwrap(), framed_id(&bytes));
    let registered = apache_avro::Schema::parse_str(latest["schema"].as_str().unwrap()).unwrap();
    assert_eq!(&registered, serde.schema());

    assert_eq!(serde.deserialize(&topic, &bytes).unwrap(), btc());
}

#[test]
fn the_payload_is_plain_avro_binary() {
    let (url, _turn) = registry();
    let topic = fresh_topic("binary");
    let serde = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    let value = Price {
        coin_id: "btc".into(),
        price: 1.0,
        rank: None,
        tags: vec![],
    };
    let bytes = serde.serialize(&topic, &value).unwrap();
    let expected_datum = [
        0x06, b'b', b't', b'c', // string: zig-zag length 3, UTF-8
        0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // double 1.0, little-endian
        0x00, // union branch 0: null
        0x00, // empty array
    ];
    assert_eq!(&bytes[5..], expected_datum);
}

#[test]
fn a_fresh_serde_reads_bytes_by_their_schema_id() {
    let (url, _turn) = registry();
    let topic = fresh_topic("fresh");
    let writer = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    let bytes = writer.serialize(&topic, &btc()).unwrap();
    // No shared cache: the reader must fetch the writer schema by the id in the bytes.
    let reader = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    assert_eq!(reader.deserialize(&topic, &bytes).unwrap(), btc());
    // Registering the same schema again gives the same id.
    assert_eq!(reader.schema_id(&topic).unwrap(), framed_id(&bytes));
}

#[test]
fn key_serdes_use_the_key_subject() {
    let (url, _turn) = registry();
    let topic = fresh_topic("keyed");
    let serde = AvroSerde::<Price>::builder(&url, PRICE_V1)
        .for_keys()
        .build()
        .unwrap();
    assert_eq!(serde.subject(&topic), format!("{topic}-key"));
    let bytes = serde.serialize(&topic, &btc()).unwrap();
    let (status, latest) = registry_get(&format!("subjects/{topic}-key/versions/latest"));
    assert_eq!(status, 200, "{latest}");
    assert_eq!(u64::from(framed_id(&bytes)), latest["id"].as_u64().unwrap());
    let (status, _) = registry_get(&format!("subjects/{topic}-value/versions/latest"));
    assert_eq!(status, 404);
}

#[test]
fn readers_resolve_other_versions_of_the_schema() {
    let (url, _turn) = registry();
    let topic = fresh_topic("evolving");
    let v1 = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    let v2 = AvroSerde::<PriceV2>::new(&url, PRICE_V2).unwrap();

    // New reader, old bytes: the added field takes its default.
    let old_bytes = v1.serialize(&topic, &btc()).unwrap();
    let read = v2.deserialize(&topic, &old_bytes).unwrap();
    assert_eq!(read.vs_currency, "usd");
    assert_eq!(read.coin_id, "bitcoin");
    assert_eq!(read.tags, btc().tags);

    // Old reader, new bytes (a new schema version, a new id): the added field is dropped.
    let new = PriceV2 {
        vs_currency: "eur".into(),
        ..read
    };
    let new_bytes = v2.serialize(&topic, &new).unwrap();
    assert_ne!(framed_id(&new_bytes), framed_id(&old_bytes));
    assert_eq!(v1.deserialize(&topic, &new_bytes).unwrap(), btc());
}

#[test]
fn bytes_without_confluent_framing_are_wire_format_errors() {
    // Framing is checked before any registry call: nothing listens on port 1.
    let serde = AvroSerde::<Price>::new("http://127.0.0.1:1", PRICE_V1).unwrap();
    for bytes in [&b"{\"coin_id\":1}"[..], &[0, 0, 1][..], &[][..]] {
        let error = serde.deserialize("t", bytes).unwrap_err();
        assert!(matches!(error, SerdeError::WireFormat { .. }), "{error:?}");
    }
    let error = serde.deserialize("t", b"{\"coin_id\":1}").unwrap_err();
    assert!(error.to_string().contains("magic byte"), "{error}");
}

#[test]
fn an_unknown_schema_id_is_a_registry_error_that_retrying_will_not_fix() {
    let (url, _turn) = registry();
    let serde = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    let error = serde
        .deserialize("t", &[0, 0x7f, 0xff, 0xff, 0xf0, 0x06, b'b'])
        .unwrap_err();
    match &error {
        SerdeError::Registry { retriable, message } => {
            assert!(!retriable, "{error}");
            assert!(message.contains("404"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn corrupt_or_foreign_datums_are_avro_errors() {
    let (url, _turn) = registry();
    let topic = fresh_topic("corrupt");
    let serde = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    let bytes = serde.serialize(&topic, &btc()).unwrap();

    let truncated = &bytes[..bytes.len() - 3];
    let error = serde.deserialize(&topic, truncated).unwrap_err();
    assert!(matches!(error, SerdeError::Avro { .. }), "{error:?}");

    let mut trailing = bytes.clone();
    trailing.extend_from_slice(&[1, 2]);
    let error = serde.deserialize(&topic, &trailing).unwrap_err();
    assert!(matches!(error, SerdeError::WireFormat { .. }), "{error:?}");
}

#[test]
fn a_value_that_does_not_fit_the_schema_is_an_avro_error_before_any_registry_call() {
    #[derive(Serialize, Deserialize)]
    struct NoPrice {
        coin_id: String,
    }
    // Nothing listens on port 1: reaching the registry would be a Registry error instead.
    let serde = AvroSerde::<NoPrice>::new("http://127.0.0.1:1", PRICE_V1).unwrap();
    let error = serde
        .serialize(
            "misfit",
            &NoPrice {
                coin_id: "x".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(error, SerdeError::Avro { .. }), "{error:?}");
    assert!(!error.is_retriable());
}

#[test]
fn an_invalid_avro_schema_is_rejected_before_any_registry_call() {
    let error = AvroSerde::<Price>::new("http://127.0.0.1:1", r#"{"type": "record"}"#).unwrap_err();
    assert!(
        matches!(error, SerdeError::InvalidSchema { .. }),
        "{error:?}"
    );
}

#[test]
fn an_unreachable_registry_is_a_retriable_error() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let serde = AvroSerde::<Price>::builder("http://127.0.0.1:1", PRICE_V1)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let error = serde.serialize("t", &btc()).unwrap_err();
    assert!(error.is_retriable(), "{error:?}");
    assert!(matches!(
        error,
        SerdeError::Registry {
            retriable: true,
            ..
        }
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn works_from_inside_a_tokio_runtime() {
    let (url, _turn) = registry();
    let topic = fresh_topic("async");
    // Built, used (registry calls on cache misses) and dropped on a runtime thread.
    let serde = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    let bytes = serde.serialize(&topic, &btc()).unwrap();
    let fresh = AvroSerde::<Price>::new(&url, PRICE_V1).unwrap();
    assert_eq!(fresh.deserialize(&topic, &bytes).unwrap(), btc());
    drop((serde, fresh));
}
