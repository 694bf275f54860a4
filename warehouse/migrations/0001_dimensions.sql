-- The conformed dimensions of the star schema (docs/DATA_MODEL.md).

CREATE TABLE dim_coin (
    coin_key   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    coin_id    text        NOT NULL UNIQUE,
    symbol     text,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    CHECK (first_seen <= last_seen)
);
COMMENT ON TABLE dim_coin IS
    'Grain: one row per CoinGecko coin id. Type 1: symbol is the one of the latest price snapshot loaded; '
    'first_seen/last_seen span the event times of every fact row ever loaded for the coin.';
COMMENT ON COLUMN dim_coin.coin_key IS 'Surrogate key, referenced by every fact.';
COMMENT ON COLUMN dim_coin.coin_id IS 'Natural key: the CoinGecko id (e.g. bitcoin).';

CREATE TABLE dim_date (
    date_key    integer  PRIMARY KEY CHECK (date_key BETWEEN 10000101 AND 99991231),
    date        date     NOT NULL UNIQUE,
    year        smallint NOT NULL,
    quarter     smallint NOT NULL CHECK (quarter BETWEEN 1 AND 4),
    month       smallint NOT NULL CHECK (month BETWEEN 1 AND 12),
    day         smallint NOT NULL CHECK (day BETWEEN 1 AND 31),
    iso_year    smallint NOT NULL,
    iso_week    smallint NOT NULL CHECK (iso_week BETWEEN 1 AND 53),
    iso_weekday smallint NOT NULL CHECK (iso_weekday BETWEEN 1 AND 7),
    is_weekend  boolean  NOT NULL
);
COMMENT ON TABLE dim_date IS
    'Grain: one row per UTC calendar day. date_key = yyyymmdd. Rows are added for every day a load interval touches.';
COMMENT ON COLUMN dim_date.iso_weekday IS 'ISO 8601: 1 = Monday … 7 = Sunday.';
