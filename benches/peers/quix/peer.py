"""The Quix Streams peer of the side-by-side benchmark (benches/PEERS.md).

Runs one workload with one processing thread until standard input closes, then stops the
application cleanly (final commit included):

    python peer.py --workload hopping --guarantee eos --bootstrap 127.0.0.1:9092 \
        --input in --output out --app-id app --state-dir /tmp/app --commit-ms 100
"""

import argparse
import math
import sys
import threading
from datetime import timedelta

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Max, Min, Sum

WINDOW = timedelta(hours=1)
HOP = timedelta(minutes=5)
DEDUP_TTL = timedelta(days=7)


def valid_price(event):
    """The price is a finite number above zero (JSON null and non-numbers are not)."""
    price = event.get("price")
    return (
        isinstance(price, (int, float))
        and not isinstance(price, bool)
        and math.isfinite(price)
        and price > 0
    )


def stateless(sdf):
    """filter(valid price) -> map to {coin_id, price, ts_event, sent_ms}."""
    sdf = sdf.filter(valid_price)
    return sdf.apply(
        lambda e: {
            "coin_id": e.get("coin_id"),
            "price": e.get("price"),
            "ts_event": e.get("ts_event"),
            "sent_ms": e.get("sent_ms"),
        }
    )


def hopping(sdf):
    """filter -> hopping 1 h / 5 min windows per key -> count, sum, min, max; every update out."""
    sdf = sdf.filter(valid_price)
    sdf = (
        sdf.hopping_window(duration_ms=WINDOW, step_ms=HOP, grace_ms=0, name="hop-stats")
        .agg(
            count=Count(),
            sum=Sum("price"),
            min=Min("price"),
            max=Max("price"),
            sent_ms=Max("sent_ms"),
        )
        .current()
    )
    return sdf.apply(
        lambda w, key, _ts, _headers: {
            "coin_id": key,
            "window_start": w["start"],
            "window_end": w["end"],
            "count": w["count"],
            "sum": w["sum"],
            "min": w["min"],
            "max": w["max"],
            "sent_ms": w["sent_ms"],
        },
        metadata=True,
    )


def first_occurrence(event, state):
    """Keeps the first event of each (key, ts_event); state is scoped to the message key and its
    entries expire 7 days of event time after they were written."""
    ts_event = event.get("ts_event")
    if not isinstance(ts_event, int):
        return False
    if state.get(ts_event) is not None:
        return False
    state.set(ts_event, 1, ttl=DEDUP_TTL)
    return True


def dedup(sdf):
    """Forwards the first event of each (key, ts_event) seen within 7 days of event time."""
    return sdf.filter(first_occurrence, stateful=True)


WORKLOADS = {"stateless": stateless, "hopping": hopping, "dedup": dedup}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("bootstrap", "input", "output", "app-id", "state-dir"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--workload", required=True, choices=sorted(WORKLOADS))
    parser.add_argument("--guarantee", required=True, choices=["alos", "eos"])
    parser.add_argument("--commit-ms", required=True, type=int)
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.app_id,
        auto_offset_reset="earliest",
        commit_interval=args.commit_ms / 1000.0,
        processing_guarantee="exactly-once" if args.guarantee == "eos" else "at-least-once",
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    source = app.topic(args.input, key_deserializer="str", value_deserializer="json")
    sink = app.topic(args.output, key_serializer="str", value_serializer="json")
    sdf = WORKLOADS[args.workload](app.dataframe(source))
    sdf.to_topic(sink)

    def stop_when_stdin_closes():
        # The harness never writes; end of input is the stop signal.
        sys.stdin.buffer.read()
        app.stop()

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    app.run()


if __name__ == "__main__":
    main()
