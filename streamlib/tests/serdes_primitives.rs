//! String, bytes, i64 and f64 serdes: round trips and Kafka-compatible byte layouts.

use proptest::prelude::*;
use streamlib::serdes::{BytesSerde, F64Serde, I64Serde, Serde, SerdeError, StringSerde};

const TOPIC: &str = "t";

#[test]
fn i64_is_eight_bytes_big_endian_like_kafkas_long_serializer() {
    let cases: [(i64, [u8; 8]); 5] = [
        (1, [0, 0, 0, 0, 0, 0, 0, 1]),
        (0, [0; 8]),
        (-1, [0xff; 8]),
        (256, [0, 0, 0, 0, 0, 0, 1, 0]),
        (i64::MIN, [0x80, 0, 0, 0, 0, 0, 0, 0]),
    ];
    for (value, bytes) in cases {
        assert_eq!(I64Serde.serialize(TOPIC, &value).unwrap(), bytes, "{value}");
        assert_eq!(I64Serde.deserialize(TOPIC, &bytes).unwrap(), value);
    }
}

#[test]
fn f64_is_ieee754_big_endian_like_kafkas_double_serializer() {
    // Bytes as java.nio.ByteBuffer.putDouble writes them.
    let cases: [(f64, [u8; 8]); 4] = [
        (1.0, [0x3f, 0xf0, 0, 0, 0, 0, 0, 0]),
        (-2.5, [0xc0, 0x04, 0, 0, 0, 0, 0, 0]),
        (0.1, [0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]),
        (f64::INFINITY, [0x7f, 0xf0, 0, 0, 0, 0, 0, 0]),
    ];
    for (value, bytes) in cases {
        assert_eq!(F64Serde.serialize(TOPIC, &value).unwrap(), bytes, "{value}");
        assert_eq!(F64Serde.deserialize(TOPIC, &bytes).unwrap(), value);
    }
}

#[test]
fn every_nan_is_written_as_javas_canonical_nan() {
    let payload_nan = f64::from_bits(0x7ff0_0000_0000_0001);
    let negative_nan = f64::from_bits(0xfff8_0000_0000_0000);
    for nan in [f64::NAN, payload_nan, negative_nan] {
        assert_eq!(
            F64Serde.serialize(TOPIC, &nan).unwrap(),
            [0x7f, 0xf8, 0, 0, 0, 0, 0, 0]
        );
    }
    assert!(F64Serde
        .deserialize(TOPIC, &[0x7f, 0xf8, 0, 0, 0, 0, 0, 0])
        .unwrap()
        .is_nan());
}

#[test]
fn fixed_width_numbers_reject_other_lengths() {
    for bytes in [&[][..], &[1; 7][..], &[1; 9][..]] {
        match I64Serde.deserialize(TOPIC, bytes) {
            Err(SerdeError::Length {
                expected: 8,
                actual,
            }) => assert_eq!(actual, bytes.len()),
            other => panic!("i64 from {} bytes: {other:?}", bytes.len()),
        }
        match F64Serde.deserialize(TOPIC, bytes) {
            Err(SerdeError::Length {
                expected: 8,
                actual,
            }) => assert_eq!(actual, bytes.len()),
            other => panic!("f64 from {} bytes: {other:?}", bytes.len()),
        }
    }
    let message = I64Serde
        .deserialize(TOPIC, &[1, 2, 3])
        .unwrap_err()
        .to_string();
    assert_eq!(message, "expected 8 bytes, got 3");
}

#[test]
fn string_is_utf8_and_rejects_invalid_utf8() {
    assert_eq!(
        StringSerde
            .serialize(TOPIC, &"naïve €".to_string())
            .unwrap(),
        "naïve €".as_bytes()
    );
    assert_eq!(StringSerde.deserialize(TOPIC, b"").unwrap(), "");
    let error = StringSerde
        .deserialize(TOPIC, &[b'o', b'k', 0xc3])
        .unwrap_err();
    assert!(matches!(error, SerdeError::Utf8 { .. }), "{error:?}");
    assert!(error.to_string().contains("UTF-8"), "{error}");
    assert!(!error.is_retriable());
}

#[test]
fn bytes_pass_through_unchanged() {
    let bytes = vec![0, 1, 0xff, 0];
    assert_eq!(BytesSerde.serialize(TOPIC, &bytes).unwrap(), bytes);
    assert_eq!(BytesSerde.deserialize(TOPIC, &bytes).unwrap(), bytes);
    assert_eq!(
        BytesSerde.deserialize(TOPIC, &[]).unwrap(),
        Vec::<u8>::new()
    );
}

#[test]
fn a_shared_serde_is_a_serde() {
    fn round_trip(serde: impl Serde<i64>) -> i64 {
        serde
            .deserialize(TOPIC, &serde.serialize(TOPIC, &42).unwrap())
            .unwrap()
    }
    let shared = std::sync::Arc::new(I64Serde);
    assert_eq!(round_trip(std::sync::Arc::clone(&shared)), 42);
    let dynamic: std::sync::Arc<dyn Serde<i64>> = shared;
    assert_eq!(
        dynamic.serialize(TOPIC, &1).unwrap(),
        [0, 0, 0, 0, 0, 0, 0, 1]
    );
}

proptest! {
    #[test]
    fn string_round_trips(value in any::<String>()) {
        let bytes = StringSerde.serialize(TOPIC, &value).unwrap();
        prop_assert_eq!(&bytes, value.as_bytes());
        prop_assert_eq!(StringSerde.deserialize(TOPIC, &bytes).unwrap(), value);
    }

    #[test]
    fn bytes_round_trip(value in proptest::collection::vec(any::<u8>(), 0..256)) {
        let bytes = BytesSerde.serialize(TOPIC, &value).unwrap();
        prop_assert_eq!(BytesSerde.deserialize(TOPIC, &bytes).unwrap(), value);
    }

    #[test]
    fn i64_round_trips_and_keeps_order_of_non_negatives(a in any::<i64>(), b in 0..i64::MAX, c in 0..i64::MAX) {
        let bytes = I64Serde.serialize(TOPIC, &a).unwrap();
        prop_assert_eq!(bytes.len(), 8);
        prop_assert_eq!(I64Serde.deserialize(TOPIC, &bytes).unwrap(), a);
        // Big-endian: byte order of non-negative numbers is numeric order (range scans in stores).
        let (bb, cb) = (I64Serde.serialize(TOPIC, &b).unwrap(), I64Serde.serialize(TOPIC, &c).unwrap());
        prop_assert_eq!(b.cmp(&c), bb.cmp(&cb));
    }

    #[test]
    fn f64_round_trips_bit_for_bit(bits in any::<u64>()) {
        let value = f64::from_bits(bits);
        let back = F64Serde.deserialize(TOPIC, &F64Serde.serialize(TOPIC, &value).unwrap()).unwrap();
        if value.is_nan() {
            prop_assert!(back.is_nan());
        } else {
            prop_assert_eq!(back.to_bits(), value.to_bits());
        }
    }
}

#[test]
fn serde_errors_stay_small_for_the_per_record_path() {
    // Every record's Result carries a SerdeError; it is embedded in ProcessError too.
    assert!(
        std::mem::size_of::<SerdeError>() <= 40,
        "{}",
        std::mem::size_of::<SerdeError>()
    );
}
