//! The Gold models: one SQL file per table in `lake/models/gold/`, read like dbt models (a header
//! with the grain, sources and parameters), plus what the runner needs to know to replace its
//! rows: the grain it rebuilds, the column that places a row, the look-back it reads.

use std::sync::Arc;

use chrono::Duration;
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::prelude::Expr;

use crate::job::interval::Interval;
use crate::job::replace::{timestamp_type, TableSpec};

/// The unit of time a model rebuilds whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grain {
    /// The UTC hours the interval touches.
    Hour,
    /// The UTC days the interval touches.
    Day,
}

/// The column that places a model's row in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeColumn {
    /// A `timestamp` column (bucket start).
    Timestamp(&'static str),
    /// A `date` column.
    Date(&'static str),
}

/// One Gold model.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// The table it builds, like `gold/candles_1h`.
    pub table: &'static str,
    /// Its SQL (`lake/models/gold/<name>.sql`).
    pub sql: &'static str,
    /// What it rebuilds whole.
    pub grain: Grain,
    /// What places its rows.
    pub time_column: TimeColumn,
    /// Its partition columns.
    pub partition_columns: &'static [&'static str],
    /// How many days before the rebuilt span it reads (`$read_start`).
    pub look_back_days: i64,
}

/// Every model, in the order they run.
pub const MODELS: [Model; 5] = [
    Model {
        table: "gold/candles_1h",
        sql: include_str!("../../models/gold/candles_1h.sql"),
        grain: Grain::Hour,
        time_column: TimeColumn::Timestamp("bucket_start"),
        partition_columns: &["bucket_date"],
        look_back_days: 0,
    },
    Model {
        table: "gold/candles_1d",
        sql: include_str!("../../models/gold/candles_1d.sql"),
        grain: Grain::Day,
        time_column: TimeColumn::Timestamp("bucket_start"),
        partition_columns: &["bucket_date"],
        look_back_days: 0,
    },
    Model {
        table: "gold/daily_metrics",
        sql: include_str!("../../models/gold/daily_metrics.sql"),
        grain: Grain::Day,
        time_column: TimeColumn::Date("date"),
        partition_columns: &[],
        look_back_days: 30,
    },
    Model {
        table: "gold/dominance",
        sql: include_str!("../../models/gold/dominance.sql"),
        grain: Grain::Day,
        time_column: TimeColumn::Date("date"),
        partition_columns: &[],
        look_back_days: 0,
    },
    Model {
        table: "gold/data_quality",
        sql: include_str!("../../models/gold/data_quality.sql"),
        grain: Grain::Hour,
        time_column: TimeColumn::Timestamp("hour_start"),
        partition_columns: &["hour_date"],
        look_back_days: 0,
    },
];

impl Model {
    /// The model's name: its table without the `gold/` prefix.
    pub fn name(&self) -> &'static str {
        self.table.trim_start_matches("gold/")
    }

    /// The span it rebuilds for a run over `interval`: the whole hours or days it touches.
    pub fn rebuilt(&self, interval: &Interval) -> Interval {
        match self.grain {
            Grain::Hour => interval.whole_hours(),
            Grain::Day => interval.whole_days(),
        }
    }

    /// The span it reads: `rebuilt` and the look-back before it.
    pub fn read(&self, rebuilt: &Interval) -> Interval {
        rebuilt.extended_back(Duration::days(self.look_back_days))
    }

    /// The predicate selecting the rows of `rebuilt` in its table.
    pub fn predicate(&self, rebuilt: &Interval) -> Expr {
        let placed = match self.time_column {
            TimeColumn::Timestamp(column) => rebuilt.timestamp_predicate(column),
            TimeColumn::Date(column) => rebuilt.date_predicate(column),
        };
        self.partition_columns
            .iter()
            .fold(placed, |predicate, column| {
                predicate.and(rebuilt.date_predicate(column))
            })
    }

    /// Its table, with the columns of the query's `output`: string views become strings,
    /// timestamps UTC microseconds, and every column nullable (an engine's nullability is a
    /// property of the plan, not of the data, and may change between runs).
    pub fn spec(&self, output: &Schema) -> TableSpec {
        let fields: Vec<Field> = output
            .fields()
            .iter()
            .map(|field| {
                let data_type = match field.data_type() {
                    DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
                    DataType::Timestamp(_, _) => timestamp_type(),
                    other => other.clone(),
                };
                Field::new(field.name(), data_type, true)
            })
            .collect();
        TableSpec {
            name: self.table,
            schema: Arc::new(Schema::new(fields)),
            partition_columns: self.partition_columns,
        }
    }
}
