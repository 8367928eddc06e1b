//! The survey store: runs, targets (with tags), addresses, observations (append-only, every
//! field of `Observation`) and the per-(prober, target, address, method) schedule. Two backends
//! share one schema: embedded SQLite (WAL; the default, at [`default_sqlite_path`]) and
//! PostgreSQL (`postgres://…`), which several probers can write into at once.

pub mod columns;
pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::path::PathBuf;
use timeaudit_analysis::observation::Observation;
use timeaudit_analysis::schedule::DueState;

/// The schema version this build writes (see the migration lists of each backend).
pub const SCHEMA_VERSION: i64 = 1;

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("{store}: {source}")]
    Sqlite {
        /// Which store.
        store: String,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL reported an error.
    #[error("{store}: {source}")]
    Postgres {
        /// Which store (password removed).
        store: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The store was written by a newer timeaudit.
    #[error(
        "{store}: schema version {found} is newer than this timeaudit understands ({SCHEMA_VERSION}); upgrade timeaudit"
    )]
    TooNew {
        /// Which store.
        store: String,
        /// The version found.
        found: i64,
    },
    /// A stored value does not fit the observation record.
    #[error("{store}: bad stored value in column {column}: {message}")]
    BadValue {
        /// Which store.
        store: String,
        /// Column name.
        column: String,
        /// What was wrong.
        message: String,
    },
    /// Anything else (I/O around the store, runtime start-up).
    #[error("{store}: {message}")]
    Other {
        /// Which store.
        store: String,
        /// What went wrong.
        message: String,
    },
}

impl StoreError {
    /// Whether the error means the disk (or the database's size limit) is full.
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => {
                matches!(source.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull))
            }
            StoreError::Postgres { source, .. } => source.code().is_some_and(|c| c.code() == "53100"),
            _ => false,
        }
    }
}

/// Key of one schedule entry within one prober.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DueKey {
    /// Target as written.
    pub target: String,
    /// Address probed ("" when the name did not resolve).
    pub address: String,
    /// Method name.
    pub method: String,
}

/// What a run records when it starts.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Unix seconds.
    pub started: f64,
    /// Name of the prober (vantage point), `--prober`, default the host name.
    pub prober: String,
    /// The targets file.
    pub targets_file: String,
    /// `I/N` when sharded.
    pub shard: Option<String>,
    /// timeaudit version.
    pub version: String,
}

/// What a run records when it ends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    /// Unix seconds.
    pub finished: f64,
    /// `completed`, `deadline`, `interrupted`, `store_error`.
    pub status: String,
    /// Probes made.
    pub probed: u64,
    /// Probes that produced an offset.
    pub answered: u64,
    /// Probes that did not.
    pub failed: u64,
    /// Targets with at least one due probe not made.
    pub targets_left: u64,
    /// Largest |offset| seen, signed.
    pub worst_offset: Option<f64>,
}

/// One completed probe and the schedule state it leads to.
#[derive(Debug, Clone)]
pub struct ProbeRow {
    /// The observation.
    pub obs: Observation,
    /// Its new schedule state.
    pub due: DueState,
}

/// A stored observation with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObservation {
    /// Row id (insertion order).
    pub id: i64,
    /// The run that made it.
    pub run_id: i64,
    /// The observation.
    pub obs: Observation,
}

impl StoredObservation {
    /// Builds a stored observation from one row's observation cells (in
    /// [`columns::OBSERVATION_COLUMNS`] order); a bad value names the store, column and row.
    pub fn from_row(store: &str, id: i64, run_id: i64, cells: Vec<columns::Cell>) -> Result<Self, StoreError> {
        let obs = columns::from_cells(cells).map_err(|(column, message)| StoreError::BadValue {
            store: store.to_string(),
            column: format!("{column} (row {id})"),
            message,
        })?;
        Ok(Self { id, run_id, obs })
    }
}

/// A target and its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// Target as written.
    pub target: String,
    /// Tags, in file order.
    pub tags: Vec<String>,
}

/// What every backend offers. Calls are synchronous; a backend that needs async I/O runs its
/// own runtime (so call it from outside any tokio runtime).
pub trait Store: Send {
    /// Human name (path or URL without password) for messages.
    fn describe(&self) -> String;
    /// The schema version stored.
    fn schema_version(&mut self) -> Result<i64, StoreError>;
    /// Records the start of a run and returns its id.
    fn begin_run(&mut self, info: &RunInfo) -> Result<i64, StoreError>;
    /// Adds targets not yet known and updates the tags of known ones.
    fn record_targets(&mut self, targets: &[TargetRecord], now: f64) -> Result<(), StoreError>;
    /// The schedule of one prober.
    fn due_states(&mut self, prober: &str) -> Result<HashMap<DueKey, DueState>, StoreError>;
    /// Appends probes of a run and their schedule states in one transaction.
    fn append(&mut self, run_id: i64, prober: &str, rows: &[ProbeRow]) -> Result<(), StoreError>;
    /// Records the end of a run.
    fn finish_run(&mut self, run_id: i64, summary: &RunSummary) -> Result<(), StoreError>;
    /// Calls `each` for every observation with `since <= t_send < until`, in insertion order.
    fn for_each_observation(
        &mut self,
        since: Option<f64>,
        until: Option<f64>,
        each: &mut dyn FnMut(StoredObservation) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
}

/// Where the embedded store lives unless `--db` says otherwise:
/// `$XDG_DATA_HOME/timeaudit/survey.sqlite`, else `$HOME/.local/share/timeaudit/survey.sqlite`.
pub fn default_sqlite_path() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("timeaudit").join("survey.sqlite"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/timeaudit/survey.sqlite")),
        None => anyhow::bail!("neither XDG_DATA_HOME nor HOME is set: give the store with --db PATH"),
    }
}

/// Whether `--db` names a PostgreSQL server.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Opens (creating and migrating as needed) the store named by `--db` (default: the embedded
/// SQLite file).
pub fn open(db: Option<&str>) -> anyhow::Result<Box<dyn Store>> {
    match db {
        Some(url) if is_postgres_url(url) => Ok(Box::new(postgres::PgStore::open(url)?)),
        Some(path) => Ok(Box::new(sqlite::SqliteStore::open(std::path::Path::new(path))?)),
        None => Ok(Box::new(sqlite::SqliteStore::open(&default_sqlite_path()?)?)),
    }
}
