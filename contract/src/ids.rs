//! The contract's deterministic ids: `event_id` = SHA-256 of the unique key.

use sha2::{Digest, Sha256};

/// `coin_id|vs_currency|ts_event`: the text whose SHA-256 is the `event_id`.
pub fn unique_key(coin_id: &str, vs_currency: &str, ts_event: &str) -> String {
    format!("{coin_id}|{vs_currency}|{ts_event}")
}

/// The contract's `event_id`: lowercase hex SHA-256 of the [`unique_key`].
pub fn event_id(coin_id: &str, vs_currency: &str, ts_event: &str) -> String {
    sha256_hex(&unique_key(coin_id, vs_currency, ts_event))
}

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_matches_the_contract_example() {
        assert_eq!(
            event_id("bitcoin", "usd", "2024-04-07T16:49:31.736Z"),
            "963fdc654e1aa1217aa1a282c782ff8b3c605d08d6761ec2dda1394dbe7bb904"
        );
    }
}
