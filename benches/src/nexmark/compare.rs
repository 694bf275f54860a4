//! The three ways `benches/NEXMARK.md` compares two outputs of a query, on parsed JSON:
//! - [`Mode::All`]: the multisets of (key, value) records are equal;
//! - [`Mode::Final`]: the last value per key is equal (a tombstone removes the key);
//! - [`Mode::Distinct`]: the sets of distinct (key, value) records are equal.
//!
//! An [`Output`] keeps only what its mode compares. Records are compared by a canonical text
//! (the key, then the value as compact JSON with its object fields sorted), so field order and
//! number formatting aside. An all-records output of millions of records keeps a 128-bit hash
//! per distinct record instead of its text; a [`Mismatch`] then names its examples by hash
//! until [`Mismatch::resolve`] finds their text in the records.
//!
//! ```
//! use benches::nexmark::compare::{compare, Mode, Output};
//! use serde_json::json;
//!
//! let mut expected = Output::new(Mode::Final);
//! expected.add("10", Some(&json!({"category": 10, "avg": 175})));
//! let mut actual = Output::new(Mode::Final);
//! actual.add("10", Some(&json!({"avg": 100, "category": 10})));
//! actual.add("10", Some(&json!({"avg": 175, "category": 10})));
//! assert!(compare(&expected, &actual).is_none());
//! actual.add("10", None); // a tombstone
//! let mismatch = compare(&expected, &actual).unwrap();
//! assert_eq!(mismatch.missing, 1);
//! ```

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use serde_json::Value;

/// How two outputs are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The multiset of records.
    All,
    /// The last value per key.
    Final,
    /// The set of distinct records.
    Distinct,
}

impl Mode {
    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Final => "final",
            Self::Distinct => "distinct",
        }
    }
}

/// How many examples of each kind of difference a [`Mismatch`] keeps.
const EXAMPLES: usize = 3;

/// The canonical text of a value: compact JSON, object fields sorted (serde_json's map is
/// ordered by key), `null` for a tombstone.
fn canonical_value(value: Option<&Value>) -> String {
    value.map_or_else(|| "null".to_string(), Value::to_string)
}

/// The canonical text of a record: its key, a tab, its canonical value.
pub fn canonical(key: &str, value: Option<&Value>) -> String {
    format!("{key}\t{}", canonical_value(value))
}

/// Parses a raw record: a UTF-8 key (required) and a JSON value or none (a tombstone).
pub fn parse(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(String, Option<Value>), String> {
    let key = std::str::from_utf8(key.ok_or("a record without a key")?)
        .map_err(|e| format!("a key that is not UTF-8: {e}"))?;
    let value = value
        .map(serde_json::from_slice::<Value>)
        .transpose()
        .map_err(|e| format!("a value of key {key} that is not JSON: {e}"))?;
    Ok((key.to_string(), value))
}

/// A 128-bit hash of a canonical record (two SipHash runs with different seeds).
fn hash(canonical: &str) -> u128 {
    let half = |seed: u8| {
        let mut hasher = DefaultHasher::new();
        seed.hash(&mut hasher);
        canonical.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// What an output keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kept {
    /// How often each record occurs, by hash.
    Counts(HashMap<u128, u64>),
    /// The last canonical value of each key.
    Last(BTreeMap<String, String>),
    /// The distinct canonical records.
    Set(BTreeSet<String>),
}

/// One output of a query, reduced to what its mode compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    mode: Mode,
    records: u64,
    kept: Kept,
}

impl Output {
    /// An empty output compared by `mode`.
    pub fn new(mode: Mode) -> Self {
        let kept = match mode {
            Mode::All => Kept::Counts(HashMap::new()),
            Mode::Final => Kept::Last(BTreeMap::new()),
            Mode::Distinct => Kept::Set(BTreeSet::new()),
        };
        Self {
            mode,
            records: 0,
            kept,
        }
    }

    /// How it is compared.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Records added, tombstones included.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Adds a record; `None` is a tombstone.
    pub fn add(&mut self, key: &str, value: Option<&Value>) {
        self.records += 1;
        match &mut self.kept {
            Kept::Counts(counts) => *counts.entry(hash(&canonical(key, value))).or_default() += 1,
            Kept::Last(last) => match value {
                Some(value) => {
                    last.insert(key.to_string(), canonical_value(Some(value)));
                }
                None => {
                    last.remove(key);
                }
            },
            Kept::Set(set) => {
                set.insert(canonical(key, value));
            }
        }
    }

    /// Adds a raw record (see [`parse`]).
    pub fn add_raw(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), String> {
        let (key, value) = parse(key, value)?;
        self.add(&key, value.as_ref());
        Ok(())
    }
}

/// An example of a difference: a record's text, or only its hash until resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Example {
    Text(String),
    Hash(u128),
}

impl Example {
    fn show(&self) -> String {
        match self {
            Self::Text(text) => text.replace('\t', " → "),
            Self::Hash(hash) => format!("record #{:08x}", (hash >> 96) as u32),
        }
    }
}

/// Which output a record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The expected one.
    Expected,
    /// The actual one.
    Actual,
}

/// How an actual output differs from the expected one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Records (all: counting repeats; distinct) or keys (final) expected but not there.
    pub missing: u64,
    /// Records or keys there but not expected.
    pub extra: u64,
    /// Final only: keys whose last value differs.
    pub changed: u64,
    missing_examples: Vec<Example>,
    extra_examples: Vec<Example>,
    changed_examples: Vec<String>,
}

/// `None` when `actual` equals `expected` as their mode says, else what differs.
///
/// # Panics
/// When the two outputs have different modes.
pub fn compare(expected: &Output, actual: &Output) -> Option<Mismatch> {
    assert_eq!(expected.mode, actual.mode, "outputs of different modes");
    let mut mismatch = Mismatch {
        missing: 0,
        extra: 0,
        changed: 0,
        missing_examples: Vec::new(),
        extra_examples: Vec::new(),
        changed_examples: Vec::new(),
    };
    let note = |examples: &mut Vec<Example>, example: Example| {
        if examples.len() < EXAMPLES {
            examples.push(example);
        }
    };
    match (&expected.kept, &actual.kept) {
        (Kept::Counts(want), Kept::Counts(got)) => {
            for (hash, &n) in want {
                let have = got.get(hash).copied().unwrap_or(0);
                if have < n {
                    mismatch.missing += n - have;
                    note(&mut mismatch.missing_examples, Example::Hash(*hash));
                }
            }
            for (hash, &n) in got {
                let wanted = want.get(hash).copied().unwrap_or(0);
                if n > wanted {
                    mismatch.extra += n - wanted;
                    note(&mut mismatch.extra_examples, Example::Hash(*hash));
                }
            }
        }
        (Kept::Last(want), Kept::Last(got)) => {
            for (key, value) in want {
                match got.get(key) {
                    None => {
                        mismatch.missing += 1;
                        let text = format!("{key}\t{value}");
                        note(&mut mismatch.missing_examples, Example::Text(text));
                    }
                    Some(other) if other != value => {
                        mismatch.changed += 1;
                        if mismatch.changed_examples.len() < EXAMPLES {
                            mismatch
                                .changed_examples
                                .push(format!("key {key}: expected {value}, got {other}"));
                        }
                    }
                    Some(_) => {}
                }
            }
            for (key, value) in got {
                if !want.contains_key(key) {
                    mismatch.extra += 1;
                    let text = format!("{key}\t{value}");
                    note(&mut mismatch.extra_examples, Example::Text(text));
                }
            }
        }
        (Kept::Set(want), Kept::Set(got)) => {
            for record in want.difference(got) {
                mismatch.missing += 1;
                note(
                    &mut mismatch.missing_examples,
                    Example::Text(record.clone()),
                );
            }
            for record in got.difference(want) {
                mismatch.extra += 1;
                note(&mut mismatch.extra_examples, Example::Text(record.clone()));
            }
        }
        _ => unreachable!("the modes are equal"),
    }
    (mismatch.missing + mismatch.extra + mismatch.changed > 0).then_some(mismatch)
}

impl Mismatch {
    /// Whether some examples are known only by hash: [`Mismatch::resolve`] them from the
    /// records of their side.
    pub fn unresolved(&self, side: Side) -> bool {
        self.examples(side)
            .iter()
            .any(|e| matches!(e, Example::Hash(_)))
    }

    fn examples(&self, side: Side) -> &[Example] {
        match side {
            Side::Expected => &self.missing_examples,
            Side::Actual => &self.extra_examples,
        }
    }

    /// Replaces hashed examples of `side` by their text, scanning `records` (canonical texts,
    /// see [`canonical`]) until every one is found.
    pub fn resolve(&mut self, side: Side, records: impl IntoIterator<Item = String>) {
        let examples = match side {
            Side::Expected => &mut self.missing_examples,
            Side::Actual => &mut self.extra_examples,
        };
        let mut open = examples
            .iter()
            .filter(|e| matches!(e, Example::Hash(_)))
            .count();
        for record in records {
            if open == 0 {
                return;
            }
            let wanted = Example::Hash(hash(&record));
            if let Some(example) = examples.iter_mut().find(|e| **e == wanted) {
                *example = Example::Text(record);
                open -= 1;
            }
        }
    }

    /// One paragraph: what differs, with examples; `expected` and `actual` name the outputs.
    pub fn describe(&self, expected: &str, actual: &str) -> String {
        let mut out = format!("{actual} differs from {expected}:");
        let mut part = |n: u64, what: &str, examples: Vec<String>| {
            if n == 0 {
                return;
            }
            let _ = write!(out, " {n} {what}");
            if !examples.is_empty() {
                let _ = write!(out, " (e.g. {})", examples.join("; "));
            }
            out.push(';');
        };
        let show = |examples: &[Example]| examples.iter().map(Example::show).collect();
        part(
            self.missing,
            &format!("missing (in {expected} only)"),
            show(&self.missing_examples),
        );
        part(
            self.extra,
            &format!("unexpected (in {actual} only)"),
            show(&self.extra_examples),
        );
        part(
            self.changed,
            "keys with another last value",
            self.changed_examples.clone(),
        );
        out.pop();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn output(mode: Mode, records: &[(&str, Option<Value>)]) -> Output {
        let mut output = Output::new(mode);
        for (key, value) in records {
            output.add(key, value.as_ref());
        }
        output
    }

    #[test]
    fn values_compare_parsed_not_as_text() {
        let mut a = Output::new(Mode::All);
        a.add_raw(Some(b"1"), Some(br#"{"auction":1,"price":2}"#))
            .unwrap();
        let mut b = Output::new(Mode::All);
        b.add_raw(Some(b"1"), Some(br#"{ "price": 2, "auction": 1 }"#))
            .unwrap();
        assert_eq!(compare(&a, &b), None);
        assert!(b.add_raw(Some(b"1"), Some(b"{not json")).is_err());
        assert!(b.add_raw(None, Some(b"{}")).is_err());
    }

    #[test]
    fn all_counts_repeated_records() {
        let one = Some(json!({"a": 1}));
        let expected = output(Mode::All, &[("k", one.clone()), ("k", one.clone())]);
        let actual = output(Mode::All, &[("k", one.clone())]);
        let mut mismatch = compare(&expected, &actual).unwrap();
        assert_eq!((mismatch.missing, mismatch.extra), (1, 0));
        assert!(mismatch.unresolved(Side::Expected));
        mismatch.resolve(
            Side::Expected,
            ["x\t1".to_string(), canonical("k", one.as_ref())],
        );
        assert!(!mismatch.unresolved(Side::Expected));
        assert_eq!(
            mismatch.describe("the model", "streamlib"),
            "streamlib differs from the model: 1 missing (in the model only) (e.g. k → {\"a\":1})"
        );
        // Order does not matter.
        let swapped = output(
            Mode::All,
            &[("k", one.clone()), ("j", None), ("k", one.clone())],
        );
        let reordered = output(Mode::All, &[("j", None), ("k", one.clone()), ("k", one)]);
        assert_eq!(compare(&swapped, &reordered), None);
    }

    #[test]
    fn final_keeps_the_last_value_and_tombstones_delete() {
        let expected = output(Mode::Final, &[("a", Some(json!(2))), ("b", Some(json!(1)))]);
        let actual = output(
            Mode::Final,
            &[
                ("b", Some(json!(0))),
                ("a", Some(json!(1))),
                ("a", Some(json!(2))),
                ("c", Some(json!(5))),
                ("b", Some(json!(1))),
                ("c", None),
            ],
        );
        assert_eq!(compare(&expected, &actual), None);
        let changed = output(Mode::Final, &[("a", Some(json!(3))), ("d", Some(json!(4)))]);
        let mismatch = compare(&expected, &changed).unwrap();
        assert_eq!(
            (mismatch.missing, mismatch.extra, mismatch.changed),
            (1, 1, 1)
        );
        assert_eq!(
            mismatch.describe("kafka-streams", "streamlib"),
            "streamlib differs from kafka-streams: 1 missing (in kafka-streams only) (e.g. b → 1); \
             1 unexpected (in streamlib only) (e.g. d → 4); \
             1 keys with another last value (e.g. key a: expected 2, got 3)"
        );
    }

    #[test]
    fn distinct_ignores_repeats_but_not_values() {
        let pair = Some(json!({"id": 1, "name": "x"}));
        let expected = output(Mode::Distinct, &[("1@0", pair.clone())]);
        let repeated = output(Mode::Distinct, &[("1@0", pair.clone()), ("1@0", pair)]);
        assert_eq!(compare(&expected, &repeated), None);
        let other = output(
            Mode::Distinct,
            &[("1@0", Some(json!({"id": 1, "name": "y"})))],
        );
        let mismatch = compare(&expected, &other).unwrap();
        assert_eq!((mismatch.missing, mismatch.extra), (1, 1));
    }

    #[test]
    fn canonical_text_sorts_fields() {
        let value: Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":3}}"#).unwrap();
        assert_eq!(
            canonical("k", Some(&value)),
            "k\t{\"a\":{\"c\":3,\"d\":2},\"b\":1}"
        );
        assert_eq!(canonical("k", None), "k\tnull");
    }
}
