-- The facts of the star schema, each at a stated grain (docs/DATA_MODEL.md). Every fact has a
-- primary key on its grain and foreign keys to dim_coin and dim_date; vs_currency is a degenerate
-- dimension. Loads delete-insert a data interval of each fact in one transaction.

CREATE TABLE fact_price_snapshot (
    coin_key                               integer          NOT NULL REFERENCES dim_coin,
    vs_currency                            text             NOT NULL,
    ts_event                               timestamptz      NOT NULL,
    date_key                               integer          NOT NULL REFERENCES dim_date,
    event_id                               text             NOT NULL,
    schema_version                         text,
    source                                 text,
    price                                  double precision NOT NULL,
    ts_ingest                              timestamptz,
    market_cap                             double precision,
    market_cap_rank                        bigint,
    fully_diluted_valuation                double precision,
    total_volume                           double precision,
    high_24h                               double precision,
    low_24h                                double precision,
    price_change_24h                       double precision,
    price_change_percentage_24h            double precision,
    market_cap_change_24h                  double precision,
    market_cap_change_percentage_24h       double precision,
    circulating_supply                     double precision,
    total_supply                           double precision,
    max_supply                             double precision,
    ath                                    double precision,
    ath_change_percentage                  double precision,
    ath_date                               timestamptz,
    atl                                    double precision,
    atl_change_percentage                  double precision,
    atl_date                               timestamptz,
    roi_times                              double precision,
    roi_currency                           text,
    roi_percentage                         double precision,
    price_change_percentage_1h_in_currency double precision,
    price_change_percentage_24h_in_currency double precision,
    price_change_percentage_7d_in_currency double precision,
    bronze_partition                       integer,
    bronze_offset                          bigint,
    kafka_timestamp                        timestamptz,
    PRIMARY KEY (coin_key, vs_currency, ts_event)
);
COMMENT ON TABLE fact_price_snapshot IS
    'Grain: one row per price event (coin, vs_currency, ts_event), first ingest wins. Source: silver/prices.';
CREATE INDEX fact_price_snapshot_date ON fact_price_snapshot (date_key);
CREATE INDEX fact_price_snapshot_ts ON fact_price_snapshot (ts_event);

CREATE TABLE fact_candle_hour (
    coin_key         integer          NOT NULL REFERENCES dim_coin,
    vs_currency      text             NOT NULL,
    bucket_start     timestamptz      NOT NULL,
    date_key         integer          NOT NULL REFERENCES dim_date,
    open             double precision NOT NULL,
    high             double precision NOT NULL,
    low              double precision NOT NULL,
    close            double precision NOT NULL,
    polls            bigint           NOT NULL,
    market_cap_close double precision,
    volume_24h_close double precision,
    PRIMARY KEY (coin_key, vs_currency, bucket_start)
);
COMMENT ON TABLE fact_candle_hour IS
    'Grain: one row per coin, vs_currency and UTC hour (bucket_start) with at least one poll. Source: gold/candles_1h.';
CREATE INDEX fact_candle_hour_date ON fact_candle_hour (date_key);
CREATE INDEX fact_candle_hour_bucket ON fact_candle_hour (bucket_start);

CREATE TABLE fact_candle_day (
    coin_key         integer          NOT NULL REFERENCES dim_coin,
    vs_currency      text             NOT NULL,
    bucket_start     timestamptz      NOT NULL,
    date_key         integer          NOT NULL REFERENCES dim_date,
    open             double precision NOT NULL,
    high             double precision NOT NULL,
    low              double precision NOT NULL,
    close            double precision NOT NULL,
    polls            bigint           NOT NULL,
    market_cap_close double precision,
    volume_24h_close double precision,
    PRIMARY KEY (coin_key, vs_currency, bucket_start)
);
COMMENT ON TABLE fact_candle_day IS
    'Grain: one row per coin, vs_currency and UTC day (bucket_start = midnight) with at least one poll. Source: gold/candles_1d.';
CREATE INDEX fact_candle_day_date ON fact_candle_day (date_key);
CREATE INDEX fact_candle_day_bucket ON fact_candle_day (bucket_start);

CREATE TABLE fact_daily_metrics (
    coin_key                integer          NOT NULL REFERENCES dim_coin,
    vs_currency             text             NOT NULL,
    date_key                integer          NOT NULL REFERENCES dim_date,
    close                   double precision,
    simple_return           double precision,
    log_return              double precision,
    intraday_points         bigint,
    realized_vol            double precision,
    realized_vol_annualized double precision,
    vol_7d                  double precision,
    vol_30d                 double precision,
    max_drawdown_30d        double precision,
    PRIMARY KEY (coin_key, vs_currency, date_key)
);
COMMENT ON TABLE fact_daily_metrics IS
    'Grain: one row per coin, vs_currency and UTC day. Measures are NULL where undefined (first day, gaps). '
    'Source: gold/daily_metrics.';
CREATE INDEX fact_daily_metrics_date ON fact_daily_metrics (date_key);

CREATE TABLE fact_dominance (
    coin_key         integer          NOT NULL REFERENCES dim_coin,
    vs_currency      text             NOT NULL,
    date_key         integer          NOT NULL REFERENCES dim_date,
    market_cap       double precision,
    total_market_cap double precision,
    share            double precision,
    PRIMARY KEY (coin_key, vs_currency, date_key)
);
COMMENT ON TABLE fact_dominance IS
    'Grain: one row per coin, vs_currency and UTC day: the coin''s share of the tracked coins'' market cap. '
    'Source: gold/dominance.';
CREATE INDEX fact_dominance_date ON fact_dominance (date_key);

CREATE TABLE fact_alert (
    alert_id         text             PRIMARY KEY,
    coin_key         integer          NOT NULL REFERENCES dim_coin,
    vs_currency      text             NOT NULL,
    ts_event         timestamptz      NOT NULL,
    date_key         integer          NOT NULL REFERENCES dim_date,
    schema_version   text,
    rule             text             NOT NULL,
    severity         text             NOT NULL,
    alert_window     text,
    observed         double precision,
    threshold        double precision,
    ts_alert         timestamptz,
    message          text,
    bronze_partition integer,
    bronze_offset    bigint,
    kafka_timestamp  timestamptz
);
COMMENT ON TABLE fact_alert IS
    'Grain: one row per alert (alert_id, deterministic per rule, coin, vs_currency, window and ts_event); '
    'date_key is the day of ts_event. Source: silver/alerts.';
COMMENT ON COLUMN fact_alert.alert_window IS 'The rule''s horizon (contract field "window"); NULL for stale_feed.';
CREATE INDEX fact_alert_date ON fact_alert (date_key);
CREATE INDEX fact_alert_coin ON fact_alert (coin_key, ts_event);

CREATE TABLE fact_data_quality (
    coin_key              integer          NOT NULL REFERENCES dim_coin,
    vs_currency           text             NOT NULL,
    hour_start            timestamptz      NOT NULL,
    date_key              integer          NOT NULL REFERENCES dim_date,
    polls_expected        bigint,
    polls_received        bigint,
    duplicates_removed    bigint,
    dead_letters          bigint,
    quarantined           bigint,
    max_staleness_seconds double precision,
    PRIMARY KEY (coin_key, vs_currency, hour_start)
);
COMMENT ON TABLE fact_data_quality IS
    'Grain: one row per coin, vs_currency and UTC hour: polls expected vs received, duplicates removed, '
    'dead letters, quarantined rows and max staleness. Source: gold/data_quality.';
CREATE INDEX fact_data_quality_date ON fact_data_quality (date_key);
