//! The reference model: what each query of `benches/NEXMARK.md` must output for given events,
//! computed with Nexmark's own semantics, which do not depend on the order in which a system
//! takes its inputs. It assumes no record is late — true of the generated events, whose event
//! time never decreases within a partition:
//! - q0, q1, q2: every (selected) bid, as its record;
//! - q3: the final join of the final auction and person tables;
//! - q4: per category, the average of each auction's highest bid within its lifetime
//!   (`auction.date_time < bid.date_time <= auction.expires`), whichever came first;
//! - q5, q7: per window, the winner among every count or bid of the window;
//! - q8: every (person, auction) pair of one seller in one tumbling window.
//!
//! It is independent of the streamlib queries: values are built field by field with `json!`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nexmark::event::{Auction, Bid, Event, Person};
use serde_json::{json, Value};

use super::compare::{canonical, Output};
use super::events::{Counts, Kind};
use super::{window_start, Query, WINDOW_MS};

/// q3's category and sellers' states.
const Q3_CATEGORY: usize = 10;
const Q3_STATES: [&str; 3] = ["or", "id", "ca"];
/// q5's hopping windows: size [`WINDOW_MS`], advance 2 s.
const Q5_ADVANCE_MS: u64 = 2_000;

/// What a query must output.
#[derive(Clone, Debug)]
pub struct Expected {
    /// The output, as its mode compares it.
    pub output: Output,
    /// How many records a system emitting every update outputs, where that does not depend on
    /// the order in which it takes its inputs (q0, q1, q2: one per selected bid; q5: one per
    /// bid and window; q7: one per bid; q8: one per pair); `None` for q3 and q4, whose table
    /// joins emit updates and deletes as the two inputs interleave.
    pub records: Option<u64>,
}

/// The model of a set of queries, fed one event at a time in generation order.
#[derive(Debug, Default)]
pub struct Model {
    queries: BTreeSet<Query>,
    counts: Counts,
    /// q0, q1, q2: their outputs so far.
    stateless: BTreeMap<Query, Output>,
    /// q3, q4, q8: the auctions by id.
    auctions: HashMap<usize, Auction>,
    /// q3, q8: the people by id.
    persons: HashMap<usize, Person>,
    /// q4: the bids' (auction, date_time, price), to meet their auction at the end.
    q4_bids: Vec<(usize, u64, usize)>,
    /// q5: bids per (window start, auction), and window updates.
    q5_counts: HashMap<(u64, usize), u64>,
    q5_updates: u64,
    /// q7: the highest bid per window start, and bids.
    q7_highest: BTreeMap<u64, Bid>,
    q7_bids: u64,
}

impl Model {
    /// A model of `queries`.
    pub fn new(queries: &[Query]) -> Self {
        let queries: BTreeSet<Query> = queries.iter().copied().collect();
        let stateless = queries
            .iter()
            .filter(|q| matches!(q, Query::Q0 | Query::Q1 | Query::Q2))
            .map(|q| (*q, Output::new(q.mode())))
            .collect();
        Self {
            queries,
            stateless,
            ..Self::default()
        }
    }

    /// Whether any of `queries` is modelled.
    fn any(&self, queries: &[Query]) -> bool {
        queries.iter().any(|q| self.queries.contains(q))
    }

    /// Takes one event.
    pub fn add(&mut self, event: &Event) {
        self.counts.add(Kind::of(event));
        match event {
            Event::Person(person) => {
                if self.any(&[Query::Q3, Query::Q8]) {
                    self.persons.insert(person.id, person.clone());
                }
            }
            Event::Auction(auction) => {
                if self.any(&[Query::Q3, Query::Q4, Query::Q8]) {
                    self.auctions.insert(auction.id, auction.clone());
                }
            }
            Event::Bid(bid) => self.add_bid(bid),
        }
    }

    fn add_bid(&mut self, bid: &Bid) {
        for (query, output) in &mut self.stateless {
            if let Some((key, value)) = stateless_record(*query, bid) {
                output.add(&key, Some(&value));
            }
        }
        if self.queries.contains(&Query::Q4) {
            self.q4_bids.push((bid.auction, bid.date_time, bid.price));
        }
        if self.queries.contains(&Query::Q5) {
            let last = bid.date_time - bid.date_time % Q5_ADVANCE_MS;
            let mut start = last;
            while start + WINDOW_MS > bid.date_time {
                *self.q5_counts.entry((start, bid.auction)).or_default() += 1;
                self.q5_updates += 1;
                match start.checked_sub(Q5_ADVANCE_MS) {
                    Some(earlier) => start = earlier,
                    None => break,
                }
            }
        }
        if self.queries.contains(&Query::Q7) {
            self.q7_bids += 1;
            let rank = |b: &Bid| (std::cmp::Reverse(b.price), b.auction, b.bidder, b.date_time);
            self.q7_highest
                .entry(window_start(bid.date_time))
                .and_modify(|highest| {
                    if rank(bid) < rank(highest) {
                        *highest = bid.clone();
                    }
                })
                .or_insert_with(|| bid.clone());
        }
    }

    /// Events taken, per kind.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// What `query` must output for the events taken so far.
    ///
    /// # Panics
    /// When `query` is not one of the model's.
    pub fn expected(&self, query: Query) -> Expected {
        assert!(self.queries.contains(&query), "{query} is not modelled");
        let mut output = Output::new(query.mode());
        let records = match query {
            Query::Q0 | Query::Q1 | Query::Q2 => {
                output = self.stateless[&query].clone();
                Some(output.records())
            }
            Query::Q3 => {
                self.q3(&mut output);
                None
            }
            Query::Q4 => {
                self.q4(&mut output);
                None
            }
            Query::Q5 => {
                self.q5(&mut output);
                Some(self.q5_updates)
            }
            Query::Q7 => {
                for (start, bid) in &self.q7_highest {
                    let value = json!({
                        "window_start": start, "auction": bid.auction, "bidder": bid.bidder,
                        "price": bid.price, "date_time": bid.date_time,
                    });
                    output.add(&start.to_string(), Some(&value));
                }
                Some(self.q7_bids)
            }
            Query::Q8 => Some(self.q8(&mut output)),
        };
        Expected { output, records }
    }

    fn q3(&self, output: &mut Output) {
        for auction in self.auctions.values() {
            let seller = self.persons.get(&auction.seller);
            if let Some(person) = seller.filter(|p| {
                auction.category == Q3_CATEGORY && Q3_STATES.contains(&p.state.as_str())
            }) {
                let value = json!({
                    "name": person.name, "city": person.city, "state": person.state,
                    "id": auction.id,
                });
                output.add(&auction.id.to_string(), Some(&value));
            }
        }
    }

    fn q4(&self, output: &mut Output) {
        let mut highest: HashMap<usize, usize> = HashMap::new();
        for &(id, date_time, price) in &self.q4_bids {
            let Some(auction) = self.auctions.get(&id) else {
                continue;
            };
            if auction.date_time < date_time && date_time <= auction.expires {
                let max = highest.entry(id).or_default();
                *max = (*max).max(price);
            }
        }
        let mut per_category: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
        for (id, price) in highest {
            let (sum, count) = per_category.entry(self.auctions[&id].category).or_default();
            *sum += price;
            *count += 1;
        }
        for (category, (sum, count)) in per_category {
            let value = json!({"category": category, "avg": sum / count});
            output.add(&category.to_string(), Some(&value));
        }
    }

    fn q5(&self, output: &mut Output) {
        // Per window: the most bids, then the smaller auction.
        let mut hottest: BTreeMap<u64, (u64, usize)> = BTreeMap::new();
        for (&(start, auction), &count) in &self.q5_counts {
            hottest
                .entry(start)
                .and_modify(|best| {
                    if (std::cmp::Reverse(count), auction) < (std::cmp::Reverse(best.0), best.1) {
                        *best = (count, auction);
                    }
                })
                .or_insert((count, auction));
        }
        for (start, (count, auction)) in hottest {
            let value = json!({"window_start": start, "auction": auction, "count": count});
            output.add(&start.to_string(), Some(&value));
        }
    }

    /// Returns the number of pairs.
    fn q8(&self, output: &mut Output) -> u64 {
        let mut pairs = 0;
        for auction in self.auctions.values() {
            let Some(person) = self.persons.get(&auction.seller) else {
                continue;
            };
            let start = window_start(person.date_time);
            if window_start(auction.date_time) == start {
                pairs += 1;
                let value = json!({"id": person.id, "name": person.name, "window_start": start});
                output.add(&format!("{}@{start}", person.id), Some(&value));
            }
        }
        pairs
    }
}

/// The record of q0, q1 or q2 for `bid`, if it selects it.
fn stateless_record(query: Query, bid: &Bid) -> Option<(String, Value)> {
    let value = match query {
        Query::Q0 => serde_json::to_value(bid).ok()?,
        Query::Q1 => json!({
            "auction": bid.auction, "bidder": bid.bidder, "price": bid.price * 908 / 1000,
            "date_time": bid.date_time,
        }),
        Query::Q2 if bid.auction.is_multiple_of(123) => {
            json!({"auction": bid.auction, "price": bid.price})
        }
        _ => return None,
    };
    Some((bid.auction.to_string(), value))
}

/// The canonical records of q0, q1 or q2 for `events` (to find the text of hashed examples of
/// a mismatch, see [`super::compare::Mismatch::resolve`]).
pub fn stateless_records(
    query: Query,
    events: impl IntoIterator<Item = Event>,
) -> impl Iterator<Item = String> {
    events.into_iter().filter_map(move |event| match event {
        Event::Bid(bid) => {
            stateless_record(query, &bid).map(|(key, value)| canonical(&key, Some(&value)))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::compare::{compare, Mode};
    use crate::nexmark::events::{generate, BASE_TIME_MS};

    /// NexmarkQueriesTest's base time.
    const T: u64 = BASE_TIME_MS;

    fn person(id: usize, name: &str, city: &str, state: &str, date_time: u64) -> Event {
        Event::Person(Person {
            id,
            name: name.into(),
            email_address: "abcdefg@hijkl.com".into(),
            credit_card: "1234 5678 9012 3456".into(),
            city: city.into(),
            state: state.into(),
            date_time,
            extra: String::new(),
        })
    }

    fn auction(id: usize, date_time: u64, expires: u64, seller: usize, category: usize) -> Event {
        Event::Auction(Auction {
            id,
            item_name: "item".into(),
            description: "desc".into(),
            initial_bid: 100,
            reserve: 150,
            date_time,
            expires,
            seller,
            category,
            extra: "x".into(),
        })
    }

    fn bid(auction: usize, bidder: usize, price: usize, date_time: u64) -> Event {
        Event::Bid(Bid {
            auction,
            bidder,
            price,
            channel: "Google".into(),
            url: "https://www.nexmark.com/abc/item.htm?query=1".into(),
            date_time,
            extra: String::new(),
        })
    }

    fn expected(query: Query, events: &[Event]) -> Expected {
        let mut model = Model::new(&[query]);
        for event in events {
            model.add(event);
        }
        model.expected(query)
    }

    fn output(mode: Mode, records: &[(&str, Value)]) -> Output {
        let mut output = Output::new(mode);
        for (key, value) in records {
            output.add(key, Some(value));
        }
        output
    }

    fn assert_output(expected: &Expected, want: &Output) {
        if let Some(mismatch) = compare(want, &expected.output) {
            panic!("{}", mismatch.describe("the test", "the model"));
        }
    }

    #[test]
    fn q1_and_q2_map_and_select_bids() {
        let bids = [bid(1107, 1001, 1001, T + 1), bid(1000, 1002, 3, T + 2)];
        let q1 = expected(Query::Q1, &bids);
        assert_eq!(q1.records, Some(2));
        let want = output(
            Mode::All,
            &[
                (
                    "1107",
                    json!({"auction": 1107, "bidder": 1001, "price": 908, "date_time": T + 1}),
                ),
                (
                    "1000",
                    json!({"auction": 1000, "bidder": 1002, "price": 2, "date_time": T + 2}),
                ),
            ],
        );
        assert_output(&q1, &want);
        let q2 = expected(Query::Q2, &bids);
        assert_output(
            &q2,
            &output(
                Mode::All,
                &[("1107", json!({"auction": 1107, "price": 1001}))],
            ),
        );
    }

    #[test]
    fn q3_joins_the_final_tables() {
        let events = [
            person(1000, "peter jones", "portland", "or", T + 1),
            person(1001, "paul white", "seattle", "wa", T + 2),
            auction(2000, T + 10, T + 100_000, 1000, 10),
            auction(2001, T + 11, T + 100_000, 1000, 11),
            auction(2002, T + 12, T + 100_000, 1001, 10),
            auction(2003, T + 13, T + 100_000, 1002, 10),
            person(1002, "luke brown", "los angeles", "ca", T + 20),
            person(1000, "peter jones", "seattle", "wa", T + 30),
        ];
        let q3 = expected(Query::Q3, &events);
        assert_eq!(q3.records, None);
        let want = output(
            Mode::Final,
            &[(
                "2003",
                json!({"name": "luke brown", "city": "los angeles", "state": "ca", "id": 2003}),
            )],
        );
        assert_output(&q3, &want);
    }

    #[test]
    fn q4_keeps_bids_after_the_auction_opened_whatever_came_first() {
        let events = [
            bid(3000, 1001, 999, T + 1_000), // the auction's own timestamp: outside
            auction(3000, T + 1_000, T + 100_000, 1000, 10),
            bid(3000, 1001, 998, T + 1_000), // the same, after the auction
            auction(3001, T, T + 5_000, 1000, 10),
            auction(3002, T + 1_000, T + 50_000, 1001, 11),
            bid(3000, 1001, 300, T + 2_000),
            bid(3001, 1002, 51, T + 1_000),
            bid(3001, 1002, 1_000, T + 6_000), // after the auction expired
            bid(3002, 1001, 7_000, T + 500),   // before the auction opened
            bid(3002, 1001, 9, T + 50_000),    // at expires: inside
            bid(9999, 1001, 1_000_000, T + 2_000), // no such auction
            bid(3003, 1001, 5_000, T + 3_000), // before its auction, which opened earlier
            auction(3003, T + 2_000, T + 9_000, 1001, 11),
        ];
        let q4 = expected(Query::Q4, &events);
        // Category 10: (300 + 51) / 2 = 175; category 11: (9 + 5000) / 2 = 2504.
        let want = output(
            Mode::Final,
            &[
                ("10", json!({"category": 10, "avg": 175})),
                ("11", json!({"category": 11, "avg": 2_504})),
            ],
        );
        assert_output(&q4, &want);
    }

    #[test]
    fn q5_finds_the_hottest_auction_of_every_hopping_window() {
        let offsets = [(5, 1_000), (5, 3_000), (7, 3_500), (7, 4_000), (3, 12_000)];
        let events: Vec<Event> = offsets.iter().map(|&(a, t)| bid(a, 1, 10, T + t)).collect();
        let q5 = expected(Query::Q5, &events);
        assert_eq!(q5.records, Some(25));
        let window = |start: i64, auction: usize, count: u64| {
            let start = (T as i64 + start) as u64;
            (
                start.to_string(),
                json!({"window_start": start, "auction": auction, "count": count}),
            )
        };
        let windows = [
            window(-8_000, 5, 1),
            window(-6_000, 5, 2),
            window(-4_000, 5, 2),
            window(-2_000, 5, 2),
            window(0, 5, 2), // 5 and 7 tie at 2: the smaller auction
            window(2_000, 7, 2),
            window(4_000, 3, 1),
            window(6_000, 3, 1),
            window(8_000, 3, 1),
            window(10_000, 3, 1),
            window(12_000, 3, 1),
        ];
        let records: Vec<(&str, Value)> = windows
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        assert_output(&q5, &output(Mode::Final, &records));
    }

    #[test]
    fn q7_breaks_ties_by_auction_bidder_and_time() {
        let events = [
            bid(11, 2, 80, T + 2_000),
            bid(9, 3, 80, T + 3_000),
            bid(9, 2, 80, T + 4_000),
            bid(9, 2, 80, T + 500),
            bid(2, 1, 20, T + 19_999),
        ];
        let q7 = expected(Query::Q7, &events);
        assert_eq!(q7.records, Some(5));
        let highest = |start: u64, auction: usize, bidder: usize, price: usize, at: u64| {
            (
                start.to_string(),
                json!({"window_start": start, "auction": auction, "bidder": bidder,
                       "price": price, "date_time": at}),
            )
        };
        let (a, b) = (
            highest(T, 9, 2, 80, T + 500),
            highest(T + 10_000, 2, 1, 20, T + 19_999),
        );
        assert_output(
            &q7,
            &output(Mode::Final, &[(&a.0, a.1.clone()), (&b.0, b.1.clone())]),
        );
    }

    #[test]
    fn q8_pairs_sellers_with_their_window() {
        let events = [
            person(1000, "peter jones", "portland", "or", T + 1_000),
            auction(2000, T + 5_000, T + 100_000, 1000, 10),
            person(1001, "paul white", "seattle", "wa", T + 9_000),
            auction(2001, T + 11_000, T + 100_000, 1001, 10),
            person(1002, "luke brown", "boise", "id", T + 12_000),
            auction(2003, T + 19_000, T + 100_000, 1002, 10),
            auction(2004, T + 19_500, T + 100_000, 1002, 11),
            auction(2005, T + 20_500, T + 100_000, 1003, 10),
            person(1003, "kate smith", "boise", "id", T + 21_000),
        ];
        let q8 = expected(Query::Q8, &events);
        assert_eq!(q8.records, Some(4));
        let pair = |id: usize, name: &str, start: u64| {
            (
                format!("{id}@{start}"),
                json!({"id": id, "name": name, "window_start": start}),
            )
        };
        let pairs = [
            pair(1000, "peter jones", T),
            pair(1002, "luke brown", T + 10_000),
            pair(1003, "kate smith", T + 20_000),
        ];
        let records: Vec<(&str, Value)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert_output(&q8, &output(Mode::Distinct, &records));
    }

    #[test]
    fn stateless_records_resolve_what_the_model_hashed() {
        let events: Vec<Event> = generate(200, BASE_TIME_MS).collect();
        let q0 = expected(Query::Q0, &events);
        let texts: Vec<String> = stateless_records(Query::Q0, events.clone()).collect();
        assert_eq!(texts.len() as u64, q0.records.unwrap());
        let mut rebuilt = Output::new(Mode::All);
        for event in &events {
            if let Event::Bid(b) = event {
                let bytes = serde_json::to_vec(b).unwrap();
                rebuilt
                    .add_raw(Some(b.auction.to_string().as_bytes()), Some(&bytes))
                    .unwrap();
            }
        }
        assert_output(&q0, &rebuilt);
    }
}
