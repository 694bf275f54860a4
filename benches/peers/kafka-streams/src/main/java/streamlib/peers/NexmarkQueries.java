package streamlib.peers;

import java.time.Duration;
import java.util.Comparator;
import java.util.Set;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;

/**
 * The Nexmark queries q0, q1, q2, q3, q4, q5, q7 and q8 of benches/NEXMARK.md, written as a Kafka
 * Streams user would: one method per query building its {@link Topology} from the topic names.
 * Keys are UTF-8 strings; values are JSON objects with the fields (and in the order) NEXMARK.md
 * lists, read and written with Jackson through the records below (Java names in camelCase, JSON
 * names in snake_case).
 */
final class NexmarkQueries {
    private NexmarkQueries() {}

    /** Nexmark's windows (q5's size, q7 and q8's tumbling windows). */
    static final long WINDOW_MS = 10_000;
    /** q3: the auctions' category and the sellers' states it keeps. */
    static final long Q3_CATEGORY = 10;
    static final Set<String> Q3_STATES = Set.of("or", "id", "ca");

    static final ObjectMapper MAPPER = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE);

    /** JSON through {@link #MAPPER}; null (a tombstone) stays null. */
    static <T> Serde<T> json(Class<T> type) {
        return Serdes.serdeFrom(
                (Serializer<T>) (topic, value) -> {
                    try {
                        return value == null ? null : MAPPER.writeValueAsBytes(value);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                },
                (Deserializer<T>) (topic, bytes) -> {
                    try {
                        return bytes == null ? null : MAPPER.readValue(bytes, type);
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                });
    }

    // The input events: the `nexmark` crate's serde fields.
    record Person(long id, String name, String emailAddress, String creditCard, String city, String state,
            long dateTime, String extra) {}

    record Auction(long id, String itemName, String description, long initialBid, long reserve, long dateTime,
            long expires, long seller, long category, String extra) {}

    record Bid(long auction, long bidder, long price, String channel, String url, long dateTime, String extra) {}

    // The outputs, and what the stateful queries keep.
    record Q1(long auction, long bidder, long price, long dateTime) {}

    record Q2(long auction, long price) {}

    record Q3(String name, String city, String state, long id) {}

    /** q4: a bid inside its auction's lifetime, as the stream–table join sees it. */
    record BidInAuction(Bid bid, Auction auction) {}

    /** q4: an auction's category and its highest price so far. */
    record CategoryPrice(long category, long price) {}

    /** q4: the sum and count of the highest prices of a category's auctions. */
    record SumCount(long sum, long count) {}

    record Q4(long category, long avg) {}

    record Q5(long windowStart, long auction, long count) {}

    record Q7(long windowStart, long auction, long bidder, long price, long dateTime) {}

    record Q8(long id, String name, long windowStart) {}

    static final Serde<Person> PERSON = json(Person.class);
    static final Serde<Auction> AUCTION = json(Auction.class);
    static final Serde<Bid> BID = json(Bid.class);
    static final Serde<Q1> Q1_SERDE = json(Q1.class);
    static final Serde<Q2> Q2_SERDE = json(Q2.class);
    static final Serde<Q3> Q3_SERDE = json(Q3.class);
    static final Serde<CategoryPrice> CATEGORY_PRICE = json(CategoryPrice.class);
    static final Serde<SumCount> SUM_COUNT = json(SumCount.class);
    static final Serde<Q4> Q4_SERDE = json(Q4.class);
    static final Serde<Q5> Q5_SERDE = json(Q5.class);
    static final Serde<Q7> Q7_SERDE = json(Q7.class);
    static final Serde<Q8> Q8_SERDE = json(Q8.class);

    /** The start of the tumbling 10 s window holding {@code dateTime} (ms since the epoch, never negative). */
    static long windowStart(long dateTime) {
        return dateTime - dateTime % WINDOW_MS;
    }

    /** The topology of {@code query} (q0, q1, q2, q3, q4, q5, q7 or q8) over the three input topics. */
    static Topology build(String query, String person, String auction, String bid, String output) {
        return switch (query) {
            case "q0" -> q0(bid, output);
            case "q1" -> q1(bid, output);
            case "q2" -> q2(bid, output);
            case "q3" -> q3(person, auction, output);
            case "q4" -> q4(auction, bid, output);
            case "q5" -> q5(bid, output);
            case "q7" -> q7(bid, output);
            case "q8" -> q8(person, auction, output);
            default -> throw new IllegalArgumentException("unknown query " + query);
        };
    }

    private static KStream<String, Bid> bids(StreamsBuilder builder, String bid) {
        return builder.stream(bid, Consumed.with(Serdes.String(), BID));
    }

    /** q0 pass-through: every bid, parsed (by the source's serde) and written back (by the sink's). */
    static Topology q0(String bid, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        bids(builder, bid)
                .to(output, Produced.with(Serdes.String(), BID));
        return builder.build();
    }

    /** q1 currency conversion: the price in euros, {@code price * 908 / 1000} (integer division). */
    static Topology q1(String bid, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        bids(builder, bid)
                .mapValues(b -> new Q1(b.auction(), b.bidder(), b.price() * 908 / 1000, b.dateTime()))
                .to(output, Produced.with(Serdes.String(), Q1_SERDE));
        return builder.build();
    }

    /** q2 selection: the bids of every 123rd auction. */
    static Topology q2(String bid, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        bids(builder, bid)
                .filter((auction, b) -> b.auction() % 123 == 0)
                .mapValues(b -> new Q2(b.auction(), b.price()))
                .to(output, Produced.with(Serdes.String(), Q2_SERDE));
        return builder.build();
    }

    /**
     * q3 local item suggestion: auctions of category 10 whose seller lives in OR, ID or CA — a
     * foreign-key join of the auction table with the person table on {@code seller}.
     */
    static Topology q3(String person, String auction, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, Auction> auctions = builder.table(auction, Consumed.with(Serdes.String(), AUCTION))
                .filter((id, a) -> a.category() == Q3_CATEGORY);
        KTable<String, Person> persons = builder.table(person, Consumed.with(Serdes.String(), PERSON))
                .filter((id, p) -> Q3_STATES.contains(p.state()));
        auctions.join(persons, a -> Long.toString(a.seller()),
                        (a, p) -> new Q3(p.name(), p.city(), p.state(), a.id()))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Q3_SERDE));
        return builder.build();
    }

    /**
     * q4 average price per category: per auction the highest bid within its lifetime, per category
     * the average of those (integer division), kept up to date with an adder and a subtractor.
     */
    static Topology q4(String auction, String bid, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        KTable<String, Auction> auctions = builder.table(auction, Consumed.with(Serdes.String(), AUCTION));
        bids(builder, bid)
                .join(auctions, BidInAuction::new)
                .filter((id, j) -> j.auction().dateTime() < j.bid().dateTime()
                        && j.bid().dateTime() <= j.auction().expires())
                .mapValues(j -> new CategoryPrice(j.auction().category(), j.bid().price()))
                .groupByKey(Grouped.with(Serdes.String(), CATEGORY_PRICE))
                .reduce((highest, next) -> next.price() > highest.price() ? next : highest,
                        Materialized.with(Serdes.String(), CATEGORY_PRICE))
                .groupBy((id, highest) -> KeyValue.pair(Long.toString(highest.category()), highest),
                        Grouped.with(Serdes.String(), CATEGORY_PRICE))
                .aggregate(() -> new SumCount(0, 0),
                        (category, highest, agg) -> new SumCount(agg.sum() + highest.price(), agg.count() + 1),
                        (category, highest, agg) -> new SumCount(agg.sum() - highest.price(), agg.count() - 1),
                        Materialized.with(Serdes.String(), SUM_COUNT))
                // A category whose count falls to zero has no average: its row is deleted.
                .mapValues((category, agg) -> agg.count() == 0 ? null
                        : new Q4(Long.parseLong(category), agg.sum() / agg.count()))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Q4_SERDE));
        return builder.build();
    }

    /** q5's order: more bids first, then the smaller auction id. */
    static final Comparator<Q5> HOTTER = Comparator.comparingLong(Q5::count).reversed()
            .thenComparingLong(Q5::auction);

    /**
     * q5 hot items: bids per auction in hopping windows of 10 s advancing by 2 s (grace 10 s); per
     * window the auction with the most bids (the smallest id among ties).
     */
    static Topology q5(String bid, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        bids(builder, bid)
                .groupByKey(Grouped.with(Serdes.String(), BID))
                .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMillis(WINDOW_MS), Duration.ofSeconds(10))
                        .advanceBy(Duration.ofSeconds(2)))
                .count()
                .toStream()
                .map((window, count) -> {
                    long start = window.window().start();
                    return KeyValue.pair(Long.toString(start), new Q5(start, Long.parseLong(window.key()), count));
                })
                .groupByKey(Grouped.with(Serdes.String(), Q5_SERDE))
                .reduce((hottest, next) -> HOTTER.compare(next, hottest) < 0 ? next : hottest,
                        Materialized.with(Serdes.String(), Q5_SERDE))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Q5_SERDE));
        return builder.build();
    }

    /** q7's order: the higher price first, then the smaller auction, bidder and date_time. */
    static final Comparator<Q7> HIGHER = Comparator.comparingLong(Q7::price).reversed()
            .thenComparingLong(Q7::auction)
            .thenComparingLong(Q7::bidder)
            .thenComparingLong(Q7::dateTime);

    /** q7 highest bid: per tumbling window of 10 s the highest bid (the tie-break of {@link #HIGHER}). */
    static Topology q7(String bid, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        bids(builder, bid)
                .selectKey((auction, b) -> Long.toString(windowStart(b.dateTime())))
                .mapValues(b -> new Q7(windowStart(b.dateTime()), b.auction(), b.bidder(), b.price(), b.dateTime()))
                .groupByKey(Grouped.with(Serdes.String(), Q7_SERDE))
                .reduce((highest, next) -> HIGHER.compare(next, highest) < 0 ? next : highest,
                        Materialized.with(Serdes.String(), Q7_SERDE))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Q7_SERDE));
        return builder.build();
    }

    /**
     * q8 new sellers: people who opened an auction in the tumbling 10 s window in which they joined —
     * a windowed stream–stream join on {@code "{id}@{window start}"}, one record per (person,
     * auction) pair.
     */
    static Topology q8(String person, String auction, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, Person> persons = builder.stream(person, Consumed.with(Serdes.String(), PERSON))
                .selectKey((id, p) -> p.id() + "@" + windowStart(p.dateTime()));
        KStream<String, Auction> auctions = builder.stream(auction, Consumed.with(Serdes.String(), AUCTION))
                .selectKey((id, a) -> a.seller() + "@" + windowStart(a.dateTime()));
        // The grace covers the event-time disorder between the two re-keying sub-topologies when
        // they replay pre-produced topics (the same 10 min as streamlib's Q8_GRACE; NEXMARK.md, q8).
        persons.join(auctions,
                        (p, a) -> new Q8(p.id(), p.name(), windowStart(p.dateTime())),
                        JoinWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(10), Duration.ofMinutes(10)),
                        StreamJoined.with(Serdes.String(), PERSON, AUCTION))
                .to(output, Produced.with(Serdes.String(), Q8_SERDE));
        return builder.build();
    }
}
