"""A generated /coins/markets recording (one JSON array per line, as `producer --record-to` writes
them) of two whole UTC days, for the BI tests: enough for every Gold fact to have rows.

- Three coins, a poll every 5 minutes from 2026-11-01T00:00Z, seeded random walks (|move| ≤ 0.2 %
  per poll), so hourly and daily candles, returns and volatility are all defined on day 2.
- bitcoin misses polls 300..305 (2026-11-02T01:00Z..01:25Z): that hour has 6 of 12 polls, so
  fact_data_quality shows an incomplete hour and `warehouse check` records a completeness failure.
- solana crashes 12 % at poll 480 (2026-11-02T16:00Z) and stays there: price_move and zscore alerts.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

from platform_under_test import market_item

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAYS = 2
POLLS = DAYS * 288
COINS = [("bitcoin", "btc", 90000.0, 3.0e10), ("ethereum", "eth", 3000.0, 1.5e10), ("solana", "sol", 150.0, 4.0e9)]
GAP = ("bitcoin", range(300, 306))
GAP_HOUR = START + timedelta(minutes=5 * 300)
CRASH = ("solana", 480, 0.88)


def end() -> datetime:
    """The end (exclusive) of the recording's whole days."""
    return START + timedelta(days=DAYS)


def lines(seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    prices = {coin: base for coin, _, base, _ in COINS}
    out = []
    for poll in range(POLLS):
        at = START + timedelta(minutes=5 * poll, seconds=20)
        items = []
        for rank, (coin_id, symbol, _, volume) in enumerate(COINS, 1):
            if poll > 0:
                prices[coin_id] *= 1 + rng.uniform(-0.002, 0.002)
            if (coin_id, poll) == CRASH[:2]:
                prices[coin_id] *= CRASH[2]
            if coin_id == GAP[0] and poll in GAP[1]:
                continue
            price = round(prices[coin_id], 6)
            items.append(market_item(coin_id, symbol, rank, price, round(price * 1e7 * (4 - rank), 2), volume, at))
        out.append(json.dumps(items))
    return out
