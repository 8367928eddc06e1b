//! Embedded SQLite backend of the survey store: WAL journal (readers never block the writer, a
//! killed writer loses at most its open transaction), `synchronous=NORMAL`, schema version in
//! `PRAGMA user_version`, migrations applied in one transaction each, observations protected
//! against UPDATE and DELETE by triggers.

use super::columns::{Cell, OBSERVATION_COLUMNS, quoted_list, to_cells};
use super::{
    DueKey, ProbeRow, RunInfo, RunSummary, SCHEMA_VERSION, Store, StoreError, StoredObservation, TargetRecord,
};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, params};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use timeaudit_analysis::schedule::DueState;

/// How long a writer waits for another writer's transaction (another prober on the same file).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Migrations: entry `i` brings the schema from version `i` to `i + 1`.
fn migrations() -> Vec<String> {
    let obs_cols: String = OBSERVATION_COLUMNS
        .iter()
        .map(|(name, kind)| {
            let ty = match kind {
                super::columns::Kind::Text => "TEXT",
                super::columns::Kind::Int => "INTEGER",
                super::columns::Kind::Real => "REAL",
            };
            let not_null = if matches!(*name, "target" | "address" | "t_send" | "t_recv") { " NOT NULL" } else { "" };
            format!(",\n  \"{name}\" {ty}{not_null}")
        })
        .collect();
    vec![format!(
        "CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  started REAL NOT NULL,
  finished REAL,
  prober TEXT NOT NULL,
  targets_file TEXT NOT NULL,
  shard TEXT,
  timeaudit_version TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'running',
  probed INTEGER, answered INTEGER, failed INTEGER, targets_left INTEGER, worst_offset REAL
);
CREATE TABLE targets (
  id INTEGER PRIMARY KEY,
  target TEXT NOT NULL UNIQUE,
  tags TEXT NOT NULL DEFAULT '',
  first_seen REAL NOT NULL,
  last_seen REAL NOT NULL
);
CREATE TABLE addresses (
  id INTEGER PRIMARY KEY,
  target_id INTEGER NOT NULL REFERENCES targets(id),
  address TEXT NOT NULL,
  first_seen REAL NOT NULL,
  UNIQUE (target_id, address)
);
CREATE TABLE observations (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  target_id INTEGER NOT NULL REFERENCES targets(id){obs_cols}
);
CREATE INDEX observations_t_send ON observations (t_send);
CREATE INDEX observations_key ON observations (target, address, method, t_send);
CREATE TRIGGER observations_no_update BEFORE UPDATE ON observations
  BEGIN SELECT RAISE(ABORT, 'observations are append-only'); END;
CREATE TRIGGER observations_no_delete BEFORE DELETE ON observations
  BEGIN SELECT RAISE(ABORT, 'observations are append-only'); END;
CREATE TABLE schedule (
  prober TEXT NOT NULL,
  target TEXT NOT NULL,
  address TEXT NOT NULL,
  method TEXT NOT NULL,
  next_due REAL NOT NULL,
  interval_s REAL NOT NULL,
  reason TEXT NOT NULL,
  failures INTEGER NOT NULL,
  last_t REAL, last_offset REAL, last_half_width REAL, last_rate REAL,
  run_id INTEGER NOT NULL REFERENCES runs(id),
  PRIMARY KEY (prober, target, address, method)
);"
    )]
}

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    name: String,
    target_ids: HashMap<String, i64>,
}

impl SqliteStore {
    /// Opens or creates the store at `path` (creating its directory), in WAL mode, migrated.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Other {
                store: name.clone(),
                message: format!("creating {}: {e}", dir.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Sqlite { store: name.clone(), source })?;
        let mut store = SqliteStore { conn, name, target_ids: HashMap::new() };
        store.setup()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { store: self.name.clone(), source }
    }

    fn setup(&mut self) -> Result<(), StoreError> {
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(self.err())?;
        let mode: String = self.conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(self.err())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Other {
                store: self.name.clone(),
                message: format!("cannot use WAL (journal mode {mode})"),
            });
        }
        self.conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;").map_err(self.err())?;
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew { store: self.name.clone(), found });
        }
        let steps = migrations();
        for (from, sql) in steps.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
            // Another process may have migrated while we waited for the write lock.
            let now: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
            if now > i64::try_from(from).unwrap_or(i64::MAX) {
                continue;
            }
            tx.execute_batch(sql).map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", from + 1))
                .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
            tx.commit().map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
        }
        Ok(())
    }

    /// The underlying connection (tests use it to inspect rows).
    #[cfg(test)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn target_id(&mut self, target: &str, now: f64) -> Result<i64, StoreError> {
        if let Some(id) = self.target_ids.get(target) {
            return Ok(*id);
        }
        let id: i64 = self
            .conn
            .query_row(
                "INSERT INTO targets (target, first_seen, last_seen) VALUES (?1, ?2, ?2)
                 ON CONFLICT (target) DO UPDATE SET last_seen = excluded.last_seen RETURNING id",
                params![target, now],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        self.target_ids.insert(target.to_string(), id);
        Ok(id)
    }
}

fn cell_to_sql(c: Cell) -> SqlValue {
    match c {
        Cell::Null => SqlValue::Null,
        Cell::Int(i) => SqlValue::Integer(i),
        Cell::Real(f) => SqlValue::Real(f),
        Cell::Text(s) => SqlValue::Text(s),
    }
}

fn sql_to_cell(v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(self.err())
    }

    fn begin_run(&mut self, info: &RunInfo) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "INSERT INTO runs (started, prober, targets_file, shard, timeaudit_version) VALUES (?1, ?2, ?3, ?4, ?5)
                 RETURNING id",
                params![info.started, info.prober, info.targets_file, info.shard, info.version],
                |r| r.get(0),
            )
            .map_err(self.err())
    }

    fn record_targets(&mut self, targets: &[TargetRecord], now: f64) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO targets (target, tags, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                     ON CONFLICT (target) DO UPDATE SET tags = excluded.tags, last_seen = excluded.last_seen
                     RETURNING id",
                )
                .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
            for t in targets {
                let id: i64 = stmt
                    .query_row(params![t.target, t.tags.join(" "), now], |r| r.get(0))
                    .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
                self.target_ids.insert(t.target.clone(), id);
            }
        }
        tx.commit().map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })
    }

    fn due_states(&mut self, prober: &str) -> Result<HashMap<DueKey, DueState>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT target, address, method, next_due, interval_s, reason, failures, last_t, last_offset,
                        last_half_width, last_rate FROM schedule WHERE prober = ?1",
            )
            .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
        let rows = stmt
            .query_map([prober], |r| {
                let reason: String = r.get(5)?;
                Ok((
                    DueKey { target: r.get(0)?, address: r.get(1)?, method: r.get(2)? },
                    reason,
                    DueState {
                        next_due: r.get(3)?,
                        interval: r.get(4)?,
                        reason: timeaudit_analysis::schedule::DueReason::Steady,
                        failures: r.get(6)?,
                        last_t: r.get(7)?,
                        last_offset: r.get(8)?,
                        last_half_width: r.get(9)?,
                        last_rate: r.get(10)?,
                    },
                ))
            })
            .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
        let mut out = HashMap::new();
        for row in rows {
            let (key, reason, mut state) =
                row.map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
            state.reason = reason.parse().map_err(|message| StoreError::BadValue {
                store: self.name.clone(),
                column: "schedule.reason".into(),
                message,
            })?;
            out.insert(key, state);
        }
        Ok(out)
    }

    fn append(&mut self, run_id: i64, prober: &str, rows: &[ProbeRow]) -> Result<(), StoreError> {
        for row in rows {
            if !self.target_ids.contains_key(&row.obs.target) {
                self.target_id(&row.obs.target, row.obs.t_send)?;
            }
        }
        let name = self.name.clone();
        let e = |source| StoreError::Sqlite { store: name.clone(), source };
        let tx = self.conn.transaction().map_err(e)?;
        {
            let placeholders: String = (0..OBSERVATION_COLUMNS.len()).map(|i| format!(", ?{}", i + 3)).collect();
            let mut ins = tx
                .prepare_cached(&format!(
                    "INSERT INTO observations (run_id, target_id, {}) VALUES (?1, ?2{placeholders})",
                    quoted_list()
                ))
                .map_err(e)?;
            let mut addr = tx
                .prepare_cached(
                    "INSERT INTO addresses (target_id, address, first_seen) VALUES (?1, ?2, ?3)
                     ON CONFLICT (target_id, address) DO NOTHING",
                )
                .map_err(e)?;
            let mut sched = tx
                .prepare_cached(
                    "INSERT INTO schedule (prober, target, address, method, next_due, interval_s, reason, failures,
                       last_t, last_offset, last_half_width, last_rate, run_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT (prober, target, address, method) DO UPDATE SET next_due = excluded.next_due,
                       interval_s = excluded.interval_s, reason = excluded.reason, failures = excluded.failures,
                       last_t = excluded.last_t, last_offset = excluded.last_offset,
                       last_half_width = excluded.last_half_width, last_rate = excluded.last_rate,
                       run_id = excluded.run_id",
                )
                .map_err(e)?;
            for row in rows {
                let tid = self.target_ids[&row.obs.target];
                let mut values: Vec<SqlValue> = vec![SqlValue::Integer(run_id), SqlValue::Integer(tid)];
                values.extend(to_cells(&row.obs).into_iter().map(cell_to_sql));
                ins.execute(rusqlite::params_from_iter(values)).map_err(e)?;
                if !row.obs.address.is_empty() {
                    addr.execute(params![tid, row.obs.address, row.obs.t_send]).map_err(e)?;
                }
                let d = &row.due;
                let method = row.obs.method.map(|m| m.as_str()).unwrap_or("");
                sched
                    .execute(params![
                        prober,
                        row.obs.target,
                        row.obs.address,
                        method,
                        d.next_due,
                        d.interval,
                        d.reason.as_str(),
                        d.failures,
                        d.last_t,
                        d.last_offset,
                        d.last_half_width,
                        d.last_rate,
                        run_id
                    ])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    fn finish_run(&mut self, run_id: i64, s: &RunSummary) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET finished = ?2, status = ?3, probed = ?4, answered = ?5, failed = ?6,
                   targets_left = ?7, worst_offset = ?8 WHERE id = ?1",
                params![
                    run_id,
                    s.finished,
                    s.status,
                    s.probed as i64,
                    s.answered as i64,
                    s.failed as i64,
                    s.targets_left as i64,
                    s.worst_offset
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    fn for_each_observation(
        &mut self,
        since: Option<f64>,
        until: Option<f64>,
        each: &mut dyn FnMut(StoredObservation) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "SELECT id, run_id, {} FROM observations WHERE t_send >= ?1 AND t_send < ?2 ORDER BY id",
            quoted_list()
        );
        let mut stmt = self.conn.prepare(&sql).map_err(self.err())?;
        let mut rows = stmt
            .query(params![since.unwrap_or(f64::NEG_INFINITY), until.unwrap_or(f64::INFINITY)])
            .map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })?;
        while let Some(r) = rows.next().map_err(|source| StoreError::Sqlite { store: self.name.clone(), source })? {
            let id: i64 = r.get(0)?;
            let run_id: i64 = r.get(1)?;
            let cells = (0..OBSERVATION_COLUMNS.len())
                .map(|i| r.get_ref(i + 2).map(sql_to_cell))
                .collect::<Result<Vec<_>, _>>()?;
            each(StoredObservation::from_row(&self.name, id, run_id, cells)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timeaudit_analysis::observation::{Method, Observation};
    use timeaudit_analysis::schedule::{ProbeOutcome, SchedulePolicy};

    fn row(i: usize) -> ProbeRow {
        let obs = Observation {
            target: format!("ntp://h{}.example", i % 7),
            address: format!("127.0.0.{}", 2 + i % 3),
            method: Some(Method::Ntp),
            port: Some(123),
            t_send: 1000.0 + i as f64,
            t_recv: 1000.5 + i as f64,
            offset: Some(i as f64 * 0.5),
            offset_lo: Some(i as f64 * 0.5 - 0.25),
            offset_hi: Some(i as f64 * 0.5 + 0.25),
            delay: Some(0.5),
            ..Observation::default()
        };
        let due = SchedulePolicy::default().next(
            None,
            &ProbeOutcome {
                t: obs.t_send,
                offset: obs.offset,
                offset_lo: obs.offset_lo,
                offset_hi: obs.offset_hi,
                error: None,
            },
        );
        ProbeRow { obs, due }
    }

    fn temp_db(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("timeaudit-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("sub/survey.sqlite")
    }

    fn info() -> RunInfo {
        RunInfo { started: 1.0, prober: "p".into(), targets_file: "t".into(), shard: None, version: "0".into() }
    }

    #[test]
    fn append_reopen_export_and_append_only() {
        let path = temp_db("basic");
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let run = s.begin_run(&info()).unwrap();
        let rows: Vec<ProbeRow> = (0..20).map(row).collect();
        s.append(run, "p", &rows[..10]).unwrap();
        s.append(run, "p", &rows[10..]).unwrap();
        drop(s);
        let mut s = SqliteStore::open(&path).unwrap();
        let mut got = vec![];
        s.for_each_observation(Some(1005.0), Some(1015.0), &mut |o| {
            got.push(o.obs);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, rows[5..15].iter().map(|r| r.obs.clone()).collect::<Vec<_>>());
        let due = s.due_states("p").unwrap();
        assert_eq!(due.len(), 20, "i mod 7, i mod 3 are distinct pairs for i < 21");
        let k = DueKey { target: "ntp://h5.example".into(), address: "127.0.0.3".into(), method: "ntp".into() };
        assert_eq!(due[&k], rows[19].due, "the last probe of a key sets its state");
        let n: i64 = s.connection().query_row("SELECT count(*) FROM addresses", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 20);
        let err = s.connection().execute("DELETE FROM observations", []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        let err = s.connection().execute("UPDATE observations SET \"offset\" = 0", []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }

    #[test]
    fn a_full_database_keeps_every_committed_batch_and_stays_readable() {
        let path = temp_db("full");
        let mut s = SqliteStore::open(&path).unwrap();
        let run = s.begin_run(&info()).unwrap();
        let page_count: i64 = s.connection().query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        // Emulate a full disk: SQLite returns SQLITE_FULL once this many pages are used.
        s.connection().query_row(&format!("PRAGMA max_page_count = {}", page_count + 4), [], |_| Ok(())).unwrap();
        let mut committed = 0usize;
        let mut failure = None;
        for batch in 0..1000 {
            let rows: Vec<ProbeRow> = (batch * 10..batch * 10 + 10).map(row).collect();
            match s.append(run, "p", &rows) {
                Ok(()) => committed += rows.len(),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let failure = failure.expect("the size limit was never reached");
        assert!(failure.is_full(), "{failure}");
        assert!(committed > 0);
        drop(s);
        let mut s = SqliteStore::open(&path).unwrap();
        let ok: String = s.connection().query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        let mut n = 0;
        s.for_each_observation(None, None, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, committed);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let path = temp_db("newer");
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        let err = SqliteStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("schema version 99 is newer"), "{err}");
    }
}
