//! [`Violation`]: why a record is not a valid price event.

/// The stage that failed, as the dead-letter envelope's `error_kind` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// No value, not UTF-8, or not JSON.
    Deserialization,
    /// JSON that breaks the contract: its JSON Schema or a rule beyond it.
    SchemaViolation,
}

impl ViolationKind {
    /// `deserialization` or `schema_violation` (`contracts/dead_letter.schema.json`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deserialization => "deserialization",
            Self::SchemaViolation => "schema_violation",
        }
    }
}

/// The first reason a record is not a valid price event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} `{rule}` at `{pointer}`: {message}", .kind.as_str())]
pub struct Violation {
    /// Deserialization or contract.
    pub kind: ViolationKind,
    /// The JSON Schema keyword that failed (`required`, `pattern`, `const`, …) or the name of a
    /// rule beyond the schema ([`crate::rule`]).
    pub rule: String,
    /// JSON pointer (RFC 6901) into the value; `""` = the whole value.
    pub pointer: String,
    /// JSON pointer into the schema to the failing keyword; `None` for rules beyond the schema.
    pub schema_path: Option<String>,
    /// Human-readable, at most [`Violation::MAX_MESSAGE_CHARS`] characters.
    pub message: String,
    /// How many violations the same check found (schema errors, or broken rules beyond the
    /// schema); this one is the first.
    pub errors_total: usize,
}

impl Violation {
    /// Messages are cut to this length: some schema messages quote the whole value.
    pub const MAX_MESSAGE_CHARS: usize = 300;

    pub(crate) fn new(
        kind: ViolationKind,
        rule: &str,
        pointer: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            rule: rule.to_string(),
            pointer: pointer.to_string(),
            schema_path: None,
            message: truncate(message.into()),
            errors_total: 1,
        }
    }
}

pub(crate) fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(Violation::MAX_MESSAGE_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}
