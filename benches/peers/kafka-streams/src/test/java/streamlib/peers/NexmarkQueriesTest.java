package streamlib.peers;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.TopologyTestDriver;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Nexmark queries of benches/NEXMARK.md on {@link TopologyTestDriver}: hand-written people,
 * auctions and bids (Kafka timestamp = date_time) in, the exact keys and JSON values out.
 */
class NexmarkQueriesTest {
    /** NEXMARK.md's base time, 2026-01-01T00:00:00Z (a multiple of 10 s). */
    static final long T = 1_767_225_600_000L;

    @TempDir
    Path stateDir;

    private TopologyTestDriver driver;

    @AfterEach
    void close() {
        if (driver != null) {
            driver.close();
        }
    }

    private void start(String query) {
        Topology topology = NexmarkQueries.build(query, "person", "auction", "bid", "out");
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "nexmark-" + query);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        driver = new TopologyTestDriver(topology, props);
    }

    private TestInputTopic<String, String> input(String topic) {
        return driver.createInputTopic(topic, new StringSerializer(), new StringSerializer());
    }

    private void person(long id, String name, String city, String state, long dateTime) {
        input("person").pipeInput(Long.toString(id), String.format(
                "{\"id\":%d,\"name\":\"%s\",\"email_address\":\"abcdefg@hijkl.com\","
                        + "\"credit_card\":\"1234 5678 9012 3456\",\"city\":\"%s\",\"state\":\"%s\","
                        + "\"date_time\":%d,\"extra\":\"\"}",
                id, name, city, state, dateTime), dateTime);
    }

    private void auction(long id, long dateTime, long expires, long seller, long category) {
        input("auction").pipeInput(Long.toString(id), String.format(
                "{\"id\":%d,\"item_name\":\"item\",\"description\":\"desc\",\"initial_bid\":100,"
                        + "\"reserve\":150,\"date_time\":%d,\"expires\":%d,\"seller\":%d,\"category\":%d,"
                        + "\"extra\":\"x\"}",
                id, dateTime, expires, seller, category), dateTime);
    }

    private static String bidJson(long auction, long bidder, long price, long dateTime) {
        return String.format(
                "{\"auction\":%d,\"bidder\":%d,\"price\":%d,\"channel\":\"Google\","
                        + "\"url\":\"https://www.nexmark.com/abc/item.htm?query=1\",\"date_time\":%d,"
                        + "\"extra\":\"\"}",
                auction, bidder, price, dateTime);
    }

    private void bid(long auction, long bidder, long price, long dateTime) {
        input("bid").pipeInput(Long.toString(auction), bidJson(auction, bidder, price, dateTime), dateTime);
    }

    private List<KeyValue<String, String>> all() {
        TestOutputTopic<String, String> out =
                driver.createOutputTopic("out", new StringDeserializer(), new StringDeserializer());
        return out.readKeyValuesToList();
    }

    /** The last value per key; a tombstone removes the key (NEXMARK.md's "final"). */
    private Map<String, String> last() {
        return last(new TreeMap<>());
    }

    /** {@code table} updated with the output records not read yet. */
    private Map<String, String> last(Map<String, String> table) {
        for (KeyValue<String, String> record : all()) {
            if (record.value == null) {
                table.remove(record.key);
            } else {
                table.put(record.key, record.value);
            }
        }
        return table;
    }

    @Test
    void q0PassesEveryBidThrough() {
        start("q0");
        bid(1000, 1001, 1234, T + 1);
        bid(1007, 1002, 5, T + 2);
        assertEquals(List.of(
                        KeyValue.pair("1000", bidJson(1000, 1001, 1234, T + 1)),
                        KeyValue.pair("1007", bidJson(1007, 1002, 5, T + 2))),
                all());
    }

    @Test
    void q1ConvertsThePriceWithIntegerDivision() {
        start("q1");
        bid(1000, 1001, 1001, T + 1); // 1001 * 908 / 1000 = 908.908
        bid(1001, 1002, 3, T + 2); // 3 * 908 / 1000 = 2.724
        assertEquals(List.of(
                        KeyValue.pair("1000", "{\"auction\":1000,\"bidder\":1001,\"price\":908,\"date_time\":" + (T + 1) + "}"),
                        KeyValue.pair("1001", "{\"auction\":1001,\"bidder\":1002,\"price\":2,\"date_time\":" + (T + 2) + "}")),
                all());
    }

    @Test
    void q2KeepsEvery123rdAuction() {
        start("q2");
        bid(1107, 1001, 10, T + 1); // 123 * 9
        bid(1000, 1001, 20, T + 2);
        bid(1230, 1002, 30, T + 3); // 123 * 10
        bid(1231, 1002, 40, T + 4);
        assertEquals(List.of(
                        KeyValue.pair("1107", "{\"auction\":1107,\"price\":10}"),
                        KeyValue.pair("1230", "{\"auction\":1230,\"price\":30}")),
                all());
    }

    @Test
    void q3JoinsCategory10AuctionsWithTheirLocalSellers() {
        start("q3");
        person(1000, "peter jones", "portland", "or", T + 1);
        person(1001, "paul white", "seattle", "wa", T + 2);
        person(1003, "kate smith", "boise", "id", T + 3);
        auction(2000, T + 10, T + 100_000, 1000, 10); // kept
        auction(2001, T + 11, T + 100_000, 1000, 11); // other category
        auction(2002, T + 12, T + 100_000, 1001, 10); // seller in wa
        auction(2003, T + 13, T + 100_000, 1002, 10); // its seller comes later
        auction(2004, T + 14, T + 100_000, 1003, 10); // kept
        auction(2005, T + 15, T + 100_000, 1004, 10); // seller never comes
        person(1002, "luke brown", "los angeles", "ca", T + 20);
        Map<String, String> table = last();
        assertEquals(Map.of(
                        "2000", "{\"name\":\"peter jones\",\"city\":\"portland\",\"state\":\"or\",\"id\":2000}",
                        "2003", "{\"name\":\"luke brown\",\"city\":\"los angeles\",\"state\":\"ca\",\"id\":2003}",
                        "2004", "{\"name\":\"kate smith\",\"city\":\"boise\",\"state\":\"id\",\"id\":2004}"),
                table);

        // Tables: a seller moving out of the three states deletes the row; one moving in adds it.
        person(1000, "peter jones", "seattle", "wa", T + 30);
        person(1001, "paul white", "boise", "id", T + 31);
        assertEquals(Map.of(
                        "2002", "{\"name\":\"paul white\",\"city\":\"boise\",\"state\":\"id\",\"id\":2002}",
                        "2003", "{\"name\":\"luke brown\",\"city\":\"los angeles\",\"state\":\"ca\",\"id\":2003}",
                        "2004", "{\"name\":\"kate smith\",\"city\":\"boise\",\"state\":\"id\",\"id\":2004}"),
                last(table));
    }

    @Test
    void q4AveragesTheHighestBidPerAuctionPerCategory() {
        start("q4");
        auction(3000, T, T + 100_000, 1000, 10);
        auction(3001, T, T + 5_000, 1000, 10);
        auction(3002, T + 1_000, T + 50_000, 1001, 11);
        bid(3000, 1001, 100, T + 1_000);
        bid(3000, 1001, 300, T + 2_000);
        bid(3000, 1002, 200, T + 3_000);
        bid(3001, 1002, 51, T + 1_000);
        bid(3001, 1002, 1_000, T + 6_000); // after the auction expired
        bid(3002, 1001, 7_000, T + 500); // before the auction opened
        bid(3002, 1001, 9, T + 2_000);
        bid(3002, 1001, 9, T + 50_000); // at expires: inside
        bid(9999, 1001, 1_000_000, T + 2_000); // no such auction
        // Category 10: (300 + 51) / 2 = 175 (integer division); category 11: 9 / 1.
        assertEquals(Map.of(
                        "10", "{\"category\":10,\"avg\":175}",
                        "11", "{\"category\":11,\"avg\":9}"),
                last());
    }

    @Test
    void q5FindsTheAuctionWithTheMostBidsPerHoppingWindow() {
        start("q5");
        long[][] bids = {
            {5, 1_000}, {5, 3_000}, {7, 3_500}, {7, 4_000}, {3, 4_200}, {5, 9_000}, {7, 9_500},
            {3, 12_000}, {9, 12_500}, {9, 13_000}, {3, 40_000},
            {5, 1_000}, // later than every window of it closes (end + 10 s grace): dropped
        };
        for (long[] b : bids) {
            bid(b[0], 1001, 10, T + b[1]);
        }
        // Window start (offset from T) → auction, count: the most bids, then the smaller auction.
        long[][] expected = {
            {-8_000, 5, 1}, {-6_000, 5, 2}, {-4_000, 5, 2}, {-2_000, 5, 2}, {0, 5, 3}, {2_000, 7, 3},
            {4_000, 3, 2}, {6_000, 9, 2}, {8_000, 9, 2}, {10_000, 9, 2}, {12_000, 9, 2},
            {32_000, 3, 1}, {34_000, 3, 1}, {36_000, 3, 1}, {38_000, 3, 1}, {40_000, 3, 1},
        };
        Map<String, String> want = new TreeMap<>();
        for (long[] e : expected) {
            long start = T + e[0];
            want.put(Long.toString(start),
                    "{\"window_start\":" + start + ",\"auction\":" + e[1] + ",\"count\":" + e[2] + "}");
        }
        assertEquals(want, last());
    }

    private static String q7(long windowStart, long auction, long bidder, long price, long dateTime) {
        return "{\"window_start\":" + windowStart + ",\"auction\":" + auction + ",\"bidder\":" + bidder
                + ",\"price\":" + price + ",\"date_time\":" + dateTime + "}";
    }

    @Test
    void q7FindsTheHighestBidPerTumblingWindow() {
        start("q7");
        bid(10, 1, 50, T + 1_000);
        bid(11, 2, 80, T + 2_000);
        bid(9, 3, 80, T + 3_000); // same price, smaller auction
        bid(9, 2, 80, T + 4_000); // same auction, smaller bidder
        bid(9, 2, 80, T + 500); // same bidder, earlier
        bid(12, 1, 79, T + 9_999);
        bid(1, 1, 10, T + 10_000);
        bid(2, 1, 20, T + 19_999);
        assertEquals(Map.of(
                        Long.toString(T), q7(T, 9, 2, 80, T + 500),
                        Long.toString(T + 10_000), q7(T + 10_000, 2, 1, 20, T + 19_999)),
                last());
    }

    @Test
    void q8FindsPeopleWhoOpenedAnAuctionInTheWindowTheyJoined() {
        start("q8");
        person(1000, "peter jones", "portland", "or", T + 1_000);
        auction(2000, T + 5_000, T + 100_000, 1000, 10); // same window as 1000
        person(1001, "paul white", "seattle", "wa", T + 9_000);
        auction(2001, T + 11_000, T + 100_000, 1001, 10); // within 10 s of 1001, but the next window
        person(1002, "luke brown", "boise", "id", T + 12_000);
        auction(2002, T + 15_000, T + 100_000, 1000, 10); // 1000 joined in the window before
        auction(2003, T + 19_000, T + 100_000, 1002, 10);
        auction(2004, T + 19_500, T + 100_000, 1002, 11); // a second pair for 1002
        auction(2005, T + 20_500, T + 100_000, 1003, 10); // before its seller, same window
        person(1003, "kate smith", "boise", "id", T + 21_000);
        List<KeyValue<String, String>> got = new ArrayList<>(all());
        got.sort((a, b) -> (a.key + a.value).compareTo(b.key + b.value));
        String w0 = Long.toString(T);
        String w1 = Long.toString(T + 10_000);
        String w2 = Long.toString(T + 20_000);
        assertEquals(List.of(
                        KeyValue.pair("1000@" + w0, "{\"id\":1000,\"name\":\"peter jones\",\"window_start\":" + w0 + "}"),
                        KeyValue.pair("1002@" + w1, "{\"id\":1002,\"name\":\"luke brown\",\"window_start\":" + w1 + "}"),
                        KeyValue.pair("1002@" + w1, "{\"id\":1002,\"name\":\"luke brown\",\"window_start\":" + w1 + "}"),
                        KeyValue.pair("1003@" + w2, "{\"id\":1003,\"name\":\"kate smith\",\"window_start\":" + w2 + "}")),
                got);
    }

    @Test
    void unknownQueryIsRejected() {
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> NexmarkQueries.build("q6", "person", "auction", "bid", "out"));
    }
}
