package streamlib.peers;

import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * The Kafka Streams peer of the side-by-side benchmark (benches/PEERS.md): runs one workload on
 * {@code --threads} stream threads (default 1) until its standard input closes, then closes the
 * application cleanly.
 *
 * <pre>
 * java -cp target/classes:target/lib/* streamlib.peers.PeerApp --workload hopping \
 *   --guarantee eos --bootstrap 127.0.0.1:9092 --input in --output out --app-id app \
 *   --state-dir /tmp/app --commit-ms 100
 * </pre>
 */
public final class PeerApp {
    private PeerApp() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = parse(argv);
        String workload = required(args, "workload");
        Topology topology = Workloads.build(workload, required(args, "input"), required(args, "output"));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, required(args, "app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, required(args, "bootstrap"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, required(args, "state-dir"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args.getOrDefault("threads", "1")));
        // Emit every update (no record cache), like the other peers.
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(required(args, "commit-ms")));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, switch (required(args, "guarantee")) {
            case "alos" -> StreamsConfig.AT_LEAST_ONCE;
            case "eos" -> StreamsConfig.EXACTLY_ONCE_V2;
            default -> throw new IllegalArgumentException("--guarantee must be alos or eos");
        });
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        KafkaStreams streams = new KafkaStreams(topology, props);
        CountDownLatch stop = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean(false);
        streams.setUncaughtExceptionHandler(error -> {
            error.printStackTrace();
            failed.set(true);
            stop.countDown();
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR) {
                failed.set(true);
                stop.countDown();
            }
        });
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // The harness never writes; end of input is the stop signal.
                }
            } catch (IOException ignored) {
                // A broken pipe means the harness is gone: stop as well.
            }
            stop.countDown();
        }, "stdin-watch");
        stdin.setDaemon(true);
        streams.start();
        stdin.start();
        stop.await();
        streams.close(Duration.ofSeconds(60));
        System.exit(failed.get() ? 1 : 0);
    }

    /** {@code --name value} pairs. */
    static Map<String, String> parse(String[] argv) {
        Map<String, String> args = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (!argv[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --name value, got " + argv[i]);
            }
            args.put(argv[i].substring(2), argv[i + 1]);
        }
        return args;
    }

    static String required(Map<String, String> args, String name) {
        String value = args.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return value;
    }
}
