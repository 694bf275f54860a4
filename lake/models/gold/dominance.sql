-- model:      gold/dominance
-- grain:      one row per (UTC date, coin_id, vs_currency) for coins with a market cap that day
-- sources:    silver_prices (silver/prices)
-- parameters: $start, $end             timestamps: the whole days rebuilt, [start, end)
--             $start_date, $end_date   dates of those days, [start, end)
-- formulas:   market_cap        the coin's last non-null market_cap of the day (by ts_event)
--             total_market_cap  sum of those over the coins of the day (same vs_currency)
--             share             market_cap / total_market_cap; null when the total is 0
-- determinism: the total adds the caps in coin_id order, so a re-run is bit-identical (ADR-038)
SELECT date, coin_id, vs_currency, market_cap,
       sum(market_cap) OVER coins_of_day AS total_market_cap,
       market_cap / nullif(sum(market_cap) OVER coins_of_day, 0) AS share
FROM (
    SELECT coin_id, vs_currency, date,
           last_value(market_cap ORDER BY ts_event) AS market_cap
    FROM (
        SELECT coin_id, vs_currency, ts_event, market_cap, CAST(ts_event AS DATE) AS date
        FROM silver_prices
        WHERE market_cap IS NOT NULL
          AND ts_event >= $start AND ts_event < $end
          AND event_date >= $start_date AND event_date < $end_date
    ) AS snapshots
    GROUP BY coin_id, vs_currency, date
) AS last_snapshots
WINDOW coins_of_day AS (PARTITION BY date, vs_currency ORDER BY coin_id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
