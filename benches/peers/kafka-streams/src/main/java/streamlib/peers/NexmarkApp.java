package streamlib.peers;

import java.util.Map;

/**
 * The Kafka Streams application of the Nexmark benchmark (benches/NEXMARK.md): runs one query
 * ({@code --query} q0, q1, q2, q3, q4, q5, q7 or q8, see {@link NexmarkQueries}) over the topics
 * {@code --person}, {@code --auction} and {@code --bid} into {@code --output}, on one stream thread,
 * until its standard input closes, then closes the application cleanly. Every topic name is
 * required, also those the query does not read.
 *
 * <pre>
 * java -cp target/classes:target/lib/* streamlib.peers.NexmarkApp --query q3 --guarantee eos \
 *   --bootstrap 127.0.0.1:9092 --person nexmark-person --auction nexmark-auction --bid nexmark-bid \
 *   --output out --app-id app --state-dir /tmp/app --commit-ms 100 [--task-idle-ms 500]
 * </pre>
 */
public final class NexmarkApp {
    private NexmarkApp() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = PeerApp.parse(argv);
        StreamsRunner.run(NexmarkQueries.build(PeerApp.required(args, "query"), PeerApp.required(args, "person"),
                PeerApp.required(args, "auction"), PeerApp.required(args, "bid"), PeerApp.required(args, "output")),
                args);
    }
}
