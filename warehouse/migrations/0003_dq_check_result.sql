-- Results of the data-quality checks (`warehouse check`, warehouse::quality): one row per check,
-- coin, quote currency and UTC hour of a checked interval. Checking an interval again replaces its
-- rows; an hourly and a daily check of the same hour are different intervals and both stay.

CREATE TABLE dq_check_result (
    interval_start timestamptz      NOT NULL,
    interval_end   timestamptz      NOT NULL,
    check_name     text             NOT NULL,
    coin_id        text             NOT NULL,
    vs_currency    text             NOT NULL,
    hour_start     timestamptz      NOT NULL,
    status         text             NOT NULL CHECK (status IN ('pass', 'warn', 'fail')),
    observed       double precision NOT NULL,
    threshold      double precision NOT NULL,
    message        text             NOT NULL,
    recorded_at    timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (interval_start, interval_end, check_name, coin_id, vs_currency, hour_start),
    CHECK (interval_start < interval_end)
);
COMMENT ON TABLE dq_check_result IS
    'Grain: one row per data-quality check, coin, vs_currency and hour of a checked interval [interval_start, '
    'interval_end). Source: warehouse check (rules: warehouse/src/quality/default_rules.json).';
COMMENT ON COLUMN dq_check_result.recorded_at IS 'When the check ran (audit only; no check reads it).';
CREATE INDEX dq_check_result_failures ON dq_check_result (hour_start) WHERE status <> 'pass';
