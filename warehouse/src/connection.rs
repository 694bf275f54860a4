//! Where the warehouse is: a `postgres://` URL (or libpq `key=value` string), else the libpq
//! `PG*` environment. No TLS (a local or private-network PostgreSQL).
//!
//! Invariant: the password is never shown — [`WarehouseTarget`]'s `Display` and `Debug` print
//! `postgres://user@host:port/database` only, and every error names the target that way.
//!
//! ```
//! use warehouse::connection::WarehouseTarget;
//! let target = WarehouseTarget::from_url("postgres://loader:s3cret@127.0.0.1:5433/warehouse")?;
//! assert_eq!(target.to_string(), "postgres://loader@127.0.0.1:5433/warehouse");
//! # Ok::<(), warehouse::connection::ConnectionError>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// How long a connection attempt may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the warehouse could not be named or reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The URL or connection string does not parse (the message names the bad key, never a value).
    #[error("invalid warehouse URL")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// A `PG*` variable holds something unusable.
    #[error("invalid environment variable {name}: {message}")]
    InvalidEnv {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Neither a URL nor `PGUSER`/`USER` says who to connect as.
    #[error("no warehouse given: pass --warehouse-url, set WAREHOUSE_URL, or set the libpq PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE)")]
    Missing,
    /// The server refused or could not be reached.
    #[error("cannot connect to the warehouse at {target}")]
    Connect {
        /// The redacted target.
        target: String,
        /// The client's error.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// A PostgreSQL database to connect to; shown without its password.
#[derive(Clone)]
pub struct WarehouseTarget {
    config: Config,
}

impl WarehouseTarget {
    /// A target from a `postgres://user:password@host:port/db` URL or a libpq `key=value` string.
    pub fn from_url(url: &str) -> Result<WarehouseTarget, ConnectionError> {
        let mut config = Config::from_str(url).map_err(ConnectionError::InvalidUrl)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        Ok(WarehouseTarget { config })
    }

    /// A target from the libpq variables, looked up with `var`: `PGHOST` (default `localhost`; a
    /// path is a unix-socket folder), `PGPORT` (5432), `PGUSER` (else `USER`), `PGPASSWORD`,
    /// `PGDATABASE` (else the user name).
    pub fn from_pg_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<WarehouseTarget, ConnectionError> {
        let user = var("PGUSER")
            .or_else(|| var("USER"))
            .ok_or(ConnectionError::Missing)?;
        let mut config = Config::new();
        config.host(var("PGHOST").as_deref().unwrap_or("localhost"));
        let port = match var("PGPORT") {
            Some(port) => port.parse().map_err(|_| ConnectionError::InvalidEnv {
                name: "PGPORT",
                message: format!("not a port number: {port:?}"),
            })?,
            None => 5432,
        };
        config.port(port);
        config.dbname(var("PGDATABASE").as_deref().unwrap_or(&user));
        config.user(&user);
        if let Some(password) = var("PGPASSWORD") {
            config.password(password);
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        Ok(WarehouseTarget { config })
    }

    /// The target of `url` when given (the binaries pass `--warehouse-url`/`WAREHOUSE_URL`),
    /// else of the process's `PG*` environment.
    pub fn from_url_or_env(url: Option<&str>) -> Result<WarehouseTarget, ConnectionError> {
        match url {
            Some(url) => WarehouseTarget::from_url(url),
            None => WarehouseTarget::from_pg_vars(|name| std::env::var(name).ok()),
        }
    }

    /// The same server and credentials, another database.
    pub fn with_database(&self, database: &str) -> WarehouseTarget {
        let mut config = self.config.clone();
        config.dbname(database);
        WarehouseTarget { config }
    }

    /// The database name (the user name when none is set, as libpq does).
    pub fn database(&self) -> &str {
        self.config
            .get_dbname()
            .or(self.config.get_user())
            .unwrap_or("")
    }

    /// Connects; the connection runs on a task of the current tokio runtime until the client is
    /// dropped.
    pub async fn connect(&self) -> Result<Client, ConnectionError> {
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|source| ConnectionError::Connect {
                    target: self.to_string(),
                    source,
                })?;
        let target = self.to_string();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%target, %error, "warehouse connection closed with an error");
            }
        });
        Ok(client)
    }
}

impl fmt::Display for WarehouseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres://")?;
        if let Some(user) = self.config.get_user() {
            write!(f, "{user}@")?;
        }
        let ports = self.config.get_ports();
        for (i, host) in self.config.get_hosts().iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            match host {
                Host::Tcp(name) => write!(f, "{name}")?,
                Host::Unix(path) => write!(f, "[{}]", path.display())?,
            }
            if let Some(port) = ports.get(i).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        write!(f, "/{}", self.database())
    }
}

impl fmt::Debug for WarehouseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WarehouseTarget({self})")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn urls_are_shown_without_the_password() -> Result<(), ConnectionError> {
        let target = WarehouseTarget::from_url("postgres://loader:hunter2@db.internal:6543/dwh")?;
        assert_eq!(target.to_string(), "postgres://loader@db.internal:6543/dwh");
        assert!(!format!("{target:?}").contains("hunter2"));
        let other = target.with_database("scratch");
        assert_eq!(
            other.to_string(),
            "postgres://loader@db.internal:6543/scratch"
        );
        let keywords = WarehouseTarget::from_url("host=127.0.0.1 user=u password=pw dbname=d")?;
        assert!(!keywords.to_string().contains("pw"));
        Ok(())
    }

    #[test]
    fn pg_variables_fill_what_a_url_would() -> Result<(), ConnectionError> {
        let vars = HashMap::from([
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", "5499"),
            ("PGUSER", "wh"),
            ("PGPASSWORD", "hunter2"),
            ("PGDATABASE", "warehouse"),
        ]);
        let target = WarehouseTarget::from_pg_vars(|k| vars.get(k).map(|v| (*v).to_owned()))?;
        assert_eq!(target.to_string(), "postgres://wh@127.0.0.1:5499/warehouse");
        let defaults =
            WarehouseTarget::from_pg_vars(|k| (k == "USER").then(|| "alice".to_owned()))?;
        assert_eq!(
            defaults.to_string(),
            "postgres://alice@localhost:5432/alice"
        );
        Ok(())
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(matches!(
            WarehouseTarget::from_pg_vars(|_| None),
            Err(ConnectionError::Missing)
        ));
        let bad_port = WarehouseTarget::from_pg_vars(|k| match k {
            "PGUSER" => Some("u".to_owned()),
            "PGPORT" => Some("many".to_owned()),
            _ => None,
        });
        assert!(matches!(
            bad_port,
            Err(ConnectionError::InvalidEnv { name: "PGPORT", .. })
        ));
        let bad_url = WarehouseTarget::from_url("postgres://u:secretpw@h/db?nonsense=1");
        assert!(bad_url.is_err_and(|e| !format!("{e:?}").contains("secretpw")));
    }
}
