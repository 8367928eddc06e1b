//! PostgreSQL backend of the survey store (`--db postgres://USER@HOST:PORT/DB`): the same tables
//! as the SQLite store, so several probers (shards, vantage points) can write into one database at
//! once. Migrations run under an advisory lock; the schema version lives in `schema_version`.
//! The driver is async (tokio-postgres); this backend owns a small runtime of its own, so call it
//! from outside any tokio runtime.

use super::columns::{Cell, Kind, OBSERVATION_COLUMNS, quoted_list, to_cells};
use super::{
    DueKey, ProbeRow, RunInfo, RunSummary, SCHEMA_VERSION, Store, StoreError, StoredObservation, TargetRecord,
};
use std::collections::HashMap;
use timeaudit_analysis::schedule::DueState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

/// Advisory lock key held while migrating ("timeaudi" in ASCII).
const MIGRATION_LOCK: i64 = 0x7469_6d65_6175_6469;

fn migrations() -> Vec<String> {
    let obs_cols: String = OBSERVATION_COLUMNS
        .iter()
        .map(|(name, kind)| {
            let ty = match kind {
                Kind::Text => "TEXT",
                Kind::Int => "BIGINT",
                Kind::Real => "DOUBLE PRECISION",
            };
            let not_null = if matches!(*name, "target" | "address" | "t_send" | "t_recv") { " NOT NULL" } else { "" };
            format!(",\n  \"{name}\" {ty}{not_null}")
        })
        .collect();
    vec![format!(
        "CREATE TABLE runs (
  id BIGSERIAL PRIMARY KEY,
  started DOUBLE PRECISION NOT NULL,
  finished DOUBLE PRECISION,
  prober TEXT NOT NULL,
  targets_file TEXT NOT NULL,
  shard TEXT,
  timeaudit_version TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'running',
  probed BIGINT, answered BIGINT, failed BIGINT, targets_left BIGINT, worst_offset DOUBLE PRECISION
);
CREATE TABLE targets (
  id BIGSERIAL PRIMARY KEY,
  target TEXT NOT NULL UNIQUE,
  tags TEXT NOT NULL DEFAULT '',
  first_seen DOUBLE PRECISION NOT NULL,
  last_seen DOUBLE PRECISION NOT NULL
);
CREATE TABLE addresses (
  id BIGSERIAL PRIMARY KEY,
  target_id BIGINT NOT NULL REFERENCES targets(id),
  address TEXT NOT NULL,
  first_seen DOUBLE PRECISION NOT NULL,
  UNIQUE (target_id, address)
);
CREATE TABLE observations (
  id BIGSERIAL PRIMARY KEY,
  run_id BIGINT NOT NULL REFERENCES runs(id),
  target_id BIGINT NOT NULL REFERENCES targets(id){obs_cols}
);
CREATE INDEX observations_t_send ON observations (t_send);
CREATE INDEX observations_key ON observations (target, address, method, t_send);
CREATE FUNCTION observations_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'observations are append-only'; END $$;
CREATE TRIGGER observations_no_change BEFORE UPDATE OR DELETE ON observations
  FOR EACH ROW EXECUTE FUNCTION observations_append_only();
CREATE TABLE schedule (
  prober TEXT NOT NULL,
  target TEXT NOT NULL,
  address TEXT NOT NULL,
  method TEXT NOT NULL,
  next_due DOUBLE PRECISION NOT NULL,
  interval_s DOUBLE PRECISION NOT NULL,
  reason TEXT NOT NULL,
  failures BIGINT NOT NULL,
  last_t DOUBLE PRECISION, last_offset DOUBLE PRECISION, last_half_width DOUBLE PRECISION,
  last_rate DOUBLE PRECISION,
  run_id BIGINT NOT NULL REFERENCES runs(id),
  PRIMARY KEY (prober, target, address, method)
);"
    )]
}

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgStore {
    rt: tokio::runtime::Runtime,
    client: Client,
    name: String,
    target_ids: HashMap<String, i64>,
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl PgStore {
    /// Connects to `url` and migrates the schema.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let name = redact(url);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Other { store: name.clone(), message: format!("starting a runtime: {e}") })?;
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = client.map_err(|source| StoreError::Postgres { store: name.clone(), source })?;
        let mut store = PgStore { rt, client, name, target_ids: HashMap::new() };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        |source| StoreError::Postgres { store: self.name.clone(), source }
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let steps = migrations();
        let name = self.name.clone();
        let e = |source| StoreError::Postgres { store: name.clone(), source };
        let client = &mut self.client;
        self.rt.block_on(async {
            let tx = client.transaction().await.map_err(e)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(e)?;
            tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)").await.map_err(e)?;
            let found: Option<i64> =
                tx.query_opt("SELECT max(version) FROM schema_version", &[]).await.map_err(e)?.and_then(|r| r.get(0));
            let found = found.unwrap_or(0);
            if found > SCHEMA_VERSION {
                return Err(StoreError::TooNew { store: name.clone(), found });
            }
            for (from, sql) in steps.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
                tx.batch_execute(sql).await.map_err(e)?;
                let v = i64::try_from(from + 1).unwrap_or(i64::MAX);
                tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&v]).await.map_err(e)?;
            }
            tx.commit().await.map_err(e)
        })
    }
}

fn cell_param(c: Cell, kind: Kind) -> Box<dyn ToSql + Sync + Send> {
    match (c, kind) {
        (Cell::Null, Kind::Text) => Box::new(None::<String>),
        (Cell::Null, Kind::Int) => Box::new(None::<i64>),
        (Cell::Null, Kind::Real) => Box::new(None::<f64>),
        (Cell::Int(i), Kind::Real) => Box::new(Some(i as f64)),
        (Cell::Int(i), _) => Box::new(Some(i)),
        (Cell::Real(f), _) => Box::new(Some(f)),
        (Cell::Text(s), _) => Box::new(Some(s)),
    }
}

impl Store for PgStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        let row = self.rt.block_on(self.client.query_one("SELECT max(version) FROM schema_version", &[]));
        let row = row.map_err(self.err())?;
        Ok(row.get::<_, Option<i64>>(0).unwrap_or(0))
    }

    fn begin_run(&mut self, info: &RunInfo) -> Result<i64, StoreError> {
        let row = self.rt.block_on(self.client.query_one(
            "INSERT INTO runs (started, prober, targets_file, shard, timeaudit_version) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
            &[&info.started, &info.prober, &info.targets_file, &info.shard, &info.version],
        ));
        Ok(row.map_err(self.err())?.get(0))
    }

    fn record_targets(&mut self, targets: &[TargetRecord], now: f64) -> Result<(), StoreError> {
        let name = self.name.clone();
        let e = |source| StoreError::Postgres { store: name.clone(), source };
        // Sorted, so that probers upserting overlapping lists lock rows in one order.
        let mut sorted: Vec<&TargetRecord> = targets.iter().collect();
        sorted.sort_by(|a, b| a.target.cmp(&b.target));
        let client = &mut self.client;
        let ids = &mut self.target_ids;
        self.rt.block_on(async {
            let tx = client.transaction().await.map_err(e)?;
            let stmt = tx
                .prepare(
                    "INSERT INTO targets (target, tags, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                     ON CONFLICT (target) DO UPDATE SET tags = excluded.tags, last_seen = excluded.last_seen
                     RETURNING id",
                )
                .await
                .map_err(e)?;
            for t in sorted {
                let row = tx.query_one(&stmt, &[&t.target, &t.tags.join(" "), &now]).await.map_err(e)?;
                ids.insert(t.target.clone(), row.get(0));
            }
            tx.commit().await.map_err(e)
        })
    }

    fn due_states(&mut self, prober: &str) -> Result<HashMap<DueKey, DueState>, StoreError> {
        let rows = self.rt.block_on(self.client.query(
            "SELECT target, address, method, next_due, interval_s, reason, failures, last_t, last_offset,
                    last_half_width, last_rate FROM schedule WHERE prober = $1",
            &[&prober],
        ));
        let mut out = HashMap::new();
        for r in rows.map_err(self.err())? {
            let reason: String = r.get(5);
            let failures: i64 = r.get(6);
            out.insert(
                DueKey { target: r.get(0), address: r.get(1), method: r.get(2) },
                DueState {
                    next_due: r.get(3),
                    interval: r.get(4),
                    reason: reason.parse().map_err(|message| StoreError::BadValue {
                        store: self.name.clone(),
                        column: "schedule.reason".into(),
                        message,
                    })?,
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    last_t: r.get(7),
                    last_offset: r.get(8),
                    last_half_width: r.get(9),
                    last_rate: r.get(10),
                },
            );
        }
        Ok(out)
    }

    fn append(&mut self, run_id: i64, prober: &str, rows: &[ProbeRow]) -> Result<(), StoreError> {
        let missing: Vec<TargetRecord> = rows
            .iter()
            .filter(|r| !self.target_ids.contains_key(&r.obs.target))
            .map(|r| TargetRecord { target: r.obs.target.clone(), tags: vec![] })
            .collect();
        if !missing.is_empty() {
            let now = rows.first().map_or(0.0, |r| r.obs.t_send);
            self.record_targets(&missing, now)?;
        }
        let name = self.name.clone();
        let e = |source| StoreError::Postgres { store: name.clone(), source };
        // Sorted by schedule key so concurrent probers take row locks in one order.
        let mut order: Vec<&ProbeRow> = rows.iter().collect();
        order.sort_by(|a, b| (&a.obs.target, &a.obs.address).cmp(&(&b.obs.target, &b.obs.address)));
        let client = &mut self.client;
        let ids = &self.target_ids;
        self.rt.block_on(async {
            let tx = client.transaction().await.map_err(e)?;
            let placeholders: String = (0..OBSERVATION_COLUMNS.len()).map(|i| format!(", ${}", i + 3)).collect();
            let ins = tx
                .prepare(&format!(
                    "INSERT INTO observations (run_id, target_id, {}) VALUES ($1, $2{placeholders})",
                    quoted_list()
                ))
                .await
                .map_err(e)?;
            let addr = tx
                .prepare(
                    "INSERT INTO addresses (target_id, address, first_seen) VALUES ($1, $2, $3)
                     ON CONFLICT (target_id, address) DO NOTHING",
                )
                .await
                .map_err(e)?;
            let sched = tx
                .prepare(
                    "INSERT INTO schedule (prober, target, address, method, next_due, interval_s, reason, failures,
                       last_t, last_offset, last_half_width, last_rate, run_id)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     ON CONFLICT (prober, target, address, method) DO UPDATE SET next_due = excluded.next_due,
                       interval_s = excluded.interval_s, reason = excluded.reason, failures = excluded.failures,
                       last_t = excluded.last_t, last_offset = excluded.last_offset,
                       last_half_width = excluded.last_half_width, last_rate = excluded.last_rate,
                       run_id = excluded.run_id",
                )
                .await
                .map_err(e)?;
            for row in order {
                let tid = ids[&row.obs.target];
                let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(run_id), Box::new(tid)];
                for (cell, (_, kind)) in to_cells(&row.obs).into_iter().zip(OBSERVATION_COLUMNS) {
                    params.push(cell_param(cell, *kind));
                }
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
                tx.execute(&ins, &refs).await.map_err(e)?;
                if !row.obs.address.is_empty() {
                    tx.execute(&addr, &[&tid, &row.obs.address, &row.obs.t_send]).await.map_err(e)?;
                }
                let d = &row.due;
                let method = row.obs.method.map(|m| m.as_str()).unwrap_or("");
                let failures = i64::from(d.failures);
                tx.execute(
                    &sched,
                    &[
                        &prober,
                        &row.obs.target,
                        &row.obs.address,
                        &method,
                        &d.next_due,
                        &d.interval,
                        &d.reason.as_str(),
                        &failures,
                        &d.last_t,
                        &d.last_offset,
                        &d.last_half_width,
                        &d.last_rate,
                        &run_id,
                    ],
                )
                .await
                .map_err(e)?;
            }
            tx.commit().await.map_err(e)
        })
    }

    fn finish_run(&mut self, run_id: i64, s: &RunSummary) -> Result<(), StoreError> {
        let (p, a, f, l) = (s.probed as i64, s.answered as i64, s.failed as i64, s.targets_left as i64);
        let res = self.rt.block_on(self.client.execute(
            "UPDATE runs SET finished = $2, status = $3, probed = $4, answered = $5, failed = $6,
               targets_left = $7, worst_offset = $8 WHERE id = $1",
            &[&run_id, &s.finished, &s.status, &p, &a, &f, &l, &s.worst_offset],
        ));
        res.map(|_| ()).map_err(self.err())
    }

    fn for_each_observation(
        &mut self,
        since: Option<f64>,
        until: Option<f64>,
        each: &mut dyn FnMut(StoredObservation) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "SELECT id, run_id, {} FROM observations WHERE t_send >= $1 AND t_send < $2 ORDER BY id",
            quoted_list()
        );
        let lo = since.unwrap_or(f64::NEG_INFINITY);
        let hi = until.unwrap_or(f64::INFINITY);
        let rows = self.rt.block_on(self.client.query(&sql, &[&lo, &hi])).map_err(self.err())?;
        for r in rows {
            let id: i64 = r.get(0);
            let run_id: i64 = r.get(1);
            let cells: Vec<Cell> = OBSERVATION_COLUMNS
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| match kind {
                    Kind::Text => r.get::<_, Option<String>>(i + 2).map_or(Cell::Null, Cell::Text),
                    Kind::Int => r.get::<_, Option<i64>>(i + 2).map_or(Cell::Null, Cell::Int),
                    Kind::Real => r.get::<_, Option<f64>>(i + 2).map_or(Cell::Null, Cell::Real),
                })
                .collect();
            each(StoredObservation::from_row(&self.name, id, run_id, cells)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
