package streamlib.peers;

import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.streams.Topology;

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
        StreamsRunner.run(topology, args);
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
