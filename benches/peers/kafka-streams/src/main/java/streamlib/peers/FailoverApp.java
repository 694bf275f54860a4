package streamlib.peers;

import java.util.Map;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.ThreadMetadata;
import org.apache.kafka.streams.TaskMetadata;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StandbyUpdateListener;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.TaskId;

/**
 * The Kafka Streams instance of the failover benchmark ({@code peers failover}, benches/PEERS.md):
 * an exactly-once count per key into the store {@code counts}, with {@code --standbys} standby
 * replicas, a 6 s session timeout and static membership ({@code --instance}), like the streamlib
 * instance it is compared with. Every 100 ms it prints
 * {@code status partitions=<input partitions of its active tasks> restored=<n> standby=<n>}
 * (records restored into active stores and applied to standby stores so far); it runs until it is
 * killed or its standard input closes.
 */
public final class FailoverApp {
    private FailoverApp() {}

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = PeerApp.parse(argv);
        String input = PeerApp.required(args, "input");
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .groupByKey(Grouped.with(Serdes.String(), Serdes.String()))
                .count(Materialized.as("counts"))
                .toStream()
                .to(PeerApp.required(args, "output"), Produced.with(Serdes.String(), Serdes.Long()));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, PeerApp.required(args, "app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, PeerApp.required(args, "bootstrap"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, PeerApp.required(args, "state-dir"));
        props.put(StreamsConfig.NUM_STANDBY_REPLICAS_CONFIG, Integer.parseInt(PeerApp.required(args, "standbys")));
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100L);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG),
                PeerApp.required(args, "instance"));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        AtomicLong restored = new AtomicLong();
        AtomicLong standby = new AtomicLong();
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition partition, String store, long start, long end) {}

            @Override
            public void onBatchRestored(TopicPartition partition, String store, long batchEnd, long records) {
                restored.addAndGet(records);
            }

            @Override
            public void onRestoreEnd(TopicPartition partition, String store, long total) {}
        });
        streams.setStandbyUpdateListener(new StandbyUpdateListener() {
            @Override
            public void onUpdateStart(TopicPartition partition, String store, long start) {}

            @Override
            public void onBatchLoaded(TopicPartition partition, String store, TaskId task, long batchEnd,
                    long records, long end) {
                standby.addAndGet(records);
            }

            @Override
            public void onUpdateSuspended(TopicPartition partition, String store, long offset, long end,
                    SuspendReason reason) {}
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.ERROR) {
                System.err.println("failover: the application stopped with an error");
                System.exit(3);
            }
        });
        Thread stdin = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // The harness never writes; end of input is the stop signal.
                }
            } catch (java.io.IOException ignored) {
                // A broken pipe means the harness is gone: stop as well.
            }
            System.exit(0);
        }, "stdin-watch");
        stdin.setDaemon(true);
        streams.start();
        stdin.start();
        while (true) {
            TreeSet<Integer> partitions = new TreeSet<>();
            for (ThreadMetadata thread : streams.metadataForLocalThreads()) {
                for (TaskMetadata task : thread.activeTasks()) {
                    for (TopicPartition partition : task.topicPartitions()) {
                        if (partition.topic().equals(input)) {
                            partitions.add(partition.partition());
                        }
                    }
                }
            }
            StringBuilder line = new StringBuilder("status partitions=");
            for (Integer partition : partitions) {
                if (line.charAt(line.length() - 1) != '=') {
                    line.append(',');
                }
                line.append(partition);
            }
            line.append(" restored=").append(restored.get()).append(" standby=").append(standby.get());
            System.out.println(line);
            System.out.flush();
            Thread.sleep(100);
        }
    }
}
