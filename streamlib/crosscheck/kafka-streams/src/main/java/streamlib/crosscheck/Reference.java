package streamlib.crosscheck;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.test.TestRecord;

/**
 * The Kafka Streams reference runner of the cross-check (streamlib/crosscheck/README.md): pipes the
 * inputs of a case, in order, through Kafka Streams' own {@link TopologyTestDriver} running one of
 * the named topologies of {@link Topologies}, and prints every record the topology wrote to its
 * output topics as one JSON document.
 *
 * <pre>
 * java -cp target/classes:target/lib/* streamlib.crosscheck.Reference case CASE.json
 * java -cp target/classes:target/lib/* streamlib.crosscheck.Reference all CASES_DIR OUT_DIR
 * </pre>
 *
 * {@code all} runs every {@code *.json} of CASES_DIR (in name order) in this one JVM and writes
 * OUT_DIR/&lt;case&gt;.out.json for each.
 */
public final class Reference {
    private Reference() {}

    private static final ObjectMapper JSON = new ObjectMapper();

    /** The driver's mocked wall-clock start; nothing here depends on it (no wall-clock punctuation). */
    static final Instant START = Instant.parse("2024-01-01T00:00:00Z");

    public static void main(String[] argv) throws Exception {
        if (argv.length == 2 && argv[0].equals("case")) {
            printUtf8(runCase(Path.of(argv[1])));
        } else if (argv.length == 3 && argv[0].equals("all")) {
            runAll(Path.of(argv[1]), Path.of(argv[2]));
        } else if (argv.length == 2 && argv[0].equals("trace")) {
            printUtf8(traceCase(Path.of(argv[1])));
        } else {
            System.err.println("usage: Reference case CASE.json | Reference all CASES_DIR OUT_DIR"
                + " | Reference trace CASE.json");
            System.exit(2);
        }
    }

    /** The document in UTF-8 whatever the locale, as {@code all} writes its files. */
    private static void printUtf8(String text) throws IOException {
        System.out.write(text.getBytes(StandardCharsets.UTF_8));
        System.out.flush();
    }

    static void runAll(Path casesDir, Path outDir) throws IOException {
        Files.createDirectories(outDir);
        List<Path> cases;
        try (Stream<Path> files = Files.list(casesDir)) {
            cases = files.filter(p -> p.getFileName().toString().endsWith(".json"))
                .sorted(Comparator.comparing(p -> p.getFileName().toString()))
                .toList();
        }
        if (cases.isEmpty()) {
            throw new IllegalArgumentException("no *.json case in " + casesDir);
        }
        for (Path file : cases) {
            String name = file.getFileName().toString();
            name = name.substring(0, name.length() - ".json".length());
            String out;
            try {
                out = runCase(file);
            } catch (RuntimeException e) {
                throw new IllegalStateException("case " + name + " failed: " + e, e);
            }
            Files.writeString(outDir.resolve(name + ".out.json"), out, StandardCharsets.UTF_8);
        }
        System.err.println("ran " + cases.size() + " cases into " + outDir);
    }

    /** One input record of a case. */
    record Input(String topic, String key, String value, long ts) {}

    static String runCase(Path file) throws IOException {
        JsonNode root = JSON.readTree(file.toFile());
        JsonNode topologyNode = root.get("topology");
        if (topologyNode == null || !topologyNode.isTextual()) {
            throw new IllegalArgumentException(file + ": \"topology\" must be a string");
        }
        Topologies.Spec spec = Topologies.get(topologyNode.asText());
        List<Input> inputs = parseInputs(file, root.get("inputs"), spec);
        Map<String, List<TestRecord<String, String>>> outputs = run(spec, inputs);
        return render(spec, outputs);
    }

    /**
     * A debugging view, not the output document: each input in order, each followed by the output
     * records that piping it produced (the driver processes one input at a time to completion).
     */
    static String traceCase(Path file) throws IOException {
        JsonNode root = JSON.readTree(file.toFile());
        Topologies.Spec spec = Topologies.get(root.path("topology").asText());
        List<Input> inputs = parseInputs(file, root.get("inputs"), spec);
        StringBuilder sb = new StringBuilder();
        run(spec, inputs, (i, caused) -> {
            Input in = inputs.get(i);
            sb.append(String.format("#%-3d %-5s %s = %s @%d%n", i, in.topic(), quote(in.key()), quote(in.value()), in.ts()));
            for (Map.Entry<String, List<TestRecord<String, String>>> topic : caused.entrySet()) {
                for (TestRecord<String, String> r : topic.getValue()) {
                    sb.append(String.format("       -> %s %s = %s @%d%n", topic.getKey(), quote(r.key()), quote(r.value()), r.timestamp()));
                }
            }
        });
        return sb.toString();
    }

    /** Told, after each input, the output records that input caused, by output topic. */
    interface Tracer {
        void after(int input, Map<String, List<TestRecord<String, String>>> caused);
    }

    static List<Input> parseInputs(Path file, JsonNode node, Topologies.Spec spec) {
        if (node == null || !node.isArray()) {
            throw new IllegalArgumentException(file + ": \"inputs\" must be an array");
        }
        List<Input> inputs = new ArrayList<>();
        int i = 0;
        for (JsonNode in : node) {
            String where = file + ": inputs[" + i++ + "]";
            JsonNode topic = in.get("topic");
            if (topic == null || !topic.isTextual() || !spec.inputs().contains(topic.asText())) {
                throw new IllegalArgumentException(where + ": \"topic\" must be one of " + spec.inputs());
            }
            JsonNode ts = in.get("ts");
            if (ts == null || !ts.canConvertToExactIntegral() || ts.asLong() < 0) {
                throw new IllegalArgumentException(where + ": \"ts\" must be a non-negative integer (ms)");
            }
            inputs.add(new Input(topic.asText(), text(where, in, "key"), text(where, in, "value"), ts.asLong()));
        }
        return inputs;
    }

    /** A string field; absent or JSON null is null. */
    private static String text(String where, JsonNode record, String field) {
        JsonNode node = record.get(field);
        if (node == null || node.isNull()) {
            return null;
        }
        if (!node.isTextual()) {
            throw new IllegalArgumentException(where + ": \"" + field + "\" must be a string or null");
        }
        return node.asText();
    }

    static Properties driverConfig(Path stateDir) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "crosscheck");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        // Emit every update: no record cache in front of the stores.
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        // Left/outer stream-stream joins emit their non-joined results when stream time closes
        // the window, throttled by default to one sweep per second of wall-clock time. The
        // driver's wall clock is mocked; with 0 the sweep depends on stream time alone, never on
        // how fast the driver runs. (On the cases here the default gave the same outputs.)
        props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX, 0L);
        // Emit-final windowed aggregations are throttled the same way (one emission per second of
        // wall-clock time, so with the mocked clock only the first would ever run); 0 emits
        // whenever stream time closes windows.
        props.put(StreamsConfig.InternalConfig.EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION, 0L);
        return props;
    }

    static Map<String, List<TestRecord<String, String>>> run(Topologies.Spec spec, List<Input> inputs)
            throws IOException {
        return run(spec, inputs, null);
    }

    static Map<String, List<TestRecord<String, String>>> run(Topologies.Spec spec, List<Input> inputs, Tracer tracer)
            throws IOException {
        Path stateDir = Files.createTempDirectory(stateRoot(), "crosscheck-state-");
        try {
            Map<String, List<TestRecord<String, String>>> outputs = new LinkedHashMap<>();
            try (TopologyTestDriver driver = new TopologyTestDriver(spec.build(), driverConfig(stateDir), START)) {
                Map<String, TestInputTopic<String, String>> in = new LinkedHashMap<>();
                for (String topic : spec.inputs()) {
                    in.put(topic, driver.createInputTopic(topic, new StringSerializer(), new StringSerializer()));
                }
                Map<String, TestOutputTopic<String, String>> out = new LinkedHashMap<>();
                for (String topic : spec.outputs()) {
                    out.put(topic, driver.createOutputTopic(topic, new StringDeserializer(), new StringDeserializer()));
                }
                for (String topic : spec.outputs()) {
                    outputs.put(topic, new ArrayList<>());
                }
                for (int i = 0; i < inputs.size(); i++) {
                    Input input = inputs.get(i);
                    in.get(input.topic()).pipeInput(input.key(), input.value(), input.ts());
                    if (tracer != null) {
                        Map<String, List<TestRecord<String, String>>> caused = new LinkedHashMap<>();
                        for (Map.Entry<String, TestOutputTopic<String, String>> topic : out.entrySet()) {
                            List<TestRecord<String, String>> records = topic.getValue().readRecordsToList();
                            caused.put(topic.getKey(), records);
                            outputs.get(topic.getKey()).addAll(records);
                        }
                        tracer.after(i, caused);
                    }
                }
                for (Map.Entry<String, TestOutputTopic<String, String>> topic : out.entrySet()) {
                    outputs.get(topic.getKey()).addAll(topic.getValue().readRecordsToList());
                }
            }
            return outputs;
        } finally {
            deleteTree(stateDir);
        }
    }

    /**
     * Where the drivers' state directories go: system property {@code crosscheck.state.root}
     * (the run script points it at a tmpfs: RocksDB syncs its files on close, which on a disk
     * costs more than the whole case), else the JVM's temporary directory.
     */
    static Path stateRoot() throws IOException {
        String root = System.getProperty("crosscheck.state.root");
        Path dir = Path.of(root != null && !root.isEmpty() ? root : System.getProperty("java.io.tmpdir"));
        Files.createDirectories(dir);
        return dir;
    }

    /**
     * The output document: stable layout, one record per line, so that the expected files diff well.
     */
    static String render(Topologies.Spec spec, Map<String, List<TestRecord<String, String>>> outputs) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"outputs\": {");
        boolean firstTopic = true;
        for (String topic : spec.outputs()) {
            sb.append(firstTopic ? "\n  " : ",\n  ");
            firstTopic = false;
            sb.append(quote(topic)).append(": [");
            List<TestRecord<String, String>> records = outputs.get(topic);
            for (int i = 0; i < records.size(); i++) {
                TestRecord<String, String> r = records.get(i);
                sb.append(i == 0 ? "\n    " : ",\n    ");
                sb.append("{\"key\": ").append(quote(r.key()))
                    .append(", \"value\": ").append(quote(r.value()))
                    .append(", \"ts\": ").append(r.timestamp())
                    .append('}');
            }
            sb.append(records.isEmpty() ? "]" : "\n  ]");
        }
        sb.append("\n}}\n");
        return sb.toString();
    }

    private static String quote(String s) {
        if (s == null) {
            return "null";
        }
        try {
            return JSON.writeValueAsString(s);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
