//! Windowed aggregations against hand-computed expectations, and pane-based hopping windows
//! against a naive per-window computation on random inputs.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use streamlib::prelude::*;
use streamlib::testing::{DriverConfig, TopologyTestDriver};
use streamlib::window::{SessionWindows, SlidingWindows};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Out = Vec<(String, i64, i64, i64)>; // key, start, end, value

fn windowed_counts(
    windows: TimeWindows,
    emit: EmitStrategy,
    inputs: &[(&str, i64)],
    wall_lag: Option<Duration>,
) -> (Out, TopologyTestDriver) {
    let b = StreamsBuilder::new();
    if let Some(lag) = wall_lag {
        b.advance_stream_time_with_wall_clock(lag);
    }
    b.stream("in", StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .windowed_by(windows)
        .emit(emit)
        .late_records_to("late")
        .count(Materialized::as_store("counts").in_memory())
        .to_stream()
        .to("out", WindowedSerde::new(StringSerde), Nullable(I64Serde));
    let mut d = TopologyTestDriver::new(b.build(), DriverConfig::default()).unwrap();
    for (k, ts) in inputs {
        d.pipe(
            "in",
            &StringSerde,
            &StringSerde,
            k.to_string(),
            "v".into(),
            *ts,
        )
        .unwrap();
    }
    let out = read(&mut d);
    (out, d)
}

fn read(d: &mut TopologyTestDriver) -> Out {
    d.read_output("out", &WindowedSerde::new(StringSerde), &I64Serde)
        .unwrap()
        .into_iter()
        .map(|r| (r.key.key, r.key.window.start, r.key.window.end, r.value))
        .collect()
}

fn row(k: &str, s: i64, e: i64, v: i64) -> (String, i64, i64, i64) {
    (k.to_string(), s, e, v)
}

#[test]
fn tumbling_updates_respect_boundaries() {
    let (out, _) = windowed_counts(
        TimeWindows::of(ms(10)).grace(ms(100)),
        EmitStrategy::OnUpdate,
        &[("a", 0), ("a", 9), ("a", 10), ("b", 19), ("a", -1)],
        None,
    );
    assert_eq!(
        out,
        vec![
            row("a", 0, 10, 1),
            row("a", 0, 10, 2),
            row("a", 10, 20, 1),
            row("b", 10, 20, 1),
            row("a", -10, 0, 1),
        ]
    );
}

#[test]
fn hopping_updates_every_window_containing_the_record() {
    let (out, _) = windowed_counts(
        TimeWindows::of(ms(10)).advance_by(ms(5)).grace(ms(100)),
        EmitStrategy::OnUpdate,
        &[("a", 7), ("a", 12)],
        None,
    );
    assert_eq!(
        out,
        vec![
            row("a", 0, 10, 1),
            row("a", 5, 15, 1),
            row("a", 5, 15, 2),
            row("a", 10, 20, 1)
        ]
    );
}

#[test]
fn emit_final_waits_for_grace_and_accepts_out_of_order_records() {
    let (out, mut d) = windowed_counts(
        TimeWindows::of(ms(10)).grace(ms(5)),
        EmitStrategy::OnWindowClose,
        &[
            ("a", 1),
            ("b", 4),
            ("a", 12), // stream time 12 < 10 + 5: [0,10) still open
            ("a", 8),  // out of order, within grace
            ("c", 15), // stream time 15: [0,10) closes
        ],
        None,
    );
    assert_eq!(out, vec![row("a", 0, 10, 2), row("b", 0, 10, 1)]);
    // A record for the closed window is late: dropped, counted, routed to the late topic.
    d.pipe("in", &StringSerde, &StringSerde, "a".into(), "v".into(), 3)
        .unwrap();
    assert_eq!(d.metrics().late_dropped, 1);
    assert_eq!(d.read_raw("late").len(), 1);
    d.pipe("in", &StringSerde, &StringSerde, "z".into(), "v".into(), 30)
        .unwrap();
    assert_eq!(read(&mut d), vec![row("a", 10, 20, 1), row("c", 10, 20, 1)]);
}

#[test]
fn final_results_of_hopping_windows_are_emitted_once_each() {
    let (out, _) = windowed_counts(
        TimeWindows::of(ms(10)).advance_by(ms(5)),
        EmitStrategy::OnWindowClose,
        &[("a", 1), ("a", 6), ("a", 11), ("a", 100)],
        None,
    );
    assert_eq!(
        out,
        vec![
            row("a", -5, 5, 1),
            row("a", 0, 10, 2),
            row("a", 5, 15, 2),
            row("a", 10, 20, 1),
        ]
    );
}

#[test]
fn idle_partition_closes_windows_on_wall_clock_when_opted_in() {
    let (out, mut d) = windowed_counts(
        TimeWindows::of(ms(1_000)),
        EmitStrategy::OnWindowClose,
        &[("a", 100), ("a", 200)],
        Some(Duration::from_millis(500)),
    );
    assert!(out.is_empty());
    // Wall clock 1.4 s − lag 0.5 s = 0.9 s: not closed yet.
    d.advance_wall_clock(ms(1_400)).unwrap();
    assert!(read(&mut d).is_empty());
    d.advance_wall_clock(ms(100)).unwrap();
    assert_eq!(read(&mut d), vec![row("a", 0, 1_000, 2)]);
}

#[test]
fn idle_partition_without_opt_in_never_closes() {
    let (_, mut d) = windowed_counts(
        TimeWindows::of(ms(1_000)),
        EmitStrategy::OnWindowClose,
        &[("a", 100)],
        None,
    );
    d.advance_wall_clock(Duration::from_secs(3_600)).unwrap();
    assert!(read(&mut d).is_empty());
}

/// Naive hopping aggregation: for each record, every window containing it.
fn naive_final_sums(
    size: i64,
    advance: i64,
    records: &[(u8, i64, i64)],
) -> BTreeMap<(i64, String), i64> {
    let mut sums = BTreeMap::new();
    for &(key, ts, value) in records {
        let mut start = ts.div_euclid(advance) * advance;
        while start > ts - size {
            *sums.entry((start, format!("k{key}"))).or_insert(0) += value;
            start -= advance;
        }
    }
    sums
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn pane_based_hopping_equals_naive_windows(
        size_panes in 1i64..6,
        advance_panes in 1i64..4,
        pane in 1i64..7,
        records in prop::collection::vec((0u8..4, 0i64..400, -5i64..20), 1..60),
    ) {
        let advance = advance_panes.min(size_panes) * pane;
        let size = size_panes * pane;
        let b = StreamsBuilder::new();
        b.stream("in", StringSerde, I64Serde)
            .group_by_key(StringSerde, I64Serde)
            .windowed_by(TimeWindows::of(ms(size as u64)).advance_by(ms(advance as u64)).grace(ms(10_000)))
            .emit(EmitStrategy::OnWindowClose)
            .aggregate(|| 0, |_, v, sum| sum + v, |a, b| a + b, I64Serde, Materialized::as_store("sums").in_memory())
            .to_stream()
            .to("out", WindowedSerde::new(StringSerde), Nullable(I64Serde));
        let mut d = TopologyTestDriver::new(b.build(), DriverConfig { partitions: 2, ..DriverConfig::default() }).unwrap();
        for &(key, ts, value) in &records {
            d.pipe("in", &StringSerde, &I64Serde, format!("k{key}"), value, ts).unwrap();
        }
        // Close everything: a far-future record on each partition's keys.
        for key in 0..4u8 {
            d.pipe("in", &StringSerde, &I64Serde, format!("k{key}"), 0, 1_000_000).unwrap();
        }
        let mut got = BTreeMap::new();
        for r in d.read_output("out", &WindowedSerde::new(StringSerde), &I64Serde).unwrap() {
            prop_assert!(got.insert((r.key.window.start, r.key.key), r.value).is_none(), "window emitted twice");
        }
        prop_assert_eq!(got, naive_final_sums(size, advance, &records));
    }
}

fn counts_with<W: streamlib::topology::WindowDefinition>(
    windows: W,
    emit: EmitStrategy,
    inputs: &[(&str, i64)],
) -> TopologyTestDriver {
    let b = StreamsBuilder::new();
    b.stream("in", StringSerde, StringSerde)
        .group_by_key(StringSerde, StringSerde)
        .windowed_by(windows)
        .emit(emit)
        .count(Materialized::as_store("counts").in_memory())
        .to_stream()
        .to("out", WindowedSerde::new(StringSerde), Nullable(I64Serde));
    let mut d = TopologyTestDriver::new(b.build(), DriverConfig::default()).unwrap();
    for (k, ts) in inputs {
        d.pipe(
            "in",
            &StringSerde,
            &StringSerde,
            k.to_string(),
            "v".into(),
            *ts,
        )
        .unwrap();
    }
    d
}

/// The updates written so far, with their timestamps; `None` for a delete.
fn read_updates(d: &mut TopologyTestDriver) -> Vec<(String, i64, i64, Option<i64>, i64)> {
    d.read_output("out", &WindowedSerde::new(StringSerde), &Nullable(I64Serde))
        .unwrap()
        .into_iter()
        .map(|r| {
            let w = r.key.window;
            (r.key.key, w.start, w.end, r.value, r.timestamp)
        })
        .collect()
}

#[test]
fn sessions_grow_and_merge() {
    let sessions = SessionWindows::with_inactivity_gap(ms(10)).grace(ms(1_000));
    let mut d = counts_with(
        sessions,
        EmitStrategy::OnUpdate,
        &[
            ("a", 0),
            ("a", 5),
            ("a", 30),
            ("a", 20),
            ("b", 21),
            ("a", 12),
        ],
    );
    // Each update carries its session's end; a merge first deletes the sessions it absorbs.
    let a = |s, e, v, ts| ("a".to_string(), s, e, v, ts);
    assert_eq!(
        read_updates(&mut d),
        vec![
            a(0, 0, Some(1), 0),
            a(0, 0, None, 0),
            a(0, 5, Some(2), 5),
            a(30, 30, Some(1), 30),
            a(30, 30, None, 30),
            a(20, 30, Some(2), 30),
            ("b".to_string(), 21, 21, Some(1), 21),
            a(0, 5, None, 5),
            a(20, 30, None, 30),
            a(0, 30, Some(5), 30),
        ]
    );
}

#[test]
fn sessions_emit_final_once_closed_and_drop_late_records() {
    let sessions = SessionWindows::with_inactivity_gap(ms(10)).grace(ms(5));
    let mut d = counts_with(
        sessions,
        EmitStrategy::OnWindowClose,
        &[("a", 0), ("a", 8), ("b", 20)],
    );
    // [0, 8] closes once stream time > 8 + 10 + 5.
    assert!(read(&mut d).is_empty());
    d.pipe("in", &StringSerde, &StringSerde, "b".into(), "v".into(), 23)
        .unwrap();
    assert!(read(&mut d).is_empty());
    d.pipe("in", &StringSerde, &StringSerde, "b".into(), "v".into(), 24)
        .unwrap();
    assert_eq!(read(&mut d), vec![row("a", 0, 8, 2)]);
    // t = 5 is before 24 − 15: late.
    d.pipe("in", &StringSerde, &StringSerde, "a".into(), "v".into(), 5)
        .unwrap();
    assert_eq!(d.metrics().late_dropped, 1);
    d.pipe(
        "in",
        &StringSerde,
        &StringSerde,
        "c".into(),
        "v".into(),
        100,
    )
    .unwrap();
    assert_eq!(read(&mut d), vec![row("b", 20, 24, 3)]);
}

#[test]
fn sliding_windows_follow_kip_450() {
    let sliding = SlidingWindows::of_time_difference_and_grace(ms(10), ms(100));
    let mut d = counts_with(
        sliding,
        EmitStrategy::OnUpdate,
        &[("a", 0), ("a", 5), ("a", 20)],
    );
    // Windows are reported half-open: [start, inclusive end + 1), with the largest timestamp
    // of their records. Records before the time difference share the window [0, 10], as in
    // Kafka Streams (no window starts before 0).
    let a = |s, v, ts| ("a".to_string(), s, s + 11, Some(v), ts);
    assert_eq!(
        read_updates(&mut d),
        vec![
            a(0, 1, 0),   // [0, 10]: {0}
            a(1, 1, 5),   // right window of 0: {5}
            a(0, 2, 5),   // [0, 10]: {0, 5}
            a(10, 1, 20), // left window of 20: {20}
        ]
    );
}

/// Every sliding window of a key's records, with the sum of its values (naive definition):
/// each record's left window, the records before the time difference sharing `[0, d]`, and
/// each record's right window that holds records.
fn naive_sliding_sums(d: i64, records: &[(u8, i64, i64)]) -> BTreeMap<(String, i64, i64), i64> {
    let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
    for &(k, ts, v) in records {
        by_key.entry(k).or_default().push((ts, v));
    }
    let mut out = BTreeMap::new();
    for (k, recs) in by_key {
        let times: std::collections::BTreeSet<i64> = recs.iter().map(|r| r.0).collect();
        let sum = |s: i64, e: i64| {
            recs.iter()
                .filter(|r| (s..=e).contains(&r.0))
                .map(|r| r.1)
                .sum::<i64>()
        };
        let holds = |s: i64, e: i64| recs.iter().any(|r| (s..=e).contains(&r.0));
        for &t in &times {
            let left = (t - d).max(0);
            out.insert((format!("k{k}"), left, left + d + 1), sum(left, left + d));
            if holds(t + 1, t + 1 + d) {
                out.insert((format!("k{k}"), t + 1, t + 2 + d), sum(t + 1, t + 1 + d));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn sliding_final_results_equal_naive_windows(
        d in 1i64..30,
        records in prop::collection::vec((0u8..3, 0i64..200, -5i64..20), 1..40),
    ) {
        let b = StreamsBuilder::new();
        b.stream("in", StringSerde, I64Serde)
            .group_by_key(StringSerde, I64Serde)
            .windowed_by(SlidingWindows::of_time_difference_and_grace(ms(d as u64), ms(10_000)))
            .emit(EmitStrategy::OnWindowClose)
            .aggregate(|| 0, |_, v, sum| sum + v, |a, b| a + b, I64Serde, Materialized::as_store("sums").in_memory())
            .to_stream()
            .to("out", WindowedSerde::new(StringSerde), Nullable(I64Serde));
        let mut drv = TopologyTestDriver::new(b.build(), DriverConfig::default()).unwrap();
        for &(key, ts, value) in &records {
            drv.pipe("in", &StringSerde, &I64Serde, format!("k{key}"), value, ts).unwrap();
        }
        drv.pipe("in", &StringSerde, &I64Serde, "flush".into(), 0, 1_000_000).unwrap();
        let mut got = BTreeMap::new();
        for r in drv.read_output("out", &WindowedSerde::new(StringSerde), &I64Serde).unwrap() {
            let slot = (r.key.key, r.key.window.start, r.key.window.end);
            prop_assert!(got.insert(slot, r.value).is_none(), "window emitted twice");
        }
        prop_assert_eq!(got, naive_sliding_sums(d, &records));
    }
}
