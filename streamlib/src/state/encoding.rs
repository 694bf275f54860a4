//! Byte encodings shared by the composite-key stores (window, session, TTL).
//!
//! Invariant: for every pair of timestamps, `sortable(a) < sortable(b)` bytewise iff `a < b`, so
//! RocksDB's bytewise key order is time order, negative timestamps included.

use super::StateError;

/// Leading tag byte of the primary (key-major) key space.
pub(crate) const PRIMARY: u8 = 0;
/// Leading tag byte of the time index key space.
pub(crate) const TIME_INDEX: u8 = 1;

/// `t` as 8 bytes whose bytewise order is the numeric order of `i64` (sign bit flipped, big endian).
pub(crate) fn sortable(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`sortable`]: reads 8 bytes at `at` of `bytes`.
pub(crate) fn read_sortable(store: &str, bytes: &[u8], at: usize) -> Result<i64, StateError> {
    let raw: [u8; 8] = bytes
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            corrupt(
                store,
                format!("key of {} bytes has no timestamp at {at}", bytes.len()),
            )
        })?;
    Ok((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// A value with the timestamp of the update that wrote it: `[timestamp: 8 bytes, big-endian
/// i64][value]` (the layout of [`StoreKind::TimestampedKeyValue`](crate::topology::StoreKind)).
pub(crate) fn timestamped(timestamp: i64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(value);
    out
}

/// Inverse of [`timestamped`]: the timestamp and the value's bytes.
pub(crate) fn split_timestamped<'a>(
    store: &str,
    bytes: &'a [u8],
) -> Result<(i64, &'a [u8]), StateError> {
    match bytes.split_first_chunk::<8>() {
        Some((timestamp, value)) => Ok((i64::from_be_bytes(*timestamp), value)),
        None => Err(corrupt(
            store,
            format!(
                "a timestamped value of {} bytes has no timestamp",
                bytes.len()
            ),
        )),
    }
}

/// Appends `[u32 BE len][key]`, so that one key's entries are never interleaved with a longer
/// key sharing its bytes as a prefix.
pub(crate) fn push_len_key(out: &mut Vec<u8>, store: &str, key: &[u8]) -> Result<(), StateError> {
    let len = u32::try_from(key.len()).map_err(|_| StateError::InvalidArgument {
        store: store.to_owned(),
        reason: format!("key of {} bytes is longer than u32::MAX", key.len()),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(key);
    Ok(())
}

/// The smallest key greater than every key starting with `prefix`, or `None` when no such key
/// exists (empty prefix, or all bytes 0xFF): the exclusive upper bound of a prefix scan.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// The smallest key strictly greater than `key` (used to make an upper bound inclusive).
pub(crate) fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

pub(crate) fn corrupt(store: &str, reason: String) -> StateError {
    StateError::Corrupt {
        store: store.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_orders_like_i64() {
        let values = [i64::MIN, -1_000, -1, 0, 1, 1_000, i64::MAX];
        for pair in values.windows(2) {
            assert!(sortable(pair[0]) < sortable(pair[1]), "{pair:?}");
        }
        for v in values {
            assert_eq!(read_sortable("s", &sortable(v), 0).unwrap(), v);
        }
    }

    #[test]
    fn prefix_end_bounds_exactly_the_prefix() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
    }
}
