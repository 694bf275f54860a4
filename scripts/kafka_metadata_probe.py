#!/usr/bin/env python3
"""Exit 0 when a Kafka broker answers a Metadata request listing at least N live brokers.

Usage: kafka_metadata_probe.py HOST PORT [MIN_BROKERS]

Speaks the Kafka wire protocol directly (Metadata v4, request header v1) so that readiness
can be checked without starting a JVM or needing a client library.
"""
import socket
import struct
import sys


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def metadata_broker_count(host, port):
    client_id = b"streamlib-probe"
    header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id
    body = struct.pack(">i?", 0, False)  # empty topic list, no auto-create
    request = header + body
    with socket.create_connection((host, port), timeout=3) as sock:
        sock.settimeout(3)
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", read_exact(sock, 4))[0]
        payload = read_exact(sock, size)
    correlation_id, _throttle, brokers = struct.unpack(">iii", payload[:12])
    if correlation_id != 1:
        raise ValueError("unexpected correlation id")
    return brokers


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    want = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    try:
        count = metadata_broker_count(host, port)
    except (OSError, ValueError, struct.error) as err:
        print(f"not ready: {err}", file=sys.stderr)
        return 1
    if count < want:
        print(f"not ready: {count} of {want} brokers registered", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
