-- model:      gold/daily_metrics
-- grain:      one row per (coin_id, vs_currency, UTC date) with at least one Silver price
-- sources:    silver_prices (silver/prices)
-- parameters: $start, $end                 timestamps: the whole days rebuilt, [start, end)
--             $start_date, $end_date       dates of those days, [start, end)
--             $read_start, $read_start_date  $start minus the 30-day look-back: the previous
--                                          close and the 7/30-day windows reach that far back
-- formulas (docs/LAKE_METRICS.md):
--   close             price of the day's last poll (by ts_event)
--   simple_return     close / previous calendar day's close - 1; null when that day has no close
--   log_return        ln(close / previous calendar day's close); null likewise
--   intraday_points   Silver rows of the day
--   realized_vol      sqrt(sum of squared intraday log returns between consecutive polls of the
--                     day); null with fewer than 2 points
--   realized_vol_annualized  realized_vol * sqrt(365) (the market trades every day)
--   vol_7d, vol_30d   sample standard deviation of the daily log returns of the 7 / 30 calendar
--                     days ending on the date (nulls skipped); null with fewer than 2 returns
--   max_drawdown_30d  largest fall from a close to a later close within the 30 calendar days
--                     ending on the date: max(1 - close_t / close_s), s <= t; 0 when none fell
-- determinism: floating-point sums depend on the order of their inputs, so every sum runs as a
--   window over rows sorted by time (ts_event, day) instead of a GROUP BY fed in whatever order
--   the partitions deliver: re-running a day gives bit-identical values (ADR-038).
WITH points AS (
    SELECT coin_id, vs_currency, ts_event, price,
           CAST(CAST(ts_event AS DATE) AS INT) AS day
    FROM silver_prices
    WHERE ts_event >= $read_start AND ts_event < $end
      AND event_date >= $read_start_date AND event_date < $end_date
),
intraday AS (
    SELECT coin_id, vs_currency, day, ts_event, price,
           ln(price / lag(price) OVER (PARTITION BY coin_id, vs_currency, day ORDER BY ts_event))
               AS intraday_log_return
    FROM points
),
intraday_sums AS (
    SELECT coin_id, vs_currency, day, ts_event, price,
           sum(intraday_log_return * intraday_log_return) OVER (
               PARTITION BY coin_id, vs_currency, day ORDER BY ts_event
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS squared_returns
    FROM intraday
),
daily AS (
    SELECT coin_id, vs_currency, day,
           last_value(price ORDER BY ts_event) AS close,
           count(*) AS intraday_points,
           sqrt(max(squared_returns)) AS realized_vol
    FROM intraday_sums
    GROUP BY coin_id, vs_currency, day
),
returns AS (
    SELECT d.coin_id, d.vs_currency, d.day, d.close, d.intraday_points, d.realized_vol,
           d.close / previous.close - 1 AS simple_return,
           ln(d.close / previous.close) AS log_return
    FROM daily AS d
    LEFT JOIN daily AS previous
      ON previous.coin_id = d.coin_id AND previous.vs_currency = d.vs_currency
     AND previous.day = d.day - 1
),
targets AS (
    SELECT * FROM returns
    WHERE day >= CAST($start_date AS INT) AND day < CAST($end_date AS INT)
),
window_returns AS (
    SELECT t.coin_id, t.vs_currency, t.day, w.day AS w_day,
           CASE WHEN w.day > t.day - 7 THEN w.log_return END AS return_7d,
           w.log_return AS return_30d
    FROM targets AS t
    JOIN returns AS w
      ON w.coin_id = t.coin_id AND w.vs_currency = t.vs_currency
     AND w.day > t.day - 30 AND w.day <= t.day
),
rolling AS (
    SELECT DISTINCT coin_id, vs_currency, day,
           CASE WHEN count(return_7d) OVER by_day >= 2
                THEN stddev_samp(return_7d) OVER by_day END AS vol_7d,
           CASE WHEN count(return_30d) OVER by_day >= 2
                THEN stddev_samp(return_30d) OVER by_day END AS vol_30d
    FROM window_returns
    WINDOW by_day AS (PARTITION BY coin_id, vs_currency, day ORDER BY w_day
                      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
drawdown AS (
    SELECT t.coin_id, t.vs_currency, t.day,
           max(1 - later.close / earlier.close) AS max_drawdown_30d
    FROM targets AS t
    JOIN returns AS earlier
      ON earlier.coin_id = t.coin_id AND earlier.vs_currency = t.vs_currency
     AND earlier.day > t.day - 30 AND earlier.day <= t.day
    JOIN returns AS later
      ON later.coin_id = t.coin_id AND later.vs_currency = t.vs_currency
     AND later.day >= earlier.day AND later.day <= t.day
    GROUP BY t.coin_id, t.vs_currency, t.day
)
SELECT t.coin_id, t.vs_currency,
       CAST(t.day AS DATE) AS date,
       t.close, t.simple_return, t.log_return, t.intraday_points,
       t.realized_vol, t.realized_vol * sqrt(365.0) AS realized_vol_annualized,
       r.vol_7d, r.vol_30d, d.max_drawdown_30d
FROM targets AS t
JOIN rolling AS r ON r.coin_id = t.coin_id AND r.vs_currency = t.vs_currency AND r.day = t.day
JOIN drawdown AS d ON d.coin_id = t.coin_id AND d.vs_currency = t.vs_currency AND d.day = t.day
