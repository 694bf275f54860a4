//! JSON and JSON-Schema-validated serdes.

use std::path::PathBuf;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use streamlib::serdes::{JsonSchemaSerde, JsonSerde, JsonValueSerde, Serde, SerdeError};

const TOPIC: &str = "prices";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Price {
    coin_id: String,
    price: f64,
    rank: Option<u32>,
    tags: Vec<String>,
}

fn price_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": false,
        "required": ["coin_id", "price", "rank", "tags"],
        "properties": {
            "coin_id": { "type": "string", "pattern": "^[a-z0-9-]+$" },
            "price": { "type": "number", "exclusiveMinimum": 0 },
            "rank": { "type": ["integer", "null"], "minimum": 1 },
            "tags": { "type": "array", "items": { "type": "string", "minLength": 1 } }
        }
    })
}

fn btc() -> Price {
    Price {
        coin_id: "bitcoin".into(),
        price: 70187.5,
        rank: Some(1),
        tags: vec!["pow".into()],
    }
}

fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

/// The `Schema` error's violation, or a panic showing what came instead.
fn violation(result: Result<impl std::fmt::Debug, SerdeError>) -> (String, String, String, usize) {
    match result {
        Err(SerdeError::Schema(v)) => (v.rule, v.instance_pointer, v.schema_pointer, v.additional),
        other => panic!("expected a schema violation, got {other:?}"),
    }
}

#[test]
fn json_serde_writes_compact_json_in_field_order() {
    let bytes = JsonSerde::<Price>::new().serialize(TOPIC, &btc()).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"{"coin_id":"bitcoin","price":70187.5,"rank":1,"tags":["pow"]}"#
    );
}

#[test]
fn malformed_json_is_a_json_error_with_position() {
    for serde in [
        &JsonSerde::<Price>::new() as &dyn Serde<Price>,
        &JsonSchemaSerde::<Price>::new(&price_schema()).unwrap(),
    ] {
        let error = serde
            .deserialize(TOPIC, br#"{"coin_id": "bitcoin", "price": }"#)
            .unwrap_err();
        assert!(matches!(error, SerdeError::Json { .. }), "{error:?}");
        assert!(error.to_string().contains("line 1 column"), "{error}");
    }
    let error = JsonValueSerde.deserialize(TOPIC, b"\xff").unwrap_err();
    assert!(matches!(error, SerdeError::Json { .. }), "{error:?}");
}

#[test]
fn json_of_the_wrong_shape_is_a_json_error() {
    let error = JsonSerde::<Price>::new()
        .deserialize(TOPIC, br#"{"coin_id": 5}"#)
        .unwrap_err();
    assert!(matches!(error, SerdeError::Json { .. }), "{error:?}");
}

#[test]
fn schema_violation_names_the_rule_and_the_pointer() {
    let serde = JsonSchemaSerde::<Price>::new(&price_schema()).unwrap();
    let bytes = br#"{"coin_id":"bitcoin","price":-1,"rank":1,"tags":[]}"#;
    let result = serde.deserialize(TOPIC, bytes);
    let message = result.as_ref().unwrap_err().to_string();
    let (rule, pointer, schema_pointer, additional) = violation(result);
    assert_eq!(rule, "exclusiveMinimum");
    assert_eq!(pointer, "/price");
    assert_eq!(schema_pointer, "/properties/price/exclusiveMinimum");
    assert_eq!(additional, 0);
    assert!(
        message.contains("rule `exclusiveMinimum` failed at `/price`"),
        "{message}"
    );
    assert!(message.contains("-1"), "{message}");
}

#[test]
fn each_kind_of_violation_is_reported_with_its_keyword() {
    let serde = JsonSchemaSerde::<Price>::new(&price_schema()).unwrap();
    let cases = [
        (json!({"price": 1, "rank": 1, "tags": []}), "required", ""),
        (
            json!({"coin_id": "BTC", "price": 1, "rank": 1, "tags": []}),
            "pattern",
            "/coin_id",
        ),
        (
            json!({"coin_id": "b", "price": "1", "rank": 1, "tags": []}),
            "type",
            "/price",
        ),
        (
            json!({"coin_id": "b", "price": 1, "rank": 0, "tags": []}),
            "minimum",
            "/rank",
        ),
        (
            json!({"coin_id": "b", "price": 1, "rank": null, "tags": ["ok", ""]}),
            "minLength",
            "/tags/1",
        ),
        (
            json!({"coin_id": "b", "price": 1, "rank": null, "tags": [], "extra": 1}),
            "additionalProperties",
            "",
        ),
    ];
    for (instance, want_rule, want_pointer) in cases {
        let bytes = serde_json::to_vec(&instance).unwrap();
        let (rule, pointer, _, _) = violation(serde.deserialize(TOPIC, &bytes));
        assert_eq!(
            (rule.as_str(), pointer.as_str()),
            (want_rule, want_pointer),
            "{instance}"
        );
    }
}

#[test]
fn the_first_violation_is_kept_and_the_others_counted() {
    let serde = JsonSchemaSerde::<Price>::new(&price_schema()).unwrap();
    let bytes = br#"{"coin_id":"B","price":0,"rank":0,"tags":[]}"#;
    let result = serde.deserialize(TOPIC, bytes);
    let message = result.as_ref().unwrap_err().to_string();
    let (_, _, _, additional) = violation(result);
    assert_eq!(
        additional, 2,
        "pattern, exclusiveMinimum and minimum all fail"
    );
    assert!(message.ends_with("(and 2 more violations)"), "{message}");
}

#[test]
fn serializing_validates_too() {
    let serde = JsonSchemaSerde::<Price>::new(&price_schema()).unwrap();
    let mut bad = btc();
    bad.rank = Some(0);
    let (rule, pointer, _, _) = violation(serde.serialize(TOPIC, &bad));
    assert_eq!((rule.as_str(), pointer.as_str()), ("minimum", "/rank"));

    let bytes = serde.serialize(TOPIC, &btc()).unwrap();
    assert_eq!(
        bytes,
        JsonSerde::<Price>::new().serialize(TOPIC, &btc()).unwrap()
    );
    assert_eq!(serde.deserialize(TOPIC, &bytes).unwrap(), btc());
}

#[test]
fn formats_are_asserted_not_only_annotated() {
    let serde =
        JsonSchemaSerde::<Value>::new(&json!({"type": "string", "format": "date-time"})).unwrap();
    assert!(serde
        .deserialize(TOPIC, br#""2024-04-07T16:49:31.736Z""#)
        .is_ok());
    let (rule, pointer, _, _) = violation(serde.deserialize(TOPIC, br#""2024-02-30T00:00:00Z""#));
    assert_eq!((rule.as_str(), pointer.as_str()), ("format", ""));
}

#[test]
fn an_invalid_schema_is_a_typed_error() {
    let error = JsonSchemaSerde::<Value>::new(&json!({"type": 12})).unwrap_err();
    assert!(
        matches!(error, SerdeError::InvalidSchema { .. }),
        "{error:?}"
    );
    let error = JsonSchemaSerde::<Value>::new(&json!({"$ref": "#/$defs/missing"})).unwrap_err();
    assert!(
        matches!(error, SerdeError::InvalidSchema { .. }),
        "{error:?}"
    );
}

#[test]
fn schema_files_load_and_their_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("price.schema.json");
    std::fs::write(&good, serde_json::to_vec(&price_schema()).unwrap()).unwrap();
    let serde = JsonSchemaSerde::<Price>::from_file(&good).unwrap();
    assert_eq!(
        serde
            .deserialize(TOPIC, &serde_json::to_vec(&btc()).unwrap())
            .unwrap(),
        btc()
    );

    let missing = dir.path().join("missing.json");
    match JsonSchemaSerde::<Price>::from_file(&missing) {
        Err(SerdeError::SchemaFile { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }

    let not_json = dir.path().join("broken.json");
    std::fs::write(&not_json, "{ nope").unwrap();
    let error = JsonSchemaSerde::<Price>::from_file(&not_json).unwrap_err();
    assert!(
        matches!(error, SerdeError::InvalidSchema { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("broken.json"), "{error}");
}

#[test]
fn the_price_contract_accepts_its_examples_and_names_what_breaks_it() {
    let dir = contracts_dir();
    let serde =
        JsonSchemaSerde::<Value>::from_file(dir.join("event_crypto_price.schema.json")).unwrap();
    for example in ["example_btc.json", "example_eth.json"] {
        let bytes = std::fs::read(dir.join("EXAMPLES").join(example)).unwrap();
        let value = serde
            .deserialize("crypto.prices.raw", &bytes)
            .unwrap_or_else(|e| panic!("{example}: {e}"));
        serde
            .serialize("crypto.prices.valid", &value)
            .unwrap_or_else(|e| panic!("{example}: {e}"));
    }
    let cases = [
        ("price_not_positive.json", "exclusiveMinimum", "/price"),
        ("missing_required_price.json", "required", ""),
        ("unknown_field.json", "additionalProperties", ""),
        ("coin_id_uppercase.json", "pattern", "/coin_id"),
    ];
    for (file, want_rule, want_pointer) in cases {
        let bytes = std::fs::read(dir.join("INVALID").join(file)).unwrap();
        let (rule, pointer, _, _) = violation(serde.deserialize("crypto.prices.raw", &bytes));
        assert_eq!(
            (rule.as_str(), pointer.as_str()),
            (want_rule, want_pointer),
            "{file}"
        );
    }
}

#[test]
fn validate_checks_a_value_without_converting_it() {
    let serde = JsonSchemaSerde::<Price>::new(&price_schema()).unwrap();
    assert!(serde
        .validate(&serde_json::to_value(btc()).unwrap())
        .is_ok());
    let (rule, _, _, _) = violation(serde.validate(&json!([])));
    assert_eq!(rule, "type");
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".*".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".*", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn json_round_trips(
        coin_id in "[a-z0-9-]{1,20}",
        price in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        rank in proptest::option::of(any::<u32>()),
        tags in proptest::collection::vec(".*", 0..4),
    ) {
        let value = Price { coin_id, price, rank, tags };
        let serde = JsonSerde::<Price>::new();
        let bytes = serde.serialize(TOPIC, &value).unwrap();
        prop_assert_eq!(serde.deserialize(TOPIC, &bytes).unwrap(), value);
    }

    #[test]
    fn json_values_round_trip(value in arbitrary_json()) {
        let bytes = JsonValueSerde.serialize(TOPIC, &value).unwrap();
        prop_assert_eq!(JsonValueSerde.deserialize(TOPIC, &bytes).unwrap(), value);
    }

    #[test]
    fn schema_valid_values_round_trip(
        coin_id in "[a-z0-9-]{1,20}",
        price in (f64::MIN_POSITIVE..1e12),
        rank in proptest::option::of(1..u32::MAX),
        tags in proptest::collection::vec(".+", 0..4),
    ) {
        let value = Price { coin_id, price, rank, tags };
        let serde = JsonSchemaSerde::<Price>::new(&price_schema()).unwrap();
        let bytes = serde.serialize(TOPIC, &value).unwrap();
        prop_assert_eq!(serde.deserialize(TOPIC, &bytes).unwrap(), value);
    }
}
