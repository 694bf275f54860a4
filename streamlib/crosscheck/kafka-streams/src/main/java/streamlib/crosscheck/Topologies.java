package streamlib.crosscheck;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.EmitStrategy;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.KeyValueMapper;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.ValueJoiner;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.common.utils.Bytes;

/**
 * The named topologies of the cross-check. Every key and value is a String (the driver's default
 * serdes); every topology reads the input topics of its {@link Spec} and writes {@code out}. The
 * README of the cross-check repeats each definition for whoever builds the same one elsewhere.
 */
final class Topologies {
    private Topologies() {}

    /** A topology by name: the topics a case may pipe into, the topics read back, how to build it. */
    record Spec(String name, List<String> inputs, List<String> outputs, Consumer<StreamsBuilder> define) {
        Topology build() {
            StreamsBuilder builder = new StreamsBuilder();
            define.accept(builder);
            return builder.build();
        }
    }

    static final String IN = "in";
    static final String LEFT = "left";
    static final String RIGHT = "right";
    static final String OUT = "out";

    /** {@code l + "|" + r}: Java renders a null side as "null". */
    static final ValueJoiner<String, String, String> JOINER = (l, r) -> l + "|" + r;

    /** The foreign key of a value {@code fk:payload}. */
    static String foreignKey(String value) {
        return value.split(":")[0];
    }

    static final JoinWindows STREAM_JOIN_WINDOWS =
        JoinWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5));

    static final StreamJoined<String, String, String> STREAM_JOINED =
        StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());

    static final SessionWindows SESSIONS =
        SessionWindows.ofInactivityGapAndGrace(Duration.ofSeconds(5), Duration.ofSeconds(10));

    static final SlidingWindows SLIDING =
        SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5));

    /** A session's key as {@code key@start-end} (both inclusive). */
    static String sessionKey(Windowed<String> windowed) {
        return windowed.key() + "@" + windowed.window().start() + "-" + windowed.window().end();
    }

    /** A count as text; a session merged away is deleted, its count null. */
    static String countText(Long count) {
        return count == null ? null : Long.toString(count);
    }

    private static final Map<String, Spec> ALL = new LinkedHashMap<>();

    private static void oneInput(String name, Consumer<StreamsBuilder> define) {
        ALL.put(name, new Spec(name, List.of(IN), List.of(OUT), define));
    }

    private static void twoInputs(String name, Consumer<StreamsBuilder> define) {
        ALL.put(name, new Spec(name, List.of(LEFT, RIGHT), List.of(OUT), define));
    }

    static {
        oneInput("count", b -> b.<String, String>stream(IN)
            .groupByKey()
            .count()
            .toStream()
            .mapValues(v -> Long.toString(v))
            .to(OUT));

        oneInput("tumbling_count", b -> b.<String, String>stream(IN)
            .groupByKey()
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
            .count()
            .toStream((windowed, count) -> windowed.key() + "@" + windowed.window().start())
            .mapValues(v -> Long.toString(v))
            .to(OUT));

        oneInput("session_count", b -> b.<String, String>stream(IN)
            .groupByKey()
            .windowedBy(SESSIONS)
            .count()
            .toStream((windowed, count) -> sessionKey(windowed))
            .mapValues(Topologies::countText)
            .to(OUT));

        oneInput("session_count_final", b -> b.<String, String>stream(IN)
            .groupByKey()
            .windowedBy(SESSIONS)
            .emitStrategy(EmitStrategy.onWindowClose())
            .count()
            .toStream((windowed, count) -> sessionKey(windowed))
            .mapValues(Topologies::countText)
            .to(OUT));

        oneInput("session_reduce", b -> b.<String, String>stream(IN)
            .groupByKey()
            .windowedBy(SESSIONS)
            .reduce((agg, v) -> agg + v)
            .toStream((windowed, agg) -> sessionKey(windowed))
            .to(OUT));

        oneInput("sliding_count", b -> b.<String, String>stream(IN)
            .groupByKey()
            .windowedBy(SLIDING)
            .count()
            .toStream((windowed, count) -> windowed.key() + "@" + windowed.window().start())
            .mapValues(Topologies::countText)
            .to(OUT));

        oneInput("sliding_count_final", b -> b.<String, String>stream(IN)
            .groupByKey()
            .windowedBy(SLIDING)
            .emitStrategy(EmitStrategy.onWindowClose())
            .count()
            .toStream((windowed, count) -> windowed.key() + "@" + windowed.window().start())
            .mapValues(Topologies::countText)
            .to(OUT));

        oneInput("sliding_reduce", b -> b.<String, String>stream(IN)
            .groupByKey()
            .windowedBy(SLIDING)
            .reduce((agg, v) -> agg + v)
            .toStream((windowed, agg) -> windowed.key() + "@" + windowed.window().start())
            .to(OUT));

        oneInput("table_ops", b -> b.<String, String>table(IN,
                Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("in-table"))
            .filter((k, v) -> v.length() % 2 == 0)
            .mapValues(v -> v.toUpperCase())
            .toStream()
            .to(OUT));

        // The same without naming a store for the source table: Kafka Streams then forwards the
        // filter's tombstones differently (README.md).
        oneInput("table_ops_unmaterialized", b -> b.<String, String>table(IN)
            .filter((k, v) -> v.length() % 2 == 0)
            .mapValues(v -> v.toUpperCase())
            .toStream()
            .to(OUT));

        oneInput("to_table", b -> b.<String, String>stream(IN)
            .toTable()
            .toStream()
            .to(OUT));

        twoInputs("stream_table_inner", b -> {
            KStream<String, String> left = b.stream(LEFT);
            KTable<String, String> right = b.table(RIGHT);
            left.join(right, JOINER).to(OUT);
        });
        twoInputs("stream_table_left", b -> {
            KStream<String, String> left = b.stream(LEFT);
            KTable<String, String> right = b.table(RIGHT);
            left.leftJoin(right, JOINER).to(OUT);
        });

        KeyValueMapper<String, String, String> globalKey = (k, v) -> foreignKey(v);
        twoInputs("stream_globaltable_inner", b -> {
            KStream<String, String> left = b.stream(LEFT);
            GlobalKTable<String, String> right = b.globalTable(RIGHT);
            left.join(right, globalKey, JOINER).to(OUT);
        });
        twoInputs("stream_globaltable_left", b -> {
            KStream<String, String> left = b.stream(LEFT);
            GlobalKTable<String, String> right = b.globalTable(RIGHT);
            left.leftJoin(right, globalKey, JOINER).to(OUT);
        });

        twoInputs("stream_stream_inner", b -> {
            KStream<String, String> left = b.stream(LEFT);
            KStream<String, String> right = b.stream(RIGHT);
            left.join(right, JOINER, STREAM_JOIN_WINDOWS, STREAM_JOINED).to(OUT);
        });
        twoInputs("stream_stream_left", b -> {
            KStream<String, String> left = b.stream(LEFT);
            KStream<String, String> right = b.stream(RIGHT);
            left.leftJoin(right, JOINER, STREAM_JOIN_WINDOWS, STREAM_JOINED).to(OUT);
        });
        twoInputs("stream_stream_outer", b -> {
            KStream<String, String> left = b.stream(LEFT);
            KStream<String, String> right = b.stream(RIGHT);
            left.outerJoin(right, JOINER, STREAM_JOIN_WINDOWS, STREAM_JOINED).to(OUT);
        });

        twoInputs("table_table_inner", b -> {
            KTable<String, String> left = b.table(LEFT);
            KTable<String, String> right = b.table(RIGHT);
            left.join(right, JOINER).toStream().to(OUT);
        });
        twoInputs("table_table_left", b -> {
            KTable<String, String> left = b.table(LEFT);
            KTable<String, String> right = b.table(RIGHT);
            left.leftJoin(right, JOINER).toStream().to(OUT);
        });
        twoInputs("table_table_outer", b -> {
            KTable<String, String> left = b.table(LEFT);
            KTable<String, String> right = b.table(RIGHT);
            left.outerJoin(right, JOINER).toStream().to(OUT);
        });

        twoInputs("table_fk_join", b -> {
            KTable<String, String> left = b.table(LEFT);
            KTable<String, String> right = b.table(RIGHT);
            left.join(right, v -> foreignKey(v), JOINER).toStream().to(OUT);
        });

        oneInput("table_group_reduce", b -> b.<String, String>table(IN)
            .groupBy((k, v) -> KeyValue.pair(v.split(":")[0], v.split(":")[1]))
            .reduce(
                (agg, v) -> Long.toString(Long.parseLong(agg) + Long.parseLong(v)),
                (agg, v) -> Long.toString(Long.parseLong(agg) - Long.parseLong(v)))
            .toStream()
            .to(OUT));

        oneInput("table_group_aggregate", b -> b.<String, String>table(IN)
            .groupBy((k, v) -> KeyValue.pair(v.split(":")[0], v.split(":")[1]))
            .aggregate(
                () -> "0",
                (k, v, agg) -> Long.toString(Long.parseLong(agg) + Long.parseLong(v)),
                (k, v, agg) -> Long.toString(Long.parseLong(agg) - Long.parseLong(v)))
            .toStream()
            .to(OUT));
    }

    static Spec get(String name) {
        Spec spec = ALL.get(name);
        if (spec == null) {
            throw new IllegalArgumentException("unknown topology \"" + name + "\"; known: " + ALL.keySet());
        }
        return spec;
    }
}
