//! Interactive queries through the `TopologyTestDriver`: key, range, window and session
//! queries answer what the stores hold, partition by partition, with the position of the
//! inputs read, and a bound beyond it is refused.

use std::time::Duration;

use streamlib::partition::partition_for_key;
use streamlib::prelude::*;
use streamlib::query::{
    KeyQuery, Position, PositionBound, QueryFailure, RangeQuery, SessionQuery, StateQueryRequest,
    WindowKeyQuery,
};
use streamlib::testing::{DriverConfig, TopologyTestDriver};
use streamlib::window::SessionWindows;

const PARTITIONS: i32 = 3;

fn driver() -> TopologyTestDriver {
    let b = StreamsBuilder::new();
    let grouped = b
        .stream("clicks", StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde);
    grouped.count("counts");
    // A minute's grace keeps the first minute open (and in the store) at 70 s.
    let minutes = TimeWindows::of(Duration::from_secs(60)).grace(Duration::from_secs(60));
    grouped.windowed_by(minutes).count("per-minute");
    let hopping = TimeWindows::of(Duration::from_secs(60)).advance_by(Duration::from_secs(30));
    grouped.windowed_by(hopping).count("hopping");
    grouped
        .windowed_by(
            SessionWindows::with_inactivity_gap(Duration::from_secs(10))
                .grace(Duration::from_secs(120)),
        )
        .count("sessions");
    let config = DriverConfig {
        partitions: PARTITIONS,
        ..DriverConfig::default()
    };
    TopologyTestDriver::new(b.build(), config).unwrap()
}

fn pipe(driver: &mut TopologyTestDriver, user: &str, ts: i64) {
    driver
        .pipe(
            "clicks",
            &StringSerde,
            &StringSerde,
            user.into(),
            "/".into(),
            ts,
        )
        .unwrap();
}

fn count(driver: &TopologyTestDriver, user: &str) -> Result<Option<i64>, QueryFailure> {
    let query = KeyQuery::with_key(user.to_string(), StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("counts").with_query(query);
    let result = driver.query(&request).unwrap();
    result.only_partition_result().unwrap().map(|a| a.value)
}

#[test]
fn key_range_window_and_session_queries_answer_the_stores() {
    let mut driver = driver();
    for (user, ts) in [
        ("alice", 1_000),
        ("bob", 2_000),
        ("alice", 5_000),
        ("alice", 70_000),
    ] {
        pipe(&mut driver, user, ts);
    }
    assert_eq!(count(&driver, "alice"), Ok(Some(3)));
    assert_eq!(count(&driver, "bob"), Ok(Some(1)));
    assert_eq!(count(&driver, "carol"), Ok(None));

    let range = RangeQuery::with_no_bounds(StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("counts").with_query(range);
    let result = driver.query(&request).unwrap();
    assert_eq!(result.partitions.len(), PARTITIONS as usize);
    let mut all: Vec<(String, i64)> = result
        .all_answers()
        .unwrap()
        .into_iter()
        .flat_map(|a| a.value)
        .collect();
    all.sort();
    assert_eq!(all, vec![("alice".into(), 3), ("bob".into(), 1)]);

    let bounded =
        RangeQuery::with_range(Some("b".into()), Some("bob".into()), StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("counts").with_query(bounded);
    let found: Vec<(String, i64)> = driver
        .query(&request)
        .unwrap()
        .all_answers()
        .unwrap()
        .into_iter()
        .flat_map(|a| a.value)
        .collect();
    assert_eq!(found, vec![("bob".into(), 1)], "both bounds inclusive");

    let windows = WindowKeyQuery::with_key_and_window_starts(
        "alice".to_string(),
        0,
        60_000,
        StringSerde,
        I64Serde,
    );
    let request = StateQueryRequest::in_store("per-minute").with_query(windows);
    let answer = driver
        .query(&request)
        .unwrap()
        .only_partition_result()
        .unwrap();
    assert_eq!(answer.unwrap().value, vec![(0, 2), (60_000, 1)]);

    let sessions = SessionQuery::with_key("alice".to_string(), StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("sessions").with_query(sessions);
    let answer = driver
        .query(&request)
        .unwrap()
        .only_partition_result()
        .unwrap();
    assert_eq!(
        answer.unwrap().value,
        vec![(1_000, 5_000, 2), (70_000, 70_000, 1)]
    );
}

#[test]
fn answers_carry_the_position_and_a_bound_beyond_it_is_refused() {
    let mut driver = driver();
    pipe(&mut driver, "alice", 1_000);
    pipe(&mut driver, "alice", 2_000);
    let ask = |driver: &TopologyTestDriver, bound: PositionBound| {
        let query = KeyQuery::with_key("alice".to_string(), StringSerde, I64Serde);
        let request = StateQueryRequest::in_store("counts")
            .with_query(query)
            .with_position_bound(bound);
        driver
            .query(&request)
            .unwrap()
            .only_partition_result()
            .unwrap()
    };
    let answer = ask(&driver, PositionBound::Unbounded).unwrap();
    let partition = partition_for_key(b"alice", PARTITIONS);
    let seen = answer.position.offset("clicks", partition).unwrap();

    let reached = Position::default().with("clicks", partition, seen);
    assert_eq!(
        ask(&driver, PositionBound::at_least(reached))
            .unwrap()
            .value,
        Some(2)
    );
    let ahead = Position::default().with("clicks", partition, seen + 1);
    assert!(matches!(
        ask(&driver, PositionBound::at_least(ahead.clone())),
        Err(QueryFailure::NotUpToBound { .. })
    ));
    pipe(&mut driver, "alice", 3_000);
    assert_eq!(
        ask(&driver, PositionBound::at_least(ahead)).unwrap().value,
        Some(3)
    );

    let panes = WindowKeyQuery::with_key_and_window_starts(
        "alice".to_string(),
        0,
        0,
        StringSerde,
        I64Serde,
    );
    let request = StateQueryRequest::in_store("hopping").with_query(panes);
    let failure = driver
        .query(&request)
        .unwrap()
        .only_partition_result()
        .unwrap();
    assert!(
        matches!(failure, Err(QueryFailure::UnknownQueryType { .. })),
        "a hopping aggregate's panes are no window's value: {failure:?}"
    );

    let wrong_kind = KeyQuery::with_key("alice".to_string(), StringSerde, I64Serde);
    let request = StateQueryRequest::in_store("sessions").with_query(wrong_kind);
    let failure = driver
        .query(&request)
        .unwrap()
        .only_partition_result()
        .unwrap();
    assert_eq!(
        failure.unwrap_err(),
        QueryFailure::UnknownQueryType {
            kind: "session".into()
        }
    );
}
