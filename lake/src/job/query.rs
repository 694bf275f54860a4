//! A DataFusion session over the lake's Delta tables: register tables under SQL names, run SQL
//! with typed named parameters (`$start`, …), read a table back as rows.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lake::job::JobError> {
//! use lake::job::query::LakeSession;
//! let lake = lake::storage::Lake::parse("./lake")?;
//! let session = LakeSession::new();
//! session.register(&lake, "silver/prices", "silver_prices").await?;
//! let batches = session
//!     .run("count", "SELECT count(*) AS n FROM silver_prices WHERE price > $min", vec![("min", 1.0.into())])
//!     .await?;
//! # drop(batches); Ok(()) }
//! ```

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::json::ArrayWriter;
use deltalake::datafusion::dataframe::DataFrame;
use deltalake::datafusion::prelude::{ident, SessionContext};
use deltalake::datafusion::scalar::ScalarValue;
use serde_json::{Map, Value};

use super::JobError;
use crate::storage::Lake;

/// One DataFusion session with lake tables registered in it.
pub struct LakeSession {
    ctx: SessionContext,
}

impl Default for LakeSession {
    fn default() -> Self {
        Self::new()
    }
}

impl LakeSession {
    /// An empty session.
    pub fn new() -> Self {
        Self {
            ctx: SessionContext::new(),
        }
    }

    /// The DataFusion context, for the DataFrame API.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Registers the Delta table `table` of `lake` under the SQL name `name`, at its latest
    /// version; `false` (nothing registered) when the table has not been created yet.
    pub async fn register(&self, lake: &Lake, table: &str, name: &str) -> Result<bool, JobError> {
        let Some(delta) = lake.open(table).await? else {
            return Ok(false);
        };
        delta
            .update_datafusion_session(&self.ctx.state())
            .map_err(JobError::delta(table, "register with datafusion"))?;
        let provider = delta
            .table_provider()
            .await
            .map_err(JobError::query(table))?;
        self.ctx
            .register_table(name, provider)
            .map_err(JobError::query(table))?;
        Ok(true)
    }

    /// Registers `table` like [`LakeSession::register`], failing when it does not exist.
    pub async fn register_existing(
        &self,
        lake: &Lake,
        table: &str,
        name: &str,
        hint: &'static str,
    ) -> Result<(), JobError> {
        if self.register(lake, table, name).await? {
            Ok(())
        } else {
            Err(JobError::MissingTable {
                table: table.to_owned(),
                hint,
            })
        }
    }

    /// Registers an in-memory `batch` under the SQL name `name` (job parameters as a table).
    pub fn register_batch(&self, name: &str, batch: RecordBatch) -> Result<(), JobError> {
        self.ctx
            .register_batch(name, batch)
            .map(|_| ())
            .map_err(JobError::query(name))
    }

    /// Plans `sql` (named `name` in errors) with `params` bound to its `$name` placeholders.
    pub async fn plan(
        &self,
        name: &str,
        sql: &str,
        params: Vec<(&str, ScalarValue)>,
    ) -> Result<DataFrame, JobError> {
        self.ctx
            .sql(sql)
            .await
            .and_then(|frame| frame.with_param_values(params))
            .map_err(JobError::query(name))
    }

    /// Runs `sql` like [`LakeSession::plan`] and collects its result.
    pub async fn run(
        &self,
        name: &str,
        sql: &str,
        params: Vec<(&str, ScalarValue)>,
    ) -> Result<Vec<RecordBatch>, JobError> {
        self.plan(name, sql, params)
            .await?
            .collect()
            .await
            .map_err(JobError::query(name))
    }
}

/// Every row of `table` (empty when it does not exist), sorted by `order_by`, as JSON objects:
/// how tests, checks and exports compare the DATA of a table rather than its log.
pub async fn table_rows(
    lake: &Lake,
    table: &str,
    order_by: &[&str],
) -> Result<Vec<Map<String, Value>>, JobError> {
    let session = LakeSession::new();
    if !session.register(lake, table, "t").await? {
        return Ok(Vec::new());
    }
    let sort = order_by
        .iter()
        .map(|column| ident(*column).sort(true, false))
        .collect();
    let batches = session
        .ctx
        .table("t")
        .await
        .and_then(|frame| frame.sort(sort))
        .map_err(JobError::query(table))?
        .collect()
        .await
        .map_err(JobError::query(table))?;
    batches_to_rows(table, &batches)
}

/// `batches` as JSON objects, one per row (nulls omitted, as Arrow's JSON writer does).
pub fn batches_to_rows(
    table: &str,
    batches: &[RecordBatch],
) -> Result<Vec<Map<String, Value>>, JobError> {
    let mut writer = ArrayWriter::new(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer
        .write_batches(&refs)
        .and_then(|()| writer.finish())
        .map_err(JobError::arrow(table))?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|source| JobError::Rows {
        table: table.to_owned(),
        source,
    })
}
