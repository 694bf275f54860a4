"""Writes markets_replay.jsonl: a recording of /coins/markets responses (one JSON array per
line, as `producer --record-to` writes them) used by apps/tests/pipeline_e2e.rs.

Three coins, 60 polls 5 minutes apart starting 2025-07-25T12:00:00Z, calm random walks
(|move| <= 0.05 % per poll), and three planted events:
- poll 20 appears twice (an unchanged re-poll: 3 duplicates for dedup);
- poll 30 has ethereum's current_price null (the validator dead-letters it);
- solana crashes 12 % at poll 45 and stays there (price_move and zscore alerts).
The test shifts every timestamp so the recording ends near "now".

Run: python3 make_replay.py > markets_replay.jsonl
"""
import json
import random
from datetime import datetime, timedelta, timezone

random.seed(7)
START = datetime(2025, 7, 25, 12, 0, tzinfo=timezone.utc)
COINS = [("bitcoin", "btc", 117000.0, 3.0e10), ("ethereum", "eth", 3700.0, 1.5e10),
         ("solana", "sol", 180.0, 4.0e9)]
prices = {c[0]: c[2] for c in COINS}
for poll in range(60):
    at = START + timedelta(minutes=5 * poll)
    items = []
    for rank, (coin_id, symbol, _, volume) in enumerate(COINS, 1):
        if poll > 0:
            prices[coin_id] *= 1 + random.uniform(-0.0005, 0.0005)
        if coin_id == "solana" and poll == 45:
            prices[coin_id] *= 0.88
        price = round(prices[coin_id], 6)
        updated = at - timedelta(seconds=random.randint(5, 50))
        items.append({
            "id": coin_id, "symbol": symbol, "name": coin_id.title(), "image": "https://example.invalid/x.png",
            "current_price": None if (coin_id == "ethereum" and poll == 30) else price,
            "market_cap": round(price * 1e7, 2), "market_cap_rank": rank,
            "fully_diluted_valuation": None, "total_volume": volume * (1 + random.uniform(-0.01, 0.01)),
            "high_24h": price * 1.01, "low_24h": price * 0.99, "price_change_24h": 0.5,
            "price_change_percentage_24h": 0.3, "market_cap_change_24h": 1000.0,
            "market_cap_change_percentage_24h": 0.3, "circulating_supply": 1.0e7, "total_supply": None,
            "max_supply": None, "ath": price * 2, "ath_change_percentage": -50.0,
            "ath_date": "2021-11-10T14:24:11.849Z", "atl": 1.0, "atl_change_percentage": 1000.0,
            "atl_date": "2015-10-20T00:00:00.000Z", "roi": None,
            "last_updated": updated.strftime("%Y-%m-%dT%H:%M:%S.") + f"{updated.microsecond // 1000:03d}Z",
            "price_change_percentage_1h_in_currency": 0.1,
        })
    print(json.dumps(items))
    if poll == 20:
        print(json.dumps(items))
