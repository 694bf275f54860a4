package streamlib.peers;

import java.nio.ByteBuffer;
import java.time.Duration;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.Stores;
import org.apache.kafka.streams.state.WindowStore;

/** The three workloads of benches/PEERS.md, written as a Kafka Streams user would. */
final class Workloads {
    private Workloads() {}

    static final ObjectMapper MAPPER = new ObjectMapper();
    static final Serde<JsonNode> JSON = Serdes.serdeFrom(
            (Serializer<JsonNode>) (topic, node) -> {
                try {
                    return node == null ? null : MAPPER.writeValueAsBytes(node);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            },
            (Deserializer<JsonNode>) (topic, bytes) -> {
                try {
                    return bytes == null ? null : MAPPER.readTree(bytes);
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });

    static final String STATS_STORE = "hop-stats";
    static final String SEEN_STORE = "dedup-seen";
    static final Duration WINDOW = Duration.ofHours(1);
    static final Duration HOP = Duration.ofMinutes(5);
    static final Duration DEDUP_TTL = Duration.ofDays(7);

    static Topology build(String workload, String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, JsonNode> events = builder.stream(input, Consumed.with(Serdes.String(), JSON));
        switch (workload) {
            case "stateless" -> stateless(events, output);
            case "hopping" -> hopping(events, output);
            case "dedup" -> dedup(builder, events, output);
            default -> throw new IllegalArgumentException("unknown workload " + workload);
        }
        return builder.build();
    }

    /** The price when it is a finite number above zero. */
    static boolean validPrice(JsonNode event) {
        JsonNode price = event.get("price");
        return price != null && price.isNumber() && Double.isFinite(price.asDouble()) && price.asDouble() > 0;
    }

    /** filter(valid price) → map to {coin_id, price, ts_event, sent_ms}. */
    static void stateless(KStream<String, JsonNode> events, String output) {
        events.filter((key, event) -> validPrice(event))
                .mapValues(event -> {
                    ObjectNode out = MAPPER.createObjectNode();
                    out.set("coin_id", event.get("coin_id"));
                    out.set("price", event.get("price"));
                    out.set("ts_event", event.get("ts_event"));
                    out.set("sent_ms", event.get("sent_ms"));
                    return (JsonNode) out;
                })
                .to(output, Produced.with(Serdes.String(), JSON));
    }

    /** filter → hopping 1 h / 5 min windows per key → count, sum, min, max of price; every update out. */
    static void hopping(KStream<String, JsonNode> events, String output) {
        events.filter((key, event) -> validPrice(event))
                .mapValues(event -> new Tick(event.get("price").asDouble(), event.path("sent_ms").asLong()))
                .groupByKey(Grouped.with(Serdes.String(), Tick.SERDE))
                .windowedBy(TimeWindows.ofSizeWithNoGrace(WINDOW).advanceBy(HOP))
                .aggregate(Stats::empty, (key, tick, stats) -> stats.add(tick),
                        Materialized.<String, Stats, WindowStore<Bytes, byte[]>>as(STATS_STORE)
                                .withKeySerde(Serdes.String())
                                .withValueSerde(Stats.SERDE))
                .toStream()
                .map((window, stats) -> KeyValue.pair(window.key(),
                        stats.toJson(window.key(), window.window().start(), window.window().end())))
                .to(output, Produced.with(Serdes.String(), JSON));
    }

    /** Forwards the first event of each (key, ts_event) seen within the last 7 days of stream time. */
    static void dedup(StreamsBuilder builder, KStream<String, JsonNode> events, String output) {
        // The idiomatic Kafka Streams TTL store: a window store keyed by record key, with
        // ts_event as the window timestamp and 7 days retention (whole segments expire).
        builder.addStateStore(Stores.windowStoreBuilder(
                Stores.persistentWindowStore(SEEN_STORE, DEDUP_TTL, Duration.ofMillis(1), false),
                Serdes.String(), Serdes.Long()));
        events.process(Dedup::new, SEEN_STORE).to(output, Produced.with(Serdes.String(), JSON));
    }

    /** The dedup processor over the {@link #SEEN_STORE} window store. */
    static final class Dedup implements Processor<String, JsonNode, String, JsonNode> {
        private ProcessorContext<String, JsonNode> context;
        private WindowStore<String, Long> seen;

        @Override
        public void init(ProcessorContext<String, JsonNode> context) {
            this.context = context;
            this.seen = context.getStateStore(SEEN_STORE);
        }

        @Override
        public void process(Record<String, JsonNode> record) {
            JsonNode ts = record.value().get("ts_event");
            if (ts == null || !ts.canConvertToLong()) {
                return;
            }
            long tsEvent = ts.asLong();
            if (seen.fetch(record.key(), tsEvent) != null) {
                return;
            }
            seen.put(record.key(), 1L, tsEvent);
            context.forward(record);
        }
    }

    /** What the window aggregate needs of an event. */
    record Tick(double price, long sentMs) {
        static final Serde<Tick> SERDE = Serdes.serdeFrom(
                (Serializer<Tick>) (topic, tick) -> ByteBuffer.allocate(16)
                        .putDouble(tick.price).putLong(tick.sentMs).array(),
                (Deserializer<Tick>) (topic, bytes) -> {
                    ByteBuffer buffer = ByteBuffer.wrap(bytes);
                    return new Tick(buffer.getDouble(), buffer.getLong());
                });
    }

    /** Count, sum, min, max of the prices in a window, and the newest sent_ms (for latency). */
    record Stats(long count, double sum, double min, double max, long lastSentMs) {
        static Stats empty() {
            return new Stats(0, 0.0, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Long.MIN_VALUE);
        }

        Stats add(Tick tick) {
            return new Stats(count + 1, sum + tick.price, Math.min(min, tick.price), Math.max(max, tick.price),
                    Math.max(lastSentMs, tick.sentMs));
        }

        JsonNode toJson(String coinId, long start, long end) {
            ObjectNode out = MAPPER.createObjectNode();
            out.put("coin_id", coinId);
            out.put("window_start", start);
            out.put("window_end", end);
            out.put("count", count);
            out.put("sum", sum);
            out.put("min", min);
            out.put("max", max);
            out.put("sent_ms", lastSentMs);
            return out;
        }

        static final Serde<Stats> SERDE = Serdes.serdeFrom(
                (Serializer<Stats>) (topic, s) -> ByteBuffer.allocate(40)
                        .putLong(s.count).putDouble(s.sum).putDouble(s.min).putDouble(s.max).putLong(s.lastSentMs)
                        .array(),
                (Deserializer<Stats>) (topic, bytes) -> {
                    ByteBuffer b = ByteBuffer.wrap(bytes);
                    return new Stats(b.getLong(), b.getDouble(), b.getDouble(), b.getDouble(), b.getLong());
                });
    }
}
