-- model:      gold/candles_1h
-- grain:      one row per (coin_id, vs_currency, UTC hour) with at least one Silver price
-- sources:    silver_prices (silver/prices)
-- parameters: $start, $end             timestamps: the whole hours rebuilt, [start, end)
--             $start_date, $end_date   dates: the event_date partitions they lie in, [start, end)
-- columns:    open/close = price of the first/last poll of the hour (by ts_event); high/low =
--             max/min price; polls = Silver rows (deduplicated polls); market_cap_close and
--             volume_24h_close = market_cap and total_volume of the last poll (null when it had none)
SELECT
    coin_id,
    vs_currency,
    bucket_start,
    first_value(price ORDER BY ts_event) AS open,
    max(price) AS high,
    min(price) AS low,
    last_value(price ORDER BY ts_event) AS close,
    count(*) AS polls,
    last_value(market_cap ORDER BY ts_event) AS market_cap_close,
    last_value(total_volume ORDER BY ts_event) AS volume_24h_close,
    CAST(bucket_start AS DATE) AS bucket_date
FROM (
    SELECT coin_id, vs_currency, price, ts_event, market_cap, total_volume,
           date_trunc('hour', ts_event) AS bucket_start
    FROM silver_prices
    WHERE ts_event >= $start AND ts_event < $end
      AND event_date >= $start_date AND event_date < $end_date
) AS polls
GROUP BY coin_id, vs_currency, bucket_start
