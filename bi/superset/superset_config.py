"""Superset settings of the crypto platform's BI (docs/BI.md). scripts/superset points
SUPERSET_CONFIG_PATH here; everything that differs per machine comes from the environment.

- The secret key comes from SUPERSET_SECRET_KEY (scripts/superset makes one per SUPERSET_HOME and
  keeps it in $SUPERSET_HOME/secret-key, mode 600); it encrypts the warehouse password Superset
  stores, so nothing secret lives in the repository.
- Superset's own metadata is a SQLite file in SUPERSET_HOME (a cache folder, or a temporary one in
  tests); the warehouse is only ever read, through the database connection of bi/superset/assets.
- No examples, no telemetry, nothing fetched from the internet: the browser's content security
  policy allows this server only (Superset's default one lets the page load a tracking pixel and
  map tiles from other hosts).
"""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]

DATA_DIR = os.environ["SUPERSET_HOME"]
SQLALCHEMY_DATABASE_URI = f"sqlite:///{os.path.join(DATA_DIR, 'superset.db')}?check_same_thread=false"

# No sample data sets or dashboards, and no connection to the examples database.
SQLALCHEMY_EXAMPLES_URI = None

# The warehouse is read-only for Superset: no file uploads and no DML from SQL Lab.
CSV_EXTENSIONS = set()
EXCEL_EXTENSIONS = set()
COLUMNAR_EXTENSIONS = set()

# Same-origin only: no tracking pixel, no map tiles, no web fonts from other hosts.
TALISMAN_ENABLED = True
TALISMAN_CONFIG = {
    "content_security_policy": {
        "base-uri": ["'self'"],
        "default-src": ["'self'"],
        "img-src": ["'self'", "blob:", "data:"],
        "worker-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": "'none'",
        "style-src": ["'self'", "'unsafe-inline'"],
        "font-src": ["'self'", "data:"],
        "script-src": ["'self'", "'strict-dynamic'"],
    },
    "content_security_policy_nonce_in": ["script-src"],
    "force_https": False,
    "session_cookie_secure": False,
}
TALISMAN_DEV_CONFIG = TALISMAN_CONFIG

# A local, single-user install: the login API is called by scripts and tests in quick succession.
AUTH_RATE_LIMITED = False
RATELIMIT_ENABLED = False

# Chart data is not cached, so a dashboard always shows what the warehouse holds now.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
