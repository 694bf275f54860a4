//! The warehouse schema as numbered SQL migrations (`warehouse/migrations/NNNN_name.sql`, built
//! into the binary), applied in order, each in its own transaction, and recorded in
//! `schema_migrations` (version, name, SHA-256 of the file).
//!
//! Invariants: a migration is applied at most once; an applied migration whose file changed is an
//! error (write a new migration instead); a database with a migration this build does not know
//! is an error (it was migrated by a newer build). Concurrent migrators serialise on an advisory
//! lock, so two loaders starting together apply each migration once.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// The advisory-lock key every migrator takes (ASCII "waremigr").
const MIGRATION_LOCK: i64 = 0x7761_7265_6d69_6772;

/// One migration: its number, its name and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The number in the file name; migrations apply in increasing order.
    pub version: i32,
    /// The rest of the file name, without `.sql`.
    pub name: &'static str,
    /// The file's text.
    pub sql: &'static str,
}

impl Migration {
    /// The lowercase hex SHA-256 of the SQL text, recorded when applied.
    pub fn checksum(&self) -> String {
        format!("{:x}", Sha256::digest(self.sql.as_bytes()))
    }
}

/// Every migration of this build, in order (a unit test checks this list against the folder).
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "dimensions",
        sql: include_str!("../migrations/0001_dimensions.sql"),
    },
    Migration {
        version: 2,
        name: "facts",
        sql: include_str!("../migrations/0002_facts.sql"),
    },
];

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// A statement failed.
    #[error("migrations: {context}")]
    Postgres {
        /// What was being done.
        context: String,
        /// The server's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// An applied migration's file is not the one that was applied.
    #[error("migration {version} ({name}) changed after it was applied: checksum {applied} in the database, {built} in this build; add a new migration instead")]
    Changed {
        /// The migration's number.
        version: i32,
        /// Its name.
        name: String,
        /// The checksum recorded when it was applied.
        applied: String,
        /// The checksum of this build's file.
        built: String,
    },
    /// The database has a migration this build does not have.
    #[error("the database has migration {version} ({name}), unknown to this build: it was migrated by a newer version")]
    Unknown {
        /// The migration's number.
        version: i32,
        /// Its recorded name.
        name: String,
    },
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The migrations applied now, in order (`NNNN_name`).
    pub applied: Vec<String>,
    /// How many were already applied.
    pub up_to_date: usize,
}

fn postgres(context: &str) -> impl FnOnce(tokio_postgres::Error) -> MigrationError + '_ {
    move |source| MigrationError::Postgres {
        context: context.to_owned(),
        source,
    }
}

/// Applies every migration of [`MIGRATIONS`] the database does not have yet.
pub async fn migrate(client: &mut Client) -> Result<MigrationReport, MigrationError> {
    migrate_with(client, MIGRATIONS).await
}

/// Applies `migrations` (sorted by version) that the database does not have yet.
pub async fn migrate_with(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrationError> {
    let mut report = MigrationReport {
        applied: Vec::new(),
        up_to_date: 0,
    };
    for migration in migrations {
        let tx = client
            .transaction()
            .await
            .map_err(postgres("begin a transaction"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(postgres("take the migration lock"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer     PRIMARY KEY,
                 name       text        NOT NULL,
                 checksum   text        NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );",
        )
        .await
        .map_err(postgres("create schema_migrations"))?;
        let applied = tx
            .query(
                "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
                &[],
            )
            .await
            .map_err(postgres("read schema_migrations"))?;
        for row in &applied {
            let version: i32 = row.get(0);
            if !migrations.iter().any(|m| m.version == version) {
                return Err(MigrationError::Unknown {
                    version,
                    name: row.get(1),
                });
            }
        }
        let built = migration.checksum();
        match applied
            .iter()
            .find(|row| row.get::<_, i32>(0) == migration.version)
        {
            Some(row) => {
                let recorded: String = row.get(2);
                if recorded != built {
                    return Err(MigrationError::Changed {
                        version: migration.version,
                        name: migration.name.to_owned(),
                        applied: recorded,
                        built,
                    });
                }
                report.up_to_date += 1;
            }
            None => {
                let label = format!("{:04}_{}", migration.version, migration.name);
                tx.batch_execute(migration.sql)
                    .await
                    .map_err(postgres(&format!("apply {label}")))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[&migration.version, &migration.name, &built],
                )
                .await
                .map_err(postgres(&format!("record {label}")))?;
                tracing::info!(migration = %label, "applied");
                report.applied.push(label);
            }
        }
        tx.commit().await.map_err(postgres("commit a migration"))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_matches_the_migrations_folder() -> Result<(), std::io::Error> {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(folder)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect();
        assert_eq!(files, listed);
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            assert_eq!(migration.version, i32::try_from(i + 1).unwrap_or(-1));
        }
        Ok(())
    }

    #[test]
    fn checksums_are_sha256_hex_and_follow_the_text() {
        let a = Migration {
            version: 1,
            name: "a",
            sql: "SELECT 1;",
        };
        let b = Migration {
            sql: "SELECT 2;",
            ..a
        };
        assert_eq!(a.checksum().len(), 64);
        assert!(a.checksum().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.checksum(), b.checksum());
    }
}
