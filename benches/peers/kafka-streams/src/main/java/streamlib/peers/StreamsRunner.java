package streamlib.peers;

import java.io.IOException;
import java.time.Duration;
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
 * Runs a topology the way every benchmark application does (benches/PEERS.md, benches/NEXMARK.md):
 * {@code --threads} stream threads (default 1), no record cache, {@code auto.offset.reset=earliest},
 * the commit interval {@code --commit-ms}, the guarantee {@code --guarantee alos|eos} and
 * {@code max.task.idle.ms} {@code --task-idle-ms} (default 0), until its standard input closes; then
 * it closes the application and exits 0, or 1 if a stream thread failed.
 */
final class StreamsRunner {
    private StreamsRunner() {}

    /**
     * Reads {@code --app-id --bootstrap --state-dir --commit-ms --guarantee [--threads] [--task-idle-ms]};
     * never returns.
     */
    static void run(Topology topology, Map<String, String> args) throws InterruptedException {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, PeerApp.required(args, "app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, PeerApp.required(args, "bootstrap"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, PeerApp.required(args, "state-dir"));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(args.getOrDefault("threads", "1")));
        // Emit every update (no record cache), like the other peers.
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(PeerApp.required(args, "commit-ms")));
        props.put(StreamsConfig.MAX_TASK_IDLE_MS_CONFIG, Long.parseLong(args.getOrDefault("task-idle-ms", "0")));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, switch (PeerApp.required(args, "guarantee")) {
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
}
