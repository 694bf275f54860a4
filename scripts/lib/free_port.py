"""Prints a free TCP port on 127.0.0.1, or the first of a block of free ones.

    python3 scripts/lib/free_port.py                 one free port
    python3 scripts/lib/free_port.py --count 3 --also-offset 100
        a base port P such that P..P+2 and P+100..P+102 are all free (Kafka: broker and
        controller listeners of three nodes)

A port is free when this process can bind it; the caller binds it moments later, so a race with
another process is possible but unlikely (the kernel hands out ephemeral ports from a different
range than the one searched here).
"""
import argparse
import random
import socket
import sys


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--also-offset", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 30000)
        ports = list(range(base, base + args.count))
        if args.also_offset is not None:
            ports += [p + args.also_offset for p in ports]
        if all(is_free(p) for p in ports):
            print(base)
            return 0
    print("free_port: no free block of ports found", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
