-- model:      gold/data_quality
-- grain:      one row per (coin_id, vs_currency, UTC hour) in the interval, from the hour of the
--             pair's first Silver row on (a coin listed mid-period starts then); an hour without
--             polls is a row with polls_received = 0, which is the point
-- sources:    silver_prices, silver_quarantine, silver_dead_letters, interval_hours (the hours
--             rebuilt and polls_expected, a typed table the job registers from its arguments)
-- parameters: $start, $end                 timestamps: the whole hours rebuilt, [start, end)
--             $start_date, $end_date       their event_date partitions, [start, end)
-- columns (docs/LAKE_METRICS.md, docs/KPI_SLO_SLA.md):
--   polls_expected         3600 / poll interval (default 300 s: 12)
--   polls_received         Silver rows of the hour
--   duplicates_removed     quarantine rows of the hour with rule 'duplicate' (= valid Bronze
--                          rows - Silver rows)
--   dead_letters           silver/dead_letters rows of the coin placed in the hour
--   quarantined            other quarantine rows of the coin from bronze/prices_raw in the hour
--   max_staleness_seconds  max(ts_ingest - ts_event) over the hour's Silver rows: how old the
--                          newest price was when polled (the freshness SLO allows 600 s); null
--                          when the hour has no poll
WITH pairs AS (
    SELECT coin_id, vs_currency, date_trunc('hour', min(ts_event)) AS first_hour
    FROM silver_prices
    WHERE ts_event < $end AND event_date < $end_date
    GROUP BY coin_id, vs_currency
),
received AS (
    SELECT coin_id, vs_currency, date_trunc('hour', ts_event) AS hour_start,
           count(*) AS polls_received,
           max(CAST(ts_ingest AS BIGINT) - CAST(ts_event AS BIGINT)) AS max_staleness_micros
    FROM silver_prices
    WHERE ts_event >= $start AND ts_event < $end
      AND event_date >= $start_date AND event_date < $end_date
    GROUP BY coin_id, vs_currency, date_trunc('hour', ts_event)
),
quarantined AS (
    SELECT coin_id, date_trunc('hour', event_time) AS hour_start,
           count(*) FILTER (WHERE rule = 'duplicate') AS duplicates_removed,
           count(*) FILTER (WHERE rule <> 'duplicate') AS quarantined
    FROM silver_quarantine
    WHERE source_table = 'bronze/prices_raw' AND coin_id IS NOT NULL
      AND event_time >= $start AND event_time < $end
      AND event_date >= $start_date AND event_date < $end_date
    GROUP BY coin_id, date_trunc('hour', event_time)
),
dead AS (
    SELECT coin_id, date_trunc('hour', event_time) AS hour_start, count(*) AS dead_letters
    FROM silver_dead_letters
    WHERE coin_id IS NOT NULL
      AND event_time >= $start AND event_time < $end
      AND event_date >= $start_date AND event_date < $end_date
    GROUP BY coin_id, date_trunc('hour', event_time)
)
SELECT p.coin_id, p.vs_currency, h.hour_start, h.polls_expected,
       coalesce(r.polls_received, 0) AS polls_received,
       coalesce(q.duplicates_removed, 0) AS duplicates_removed,
       coalesce(d.dead_letters, 0) AS dead_letters,
       coalesce(q.quarantined, 0) AS quarantined,
       r.max_staleness_micros / 1000000.0 AS max_staleness_seconds,
       CAST(h.hour_start AS DATE) AS hour_date
FROM pairs AS p
JOIN interval_hours AS h ON h.hour_start >= p.first_hour
LEFT JOIN received AS r
  ON r.coin_id = p.coin_id AND r.vs_currency = p.vs_currency AND r.hour_start = h.hour_start
LEFT JOIN quarantined AS q ON q.coin_id = p.coin_id AND q.hour_start = h.hour_start
LEFT JOIN dead AS d ON d.coin_id = p.coin_id AND d.hour_start = h.hour_start
