//! Where the lake lives: a local folder or an S3-compatible bucket, and its Delta tables.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lake::LakeError> {
//! let lake = lake::storage::Lake::parse("./lake")?;
//! let url = lake.table_url("bronze/prices_raw")?;
//! assert!(url.as_str().ends_with("/lake/bronze/prices_raw/"));
//! let table = lake.open_or_create("bronze/prices_raw", lake::bronze::columns(), &["ingest_date"]).await?;
//! # drop(table); Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Once;

use deltalake::kernel::StructField;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use url::Url;

use crate::LakeError;

/// The `AWS_*` settings a lake on S3 reads from the environment (REFERENCE.md §E).
pub const S3_ENV_KEYS: [&str; 6] = [
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ALLOW_HTTP",
];

/// Settings whose values [`Lake`]'s `Debug` shows; every other value is redacted.
const PUBLIC_KEYS: [&str; 3] = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ALLOW_HTTP"];

static S3_HANDLERS: Once = Once::new();

/// The root of the lake (a folder or `s3://bucket/prefix`) and the object-store options to reach it.
///
/// Invariant: `root` ends with `/`, so a table name joins below it. `Debug` never prints a secret.
#[derive(Clone)]
pub struct Lake {
    root: Url,
    storage_options: HashMap<String, String>,
}

impl fmt::Debug for Lake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut options: Vec<(&str, &str)> = self
            .storage_options
            .iter()
            .map(|(k, v)| {
                let shown = if PUBLIC_KEYS.contains(&k.as_str()) {
                    v.as_str()
                } else {
                    "<redacted>"
                };
                (k.as_str(), shown)
            })
            .collect();
        options.sort_unstable();
        f.debug_struct("Lake")
            .field("root", &self.root.as_str())
            .field("storage_options", &options)
            .finish()
    }
}

impl Lake {
    /// A lake at `root` ("/abs/path", "rel/path", "file:///p" or "s3://bucket/prefix"); for S3 the
    /// options come from the `AWS_*` environment ([`S3_ENV_KEYS`]).
    pub fn parse(root: &str) -> Result<Lake, LakeError> {
        let options = S3_ENV_KEYS
            .iter()
            .filter_map(|key| std::env::var(key).ok().map(|v| ((*key).to_owned(), v)))
            .collect();
        Lake::parse_with_options(root, options)
    }

    /// A lake at `root` with explicit object-store options (keys as in [`S3_ENV_KEYS`]); the
    /// environment still fills options not given here.
    pub fn parse_with_options(
        root: &str,
        storage_options: HashMap<String, String>,
    ) -> Result<Lake, LakeError> {
        let invalid = |source| LakeError::InvalidLocation {
            location: root.to_owned(),
            source,
        };
        let mut url = if root.contains("://") {
            Url::parse(root).map_err(invalid)?
        } else {
            let absolute = std::path::absolute(root).map_err(|source| LakeError::CreateFolder {
                path: root.to_owned(),
                source,
            })?;
            Url::from_directory_path(&absolute)
                .map_err(|()| LakeError::UnsupportedScheme(root.to_owned()))?
        };
        match url.scheme() {
            "file" => {}
            "s3" | "s3a" => S3_HANDLERS.call_once(|| deltalake::aws::register_handlers(None)),
            _ => return Err(LakeError::UnsupportedScheme(root.to_owned())),
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let storage_options = if url.scheme() == "file" {
            HashMap::new()
        } else {
            storage_options
        };
        Ok(Lake {
            root: url,
            storage_options,
        })
    }

    /// The lake's root URL (ends with `/`).
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The object-store options (secrets included: never log them).
    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.storage_options
    }

    /// The URL of `table` (like `bronze/prices_raw`) under the root, ending with `/`.
    pub fn table_url(&self, table: &str) -> Result<Url, LakeError> {
        let valid = !table.is_empty()
            && table
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !valid {
            return Err(LakeError::UnexpectedTable {
                table: table.to_owned(),
                message: "a table name is one or more non-empty '/'-separated names".to_owned(),
            });
        }
        self.root
            .join(&format!("{table}/"))
            .map_err(|source| LakeError::InvalidLocation {
                location: table.to_owned(),
                source,
            })
    }

    /// The table at `table`, or `None` when it has not been created yet.
    pub async fn open(&self, table: &str) -> Result<Option<DeltaTable>, LakeError> {
        let url = self.table_url(table)?;
        if let Ok(path) = url.to_file_path() {
            if !Path::new(&path).exists() {
                return Ok(None);
            }
        }
        let opened = self.load(table, url).await?;
        Ok(opened.version().is_some().then_some(opened))
    }

    /// The table at `table`, created with `columns` and `partition_columns` when it does not exist.
    /// Safe against a concurrent creator: whoever loses the race opens the winner's table.
    pub async fn open_or_create(
        &self,
        table: &str,
        columns: Vec<StructField>,
        partition_columns: &[&str],
    ) -> Result<DeltaTable, LakeError> {
        let url = self.table_url(table)?;
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|source| LakeError::CreateFolder {
                path: path.display().to_string(),
                source,
            })?;
        }
        let existing = self.load(table, url.clone()).await?;
        if existing.version().is_some() {
            return Ok(existing);
        }
        let created = existing
            .create()
            .with_columns(columns)
            .with_partition_columns(partition_columns.iter().copied())
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(created) => Ok(created),
            Err(err) => match self.open(table).await? {
                Some(winner) => Ok(winner),
                None => Err(LakeError::delta(table, "create")(err)),
            },
        }
    }

    async fn load(&self, table: &str, url: Url) -> Result<DeltaTable, LakeError> {
        let result: Result<DeltaTable, DeltaTableError> =
            DeltaTable::try_from_url_with_storage_options(url, self.storage_options.clone()).await;
        result.map_err(LakeError::delta(table, "open"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folders_file_urls_and_buckets() -> Result<(), LakeError> {
        let relative = Lake::parse("some/lake")?;
        assert!(relative.root().as_str().starts_with("file:///"));
        assert!(relative.root().as_str().ends_with("/some/lake/"));
        let file = Lake::parse("file:///tmp/x")?;
        assert_eq!(
            file.table_url("bronze/prices_raw")?.as_str(),
            "file:///tmp/x/bronze/prices_raw/"
        );
        let s3 = Lake::parse_with_options("s3://lake/prefix", HashMap::new())?;
        assert_eq!(
            s3.table_url("gold/candles_1h")?.as_str(),
            "s3://lake/prefix/gold/candles_1h/"
        );
        Ok(())
    }

    #[test]
    fn rejects_bad_names_and_schemes() {
        assert!(matches!(
            Lake::parse("ftp://host/x"),
            Err(LakeError::UnsupportedScheme(_))
        ));
        let lake = Lake::parse("/tmp/x");
        assert!(lake.is_ok_and(|lake| lake.table_url("../etc").is_err()
            && lake.table_url("").is_err()
            && lake.table_url("a//b").is_err()));
    }

    #[test]
    fn debug_never_shows_the_secret() -> Result<(), LakeError> {
        let options = HashMap::from([
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                "s3cr3t-value".to_owned(),
            ),
            ("AWS_ACCESS_KEY_ID".to_owned(), "key-id-value".to_owned()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ]);
        let shown = format!("{:?}", Lake::parse_with_options("s3://lake", options)?);
        assert!(!shown.contains("s3cr3t-value") && !shown.contains("key-id-value"));
        assert!(shown.contains("us-east-1"));
        Ok(())
    }
}
