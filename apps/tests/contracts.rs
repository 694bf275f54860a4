//! Contract tests for `contracts/`.
//!
//! - every `*.schema.json` compiles as JSON Schema draft 2020-12 and follows the house rules
//!   (`$id`, title, `additionalProperties: false`, every property required, nullable fields
//!   exactly the ones its description lists);
//! - every file in `EXAMPLES/` is valid against the schema its name maps to, and its derived ids
//!   (`event_id`, `alert_id`) are the SHA-256 of its key;
//! - every file in `INVALID/` fails, at exactly one instance location, with the JSON Schema
//!   keyword its file name states — so a misnamed or accidentally valid file fails this test;
//!   a price file named after a rule beyond the schema (`contract::rule`) passes the schema and
//!   fails the `contract` crate's check with exactly that rule;
//! - the `contract` crate (what the validator and the lake run) accepts every price example and
//!   rejects every invalid price file at the same place.
//!
//! The naming rules are documented in `contracts/README.md`; this file is their enforcement.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration};
use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

/// Schema stems, i.e. `contracts/<stem>.schema.json`.
const PRICE: &str = "event_crypto_price";
const DEAD_LETTER: &str = "dead_letter";
const METRICS: &str = "metrics_event";
const ALERT: &str = "alert_event";
const COIN_REFERENCE: &str = "coin_reference";
const SCHEMAS: [&str; 5] = [PRICE, DEAD_LETTER, METRICS, ALERT, COIN_REFERENCE];

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// 5-minute intervals in 365 days: the annualisation factor of `metrics_event` is its square root.
const INTERVALS_PER_YEAR: f64 = 105_120.0;

fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts")
}

fn read_json(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The `.json` files of a folder, sorted. Any other file there is an error: it would be skipped
/// silently otherwise.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    for file in &files {
        assert!(
            file.extension().is_some_and(|ext| ext == "json"),
            "{} is not a .json file; EXAMPLES/ and INVALID/ hold only JSON documents",
            file.display()
        );
    }
    files
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("{} has no UTF-8 file name", path.display()))
        .to_owned()
}

fn schema(stem: &str) -> Value {
    read_json(&contracts_dir().join(format!("{stem}.schema.json")))
}

fn validator(stem: &str) -> Validator {
    jsonschema::draft202012::new(&schema(stem))
        .unwrap_or_else(|e| panic!("{stem}.schema.json does not compile: {e}"))
}

/// `EXAMPLES/example_<x>.json` → schema: `example_dead_letter*`, `example_metrics*`,
/// `example_alert*`, `example_coin_reference*` name their schema; every other `example_*` is a
/// price event.
fn schema_of_example(stem: &str) -> &'static str {
    let name = stem
        .strip_prefix("example_")
        .unwrap_or_else(|| panic!("EXAMPLES/{stem}.json: name must start with example_"));
    if name.starts_with("dead_letter") {
        DEAD_LETTER
    } else if name.starts_with("metrics") {
        METRICS
    } else if name.starts_with("alert") {
        ALERT
    } else if name.starts_with("coin_reference") {
        COIN_REFERENCE
    } else {
        PRICE
    }
}

fn examples() -> Vec<(String, &'static str, Value)> {
    json_files(&contracts_dir().join("EXAMPLES"))
        .into_iter()
        .map(|path| {
            let stem = file_stem(&path);
            let schema = schema_of_example(&stem);
            (stem, schema, read_json(&path))
        })
        .collect()
}

fn error_list(errors: &[ValidationError<'_>]) -> String {
    errors
        .iter()
        .map(|e| format!("  {} at '{}': {e}", e.kind().keyword(), e.instance_path()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_schema_compiles_as_draft_2020_12_and_follows_the_house_rules() {
    let mut on_disk: Vec<String> = fs::read_dir(contracts_dir())
        .expect("contracts/ exists")
        .filter_map(|entry| {
            let name = entry.expect("directory entry").file_name();
            name.to_str()?
                .strip_suffix(".schema.json")
                .map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = SCHEMAS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "schemas in contracts/ and in this test differ"
    );

    for stem in SCHEMAS {
        let s = schema(stem);
        assert_eq!(s["$schema"], DRAFT_2020_12, "{stem}: $schema");
        let version = s["properties"]["schema_version"]["const"]
            .as_str()
            .unwrap_or_else(|| panic!("{stem}: properties.schema_version needs a string const"));
        let (major, minor) = version
            .split_once('.')
            .unwrap_or_else(|| panic!("{stem}: version {version} is not MAJOR.MINOR"));
        assert!(
            major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok(),
            "{stem}: version {version} is not MAJOR.MINOR"
        );
        let id = s["$id"]
            .as_str()
            .unwrap_or_else(|| panic!("{stem}: no $id"));
        assert!(
            id.starts_with("https://") && id.contains(&format!("/{stem}/{version}/")),
            "{stem}: $id {id} must name the schema and its version"
        );
        let title = s["title"]
            .as_str()
            .unwrap_or_else(|| panic!("{stem}: no title"));
        assert!(
            title.ends_with(&format!("contract version {version}")),
            "{stem}: title '{title}' must end with 'contract version {version}'"
        );
        assert_eq!(s["type"], "object", "{stem}: top-level type");
        assert_eq!(
            s["additionalProperties"], false,
            "{stem}: additionalProperties"
        );

        // Required-but-nullable policy: every property, at every object level, is required.
        for (object_path, object) in object_schemas(&s) {
            let mut properties: Vec<&str> = object["properties"]
                .as_object()
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut required: Vec<&str> = object["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            properties.sort();
            required.sort();
            assert_eq!(
                required, properties,
                "{stem}{object_path}: every property must be required"
            );
            assert_eq!(
                object["additionalProperties"], false,
                "{stem}{object_path}: additionalProperties must be false"
            );
        }

        validator(stem);
    }
    assert_eq!(
        schema(PRICE)["properties"]["schema_version"]["const"],
        contract::SCHEMA_VERSION
    );
}

#[test]
fn archived_versions_compile_and_name_their_version() {
    let archive = contracts_dir().join("archive");
    let mut checked = 0;
    for stem in SCHEMAS {
        let dir = archive.join(stem);
        if !dir.exists() {
            continue;
        }
        for path in json_files(&dir) {
            let version = file_stem(&path)
                .strip_suffix(".schema")
                .unwrap_or_else(|| panic!("{}: name it <version>.schema.json", path.display()))
                .to_owned();
            let s = read_json(&path);
            assert_eq!(
                s["properties"]["schema_version"]["const"],
                *version.as_str()
            );
            let id = s["$id"].as_str().unwrap_or_default();
            assert!(
                id.contains(&format!("/{stem}/{version}/")),
                "{}: $id {id}",
                path.display()
            );
            jsonschema::draft202012::new(&s)
                .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()));
            assert_ne!(
                s,
                schema(stem),
                "{}: an archived version must differ from the current one",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 1, "event_crypto_price 1.1 is archived");
}

/// `(pointer, schema)` of the root object schema and of each object-typed property below it.
fn object_schemas(root: &Value) -> Vec<(String, &Value)> {
    let mut out = vec![(String::new(), root)];
    if let Some(properties) = root["properties"].as_object() {
        for (name, sub) in properties {
            if sub.get("properties").is_some() {
                out.push((format!("/{name}"), sub));
            }
        }
    }
    out
}

#[test]
fn every_example_is_valid_and_every_schema_has_one() {
    let mut failures = Vec::new();
    let mut per_schema: BTreeMap<&str, usize> = BTreeMap::new();
    for (stem, schema_stem, instance) in examples() {
        *per_schema.entry(schema_stem).or_default() += 1;
        let v = validator(schema_stem);
        let errors: Vec<_> = v.iter_errors(&instance).collect();
        if !errors.is_empty() {
            failures.push(format!("{stem} ({schema_stem}):\n{}", error_list(&errors)));
        }
        if schema_stem == PRICE {
            let bytes = serde_json::to_vec(&instance).expect("serializable");
            if let Err(violation) = check_price(&bytes) {
                failures.push(format!("{stem}: the contract check says {violation}"));
            }
        }
        // Formats are annotations by default; the examples must also pass when they are asserted.
        let strict = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema(schema_stem))
            .expect("schema compiles with format assertion");
        let errors: Vec<_> = strict.iter_errors(&instance).collect();
        if !errors.is_empty() {
            failures.push(format!(
                "{stem} ({schema_stem}, formats on):\n{}",
                error_list(&errors)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "invalid examples:\n{}",
        failures.join("\n")
    );
    for stem in SCHEMAS {
        assert!(
            per_schema.get(stem).copied().unwrap_or(0) >= 1,
            "no example for {stem}"
        );
    }
    assert!(
        per_schema[PRICE] >= 2,
        "example_btc and example_eth are expected"
    );
}

/// What the name of an `INVALID/` file promises: the keyword(s) that must fail, the instance
/// location every error must be at, and for `required` the missing property.
#[derive(Debug)]
struct Expectation {
    keywords: &'static [&'static str],
    instance_path: String,
    missing_property: Option<String>,
}

/// `a.b` (dots for nesting) → `/a/b`.
fn pointer(dotted: &str) -> String {
    assert!(!dotted.is_empty(), "empty field name");
    let mut out = String::new();
    for segment in dotted.split('.') {
        out.push('/');
        out.push_str(segment);
    }
    out
}

/// Parses a rule name (the part after `<schema>__`) per contracts/README.md.
fn expectation(rule: &str) -> Option<Expectation> {
    let at = |keywords: &'static [&'static str], field: &str| Expectation {
        keywords,
        instance_path: pointer(field),
        missing_property: None,
    };
    if rule == "unknown_field" {
        return Some(Expectation {
            keywords: &["additionalProperties"],
            instance_path: String::new(),
            missing_property: None,
        });
    }
    if rule == "unknown_schema_version" {
        return Some(at(&["const"], "schema_version"));
    }
    if let Some(field) = rule.strip_suffix("_unknown_field") {
        return Some(at(&["additionalProperties"], field));
    }
    if let Some(field) = rule.strip_prefix("missing_required_") {
        let (parent, property) = match field.rsplit_once('.') {
            Some((parent, property)) => (pointer(parent), property),
            None => (String::new(), field),
        };
        return Some(Expectation {
            keywords: &["required"],
            instance_path: parent,
            missing_property: Some(property.to_owned()),
        });
    }
    if let Some(field) = rule.strip_prefix("null_required_") {
        return Some(at(&["type"], field));
    }
    if let Some((field, _what)) = rule.split_once("_wrong_type_") {
        return Some(at(&["type"], field));
    }
    const LOWER: &[&str] = &["minimum", "exclusiveMinimum"];
    const UPPER: &[&str] = &["maximum", "exclusiveMaximum"];
    const PATTERN: &[&str] = &["pattern"];
    const SUFFIXES: &[(&str, &[&str])] = &[
        ("_not_positive", LOWER),
        ("_negative", LOWER),
        ("_zero", LOWER),
        ("_below_minimum", LOWER),
        ("_above_maximum", UPPER),
        ("_not_utc", PATTERN),
        ("_not_rfc3339", PATTERN),
        ("_not_millis", PATTERN),
        ("_bad_format", PATTERN),
        ("_uppercase", PATTERN),
        ("_control_character", PATTERN),
        ("_too_short", &["minLength"]),
        ("_too_long", &["maxLength"]),
        ("_not_in_enum", &["enum"]),
    ];
    SUFFIXES
        .iter()
        .find_map(|(suffix, keywords)| rule.strip_suffix(*suffix).map(|field| at(keywords, field)))
}

#[test]
fn every_invalid_file_fails_for_the_rule_its_name_states() {
    let mut failures = Vec::new();
    let mut per_schema: BTreeMap<&str, usize> = BTreeMap::new();
    for path in json_files(&contracts_dir().join("INVALID")) {
        let stem = file_stem(&path);
        let (schema_stem, rule) = match stem.split_once("__") {
            Some((prefix, rule)) => match SCHEMAS.iter().find(|s| **s == prefix) {
                Some(s) => (*s, rule),
                None => {
                    failures.push(format!("{stem}: unknown schema prefix '{prefix}'"));
                    continue;
                }
            },
            None => (PRICE, stem.as_str()),
        };
        *per_schema.entry(schema_stem).or_default() += 1;
        if schema_stem == PRICE && contract::rule::ALL.contains(&rule) {
            if let Some(failure) = breaks_only_the_contract_rule(&path, rule) {
                failures.push(format!("{stem}: {failure}"));
            }
            continue;
        }
        let Some(expect) = expectation(rule) else {
            failures.push(format!(
                "{stem}: rule '{rule}' does not follow the naming grammar"
            ));
            continue;
        };
        let instance = read_json(&path);
        let v = validator(schema_stem);
        let errors: Vec<_> = v.iter_errors(&instance).collect();
        if errors.is_empty() {
            failures.push(format!(
                "{stem}: is VALID against {schema_stem}, expected {expect:?}"
            ));
            continue;
        }
        // One rule broken: every error sits at the promised location ...
        let elsewhere: Vec<_> = errors
            .iter()
            .filter(|e| e.instance_path().as_str() != expect.instance_path)
            .collect();
        // ... and at least one of them is the promised keyword (and property).
        let matched = errors.iter().any(|e| {
            let keyword_ok = expect.keywords.contains(&e.kind().keyword());
            let detail_ok = match (e.kind(), &expect.missing_property) {
                (ValidationErrorKind::Required { property }, Some(want)) => property == want,
                (ValidationErrorKind::AdditionalProperties { unexpected }, _) => {
                    !unexpected.is_empty()
                }
                _ => true,
            };
            keyword_ok && detail_ok && e.instance_path().as_str() == expect.instance_path
        });
        if !matched || !elsewhere.is_empty() {
            failures.push(format!(
                "{stem}: expected {expect:?}, got:\n{}",
                error_list(&errors)
            ));
        }
        // The validator and the lake (the contract crate) reject it at the same place.
        if schema_stem == PRICE {
            match check_price(&fs::read(&path).expect("readable")) {
                Err(v) if v.pointer == expect.instance_path => {}
                other => failures.push(format!(
                    "{stem}: the contract check gives {other:?}, expected a violation at '{}'",
                    expect.instance_path
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "INVALID files that do not keep their promise:\n{}",
        failures.join("\n")
    );
    assert!(
        per_schema.get(PRICE).copied().unwrap_or(0) >= 12,
        "at least 12 invalid price events"
    );
    for stem in [DEAD_LETTER, METRICS, ALERT, COIN_REFERENCE] {
        assert!(
            per_schema.get(stem).copied().unwrap_or(0) >= 3,
            "at least 3 invalid {stem} files"
        );
    }
}

/// The Kafka timestamp every price file of `EXAMPLES/` and `INVALID/` is checked with: 6 ms
/// after the examples' `ts_ingest`, as a producer's CreateTime would be (contracts/README.md).
const RECORD_TIMESTAMP: &str = "2024-04-07T16:50:00.418Z";

/// The contract crate's check of a price file's bytes, as the validator runs it.
fn check_price(bytes: &[u8]) -> Result<contract::Checked, contract::Violation> {
    let timestamp = DateTime::parse_from_rfc3339(RECORD_TIMESTAMP)
        .expect("RFC 3339")
        .timestamp_millis();
    contract::PriceContract::new(contract::CheckConfig::default()).check(
        None,
        Some(bytes),
        Some(timestamp),
    )
}

/// `None` when the file at `path` passes the JSON Schema (or is no document at all) and the
/// contract check rejects it for `rule`; else what is wrong.
fn breaks_only_the_contract_rule(path: &Path, rule: &str) -> Option<String> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if let Ok(instance) = serde_json::from_slice::<Value>(&bytes) {
        let price = validator(PRICE);
        let errors: Vec<_> = price.iter_errors(&instance).collect();
        if !errors.is_empty() {
            return Some(format!(
                "rule '{rule}' lies beyond the schema, but the schema already rejects it:\n{}",
                error_list(&errors)
            ));
        }
    }
    match check_price(&bytes) {
        Err(violation) if violation.rule == rule && violation.errors_total == 1 => None,
        other => Some(format!(
            "expected only the contract rule '{rule}', got {other:?}"
        )),
    }
}

#[test]
fn the_grammar_rejects_names_it_does_not_know() {
    assert!(expectation("price_is_weird").is_none());
    let e = expectation("missing_required_reason.message").expect("parses");
    assert_eq!(
        (e.instance_path.as_str(), e.missing_property.as_deref()),
        ("/reason", Some("message"))
    );
    let e = expectation("market_cap_rank_zero").expect("parses");
    assert_eq!(e.instance_path, "/market_cap_rank");
}

/// The names listed in "Fields that may be null: a, b, c. No other field may be null." of a
/// schema's description, as JSON pointers.
fn documented_nullable(stem: &str) -> Vec<String> {
    let s = schema(stem);
    let description = s["description"].as_str().unwrap_or_default();
    let start = "Fields that may be null: ";
    let end = ". No other field may be null.";
    let from = description
        .find(start)
        .unwrap_or_else(|| panic!("{stem}: description must say '{start}...{end}'"))
        + start.len();
    let to = from
        + description[from..]
            .find(end)
            .unwrap_or_else(|| panic!("{stem}: description must say '{start}...{end}'"));
    description[from..to].split(", ").map(pointer).collect()
}

/// Pointers to every top-level field of an example and to the fields of its nested objects.
fn field_pointers(instance: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in instance.as_object().expect("examples are objects") {
        out.push(format!("/{name}"));
        if let Some(inner) = value.as_object() {
            out.extend(inner.keys().map(|k| format!("/{name}/{k}")));
        }
    }
    out
}

#[test]
fn nullable_fields_are_exactly_the_ones_each_description_lists() {
    let examples = examples();
    let mut failures = Vec::new();
    for stem in SCHEMAS {
        let nullable = documented_nullable(stem);
        let v = validator(stem);
        let mut nulled_ok: BTreeMap<String, bool> = BTreeMap::new();
        for (example, _, instance) in examples.iter().filter(|(_, s, _)| *s == stem) {
            for field in field_pointers(instance) {
                let mut copy = instance.clone();
                *copy.pointer_mut(&field).expect("pointer from the example") = Value::Null;
                let ok = v.is_valid(&copy);
                *nulled_ok.entry(field.clone()).or_default() |= ok;
                if ok && !nullable.contains(&field) {
                    failures.push(format!("{stem}: {example} with {field} = null is valid, but the description does not list {field}"));
                }
            }
        }
        for field in &nullable {
            match nulled_ok.get(field) {
                None => failures.push(format!("{stem}: description lists {field}, no example has it")),
                Some(false) => failures.push(format!("{stem}: description lists {field} as nullable, but null is rejected in every example")),
                Some(true) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Lowercase hex SHA-256, from the `sha2` crate: independent of the `contract` crate's ids.
fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .fold(String::new(), |mut hex, byte| {
            write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
            hex
        })
}

fn text<'a>(instance: &'a Value, field: &str) -> &'a str {
    instance[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string"))
}

fn price_event_id(e: &Value) -> String {
    let key = format!(
        "{}|{}|{}",
        text(e, "coin_id"),
        text(e, "vs_currency"),
        text(e, "ts_event")
    );
    sha256_hex(key.as_bytes())
}

#[test]
fn event_ids_and_alert_ids_are_the_sha256_of_their_keys() {
    let mut checked = 0;
    for (stem, schema_stem, e) in examples() {
        match schema_stem {
            PRICE => {
                assert_eq!(text(&e, "event_id"), price_event_id(&e), "{stem}: event_id");
                checked += 1;
            }
            ALERT => {
                let key = format!(
                    "{}|{}|{}|{}|{}",
                    text(&e, "rule"),
                    text(&e, "coin_id"),
                    text(&e, "vs_currency"),
                    e["window"].as_str().unwrap_or(""),
                    text(&e, "ts_event")
                );
                assert_eq!(
                    text(&e, "alert_id"),
                    sha256_hex(key.as_bytes()),
                    "{stem}: alert_id"
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(
        checked >= 4,
        "expected price and alert examples, checked {checked}"
    );

    // An invalid price event breaks only the rule it names: its event_id still matches its key
    // (unless the event_id itself, or a key field's type, is the broken rule).
    for path in json_files(&contracts_dir().join("INVALID")) {
        let stem = file_stem(&path);
        if stem.contains("__") || stem.starts_with("event_id_") {
            continue;
        }
        let Ok(e) = serde_json::from_slice::<Value>(&fs::read(&path).expect("readable")) else {
            continue; // no document (tombstone)
        };
        let key_is_text = ["coin_id", "vs_currency", "ts_event"]
            .iter()
            .all(|f| e[*f].is_string());
        if key_is_text && e["event_id"].is_string() {
            assert_eq!(
                text(&e, "event_id"),
                price_event_id(&e),
                "INVALID/{stem}.json: event_id"
            );
        }
    }
}

fn utc(instance: &Value, field: &str) -> DateTime<chrono::FixedOffset> {
    DateTime::parse_from_rfc3339(text(instance, field)).unwrap_or_else(|e| panic!("{field}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12_f64.max(1e-9 * a.abs().max(b.abs()))
}

#[test]
fn metrics_examples_follow_the_documented_formulas() {
    let mut checked = 0;
    for (stem, schema_stem, m) in examples() {
        if schema_stem != METRICS {
            continue;
        }
        checked += 1;
        let horizon = match text(&m, "horizon") {
            "5m" => Duration::minutes(5),
            "1h" => Duration::hours(1),
            "24h" => Duration::hours(24),
            "7d" => Duration::days(7),
            other => panic!("{stem}: horizon {other}"),
        };
        let (start, end, ts) = (
            utc(&m, "window_start"),
            utc(&m, "window_end"),
            utc(&m, "ts_event"),
        );
        assert_eq!(end - start, horizon, "{stem}: window_end - window_start");
        assert!(
            start <= ts && ts < end,
            "{stem}: ts_event outside the window"
        );
        assert!(utc(&m, "ts_emit") >= ts, "{stem}: ts_emit before ts_event");

        let n = m["n_points"].as_u64().expect("n_points");
        let (p1, pn) = (
            m["price_first"].as_f64().expect("p1"),
            m["price_last"].as_f64().expect("pn"),
        );
        match (m["simple_return"].as_f64(), m["log_return"].as_f64()) {
            (Some(simple), Some(log)) => {
                assert!(n >= 2, "{stem}: returns need 2 points");
                assert!(
                    close(simple, pn / p1 - 1.0),
                    "{stem}: simple_return != p_n/p_1 - 1"
                );
                assert!(
                    close(log, (pn / p1).ln()),
                    "{stem}: log_return != ln(p_n/p_1)"
                );
            }
            (None, None) => assert!(n < 2, "{stem}: returns are null with {n} points"),
            _ => panic!("{stem}: simple_return and log_return must be both null or both set"),
        }
        match (
            m["realized_vol"].as_f64(),
            m["realized_vol_annualized"].as_f64(),
        ) {
            (Some(vol), Some(annual)) => {
                assert!(n >= 3, "{stem}: volatility needs 3 points");
                assert!(
                    close(annual, vol * INTERVALS_PER_YEAR.sqrt()),
                    "{stem}: annualisation"
                );
            }
            (None, None) => assert!(n < 3, "{stem}: volatility is null with {n} points"),
            _ => panic!(
                "{stem}: realized_vol and realized_vol_annualized must be both null or both set"
            ),
        }
    }
    assert!(checked >= 1);
}

#[test]
fn dead_letter_examples_carry_the_original_bytes_and_the_validators_own_reason() {
    let mut checked = 0;
    for (stem, schema_stem, d) in examples() {
        if schema_stem != DEAD_LETTER {
            continue;
        }
        checked += 1;
        let original = &d["original"];
        let data = text(original, "data");
        let size = original["size_bytes"].as_u64().expect("size_bytes");
        match text(original, "encoding") {
            "utf8" => assert_eq!(data.len() as u64, size, "{stem}: size_bytes"),
            "base64" => {
                let padding = data.bytes().rev().take_while(|b| *b == b'=').count() as u64;
                assert_eq!(
                    data.len() as u64 / 4 * 3 - padding,
                    size,
                    "{stem}: size_bytes"
                );
            }
            other => panic!("{stem}: encoding {other}"),
        }
        if text(&d, "error_kind") != "schema_violation" {
            continue;
        }
        // The reason must be exactly what the validator says about the original record.
        let record: Value = serde_json::from_str(data).expect("a schema violation is JSON");
        let price = validator(PRICE);
        let errors: Vec<_> = price.iter_errors(&record).collect();
        assert_eq!(
            d["errors_total"].as_u64(),
            Some(errors.len() as u64),
            "{stem}: errors_total"
        );
        let first = errors.first().expect("the original is invalid");
        let reason = &d["reason"];
        assert_eq!(
            text(reason, "keyword"),
            first.kind().keyword(),
            "{stem}: reason.keyword"
        );
        assert_eq!(
            text(reason, "instance_path"),
            first.instance_path().as_str(),
            "{stem}: reason.instance_path"
        );
        assert_eq!(
            text(reason, "schema_path"),
            first.schema_path().as_str(),
            "{stem}: reason.schema_path"
        );
        assert_eq!(
            text(reason, "message"),
            first.to_string(),
            "{stem}: reason.message"
        );
    }
    assert!(checked >= 1);
}
