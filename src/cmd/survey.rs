//! `timeaudit survey`: the cron job. Reads a targets file, resolves every name to all its
//! addresses, probes each due (target, address, method) politely, commits each probe to the store
//! as it completes (in small batches), reschedules it with the adaptive policy, and prints one
//! summary line.
//!
//! Exit status: 0 the run completed (unanswered hosts are data, not errors); 2 usage or fatal
//! error (bad targets file, store cannot be opened); 3 the `--deadline` came with probes left (what
//! was measured is stored); 4 another survey holds the lock (nothing probed); 5 the store failed
//! mid-run, e.g. a full disk (every batch committed before is kept); 130 / 143 stopped by SIGINT /
//! SIGTERM after committing every completed probe.

use crate::store::{self, DueKey, ProbeRow, RunInfo, RunSummary, Store, TargetRecord};
use anyhow::Context;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use timeaudit_analysis::observation::{ErrorKind, Method, Observation};
use timeaudit_analysis::schedule::{DueState, ProbeOutcome, SchedulePolicy, is_due};
use timeaudit_analysis::target::Target;
use timeaudit_analysis::targets_file::{Shard, TargetLine, fnv1a64, parse_targets_file};
use timeaudit_probes::clock::{Clock, SystemClock};
use timeaudit_probes::politeness::{Limits, Politeness};
use timeaudit_probes::probe::{ProbeOptions, failed, probe_address};
use timeaudit_probes::resolve::Resolver;
use tokio::task::JoinSet;

/// Exit status: the run completed.
pub const EXIT_OK: u8 = 0;
/// Exit status: usage or fatal error.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: the deadline came with probes left.
pub const EXIT_DEADLINE: u8 = 3;
/// Exit status: another survey holds the lock.
pub const EXIT_LOCKED: u8 = 4;
/// Exit status: the store failed mid-run.
pub const EXIT_STORE: u8 = 5;
/// Exit status after SIGINT (128 + 2).
pub const EXIT_SIGINT: u8 = 130;
/// Exit status after SIGTERM (128 + 15).
pub const EXIT_SIGTERM: u8 = 143;

/// Rows per store transaction at most.
pub const BATCH_ROWS: usize = 64;
/// Longest a completed probe waits before its batch is committed. Zero means group commit: a
/// probe is committed as soon as no other completed probe is already waiting, so a batch holds
/// only what completed while the previous transaction was being written, and a killed run loses
/// at most the rows of the one transaction in flight.
pub const BATCH_INTERVAL: Duration = Duration::ZERO;
/// Slack added to a probe's own time budget before it is cut off.
pub const PROBE_SLACK: Duration = Duration::from_secs(1);

/// Arguments of `timeaudit survey`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 completed (unanswered hosts are data); 2 usage or fatal error; \
3 deadline reached with probes left; 4 another survey holds the lock (nothing probed); \
5 the store failed mid-run (earlier commits kept); 130/143 stopped by SIGINT/SIGTERM after \
committing every completed probe.")]
pub struct SurveyArgs {
    /// Targets file: one target per line (name, address, ntp:// http:// https:// URL), `#`
    /// comments, optional tags after the target.
    #[arg(long, value_name = "FILE")]
    pub targets: PathBuf,
    /// Store: a SQLite file, or `postgres://USER@HOST:PORT/DB`. Default
    /// `$XDG_DATA_HOME/timeaudit/survey.sqlite` (`~/.local/share/timeaudit/survey.sqlite`).
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
    /// Probe everything now, ignoring due times.
    #[arg(long)]
    pub all: bool,
    /// Take only share I of N of the targets (0-based; by a stable hash of the target).
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Queries per second over all addresses.
    #[arg(long, value_name = "Q", default_value_t = 20.0)]
    pub rate: f64,
    /// Probes in flight at once.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub concurrency: usize,
    /// Minimum seconds between two queries to one address.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    pub gap: f64,
    /// Seconds to wait for each reply.
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    pub timeout: f64,
    /// Stop starting probes after this many seconds (e.g. the cron interval) and exit 3 if any
    /// were left.
    #[arg(long, value_name = "S")]
    pub deadline: Option<f64>,
    /// DNS server to use instead of the system's (tests run one on loopback).
    #[arg(long, value_name = "HOST:PORT")]
    pub resolver: Option<SocketAddr>,
    /// NTP exchanges per probe (the minimum-delay one is kept), each paced by --rate and --gap.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub samples: u32,
    /// Name of this prober (vantage point) in the store; default the host name.
    #[arg(long, value_name = "NAME")]
    pub prober: Option<String>,
    /// Lock file. Default: next to a SQLite store (`STORE.lock`), else in the temp directory.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

impl SurveyArgs {
    fn validate(&self) -> anyhow::Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(anyhow::anyhow!("--{name} must be a positive number of seconds"))
            }
        };
        if !(self.rate.is_finite() && self.rate > 0.0) {
            anyhow::bail!("--rate must be a positive number of queries per second");
        }
        if self.concurrency == 0 {
            anyhow::bail!("--concurrency must be at least 1");
        }
        if !(self.gap.is_finite() && self.gap >= 0.0) {
            anyhow::bail!("--gap must be zero or a positive number of seconds");
        }
        positive("timeout", self.timeout)?;
        if let Some(d) = self.deadline {
            positive("deadline", d)?;
        }
        if self.samples == 0 {
            anyhow::bail!("--samples must be at least 1");
        }
        Ok(())
    }
}

/// One due probe.
#[derive(Debug, Clone)]
struct Job {
    target: usize,
    addr: IpAddr,
    method: Method,
}

/// Driver → writer messages.
enum Msg {
    Planned(usize),
    Row(Box<Observation>),
    Done { stop: Stop, left_targets: HashSet<usize>, left_probes: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Completed,
    Deadline,
    Signal(i32),
    Cancelled,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn lock_path(args: &SurveyArgs, db_path: Option<&Path>) -> PathBuf {
    if let Some(p) = &args.lock {
        return p.clone();
    }
    let shard = args.shard.map(|s| format!(".shard-{}-of-{}", s.index, s.count)).unwrap_or_default();
    match db_path {
        Some(db) => {
            let mut s = db.as_os_str().to_owned();
            s.push(format!("{shard}.lock"));
            PathBuf::from(s)
        }
        None => {
            let key = format!("{}\n{}", args.db.as_deref().unwrap_or(""), args.targets.display());
            std::env::temp_dir().join(format!("timeaudit-survey-{:016x}{shard}.lock", fnv1a64(key.as_bytes())))
        }
    }
}

/// Takes the run lock; `Ok(None)` when another run holds it.
fn take_lock(path: &Path) -> anyhow::Result<Option<File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            writeln!(file, "{}", std::process::id())?;
            Ok(Some(file))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// Runs the survey subcommand.
pub fn run(args: SurveyArgs) -> anyhow::Result<ExitCode> {
    args.validate()?;
    let t_start = Instant::now();
    let file_name = args.targets.display().to_string();
    let text = std::fs::read_to_string(&args.targets).with_context(|| format!("reading targets file {file_name}"))?;
    let mut lines: Vec<TargetLine> = parse_targets_file(&file_name, &text)?;
    if let Some(shard) = args.shard {
        lines.retain(|l| shard.owns(&l.target.raw));
    }

    let db_path: Option<PathBuf> = match &args.db {
        Some(db) if store::is_postgres_url(db) => None,
        Some(db) => Some(PathBuf::from(db)),
        None => Some(store::default_sqlite_path()?),
    };
    let lock_file = lock_path(&args, db_path.as_deref());
    let Some(_lock) = take_lock(&lock_file)? else {
        let holder = std::fs::read_to_string(&lock_file).unwrap_or_default();
        eprintln!(
            "timeaudit: another survey is running (lock {} held by pid {}); not probing",
            lock_file.display(),
            holder.trim()
        );
        return Ok(ExitCode::from(EXIT_LOCKED));
    };

    // Signals are caught from here on: a SIGTERM during a commit lets the commit finish.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let stop_signal = Arc::new(AtomicBool::new(false));
    let signals = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
    })?;

    let mut store: Box<dyn Store> = match &db_path {
        Some(p) => store::open(Some(&p.to_string_lossy()))?,
        None => store::open(args.db.as_deref())?,
    };
    let clock = SystemClock;
    let prober = args.prober.clone().unwrap_or_else(host_name);
    let run_id = store.begin_run(&RunInfo {
        started: clock.now_unix(),
        prober: prober.clone(),
        targets_file: file_name.clone(),
        shard: args.shard.map(|s| s.to_string()),
        version: env!("CARGO_PKG_VERSION").to_string(),
    })?;
    let records: Vec<TargetRecord> =
        lines.iter().map(|l| TargetRecord { target: l.target.raw.clone(), tags: l.tags.clone() }).collect();
    store.record_targets(&records, clock.now_unix())?;
    let mut due: HashMap<DueKey, DueState> = store.due_states(&prober)?;

    let resolver = Resolver::new(args.resolver).context("setting up the DNS resolver")?;
    let gap = Duration::from_secs_f64(args.gap);
    let opts = ProbeOptions {
        timeout: Duration::from_secs_f64(args.timeout),
        samples: args.samples,
        interval: Duration::ZERO,
        precise: None,
    };
    let limits = Limits {
        concurrency: args.concurrency,
        rate: args.rate,
        gap,
        timeout: opts.timeout,
        deadline: args.deadline.map(Duration::from_secs_f64),
    };
    let politeness = Politeness::new(limits);
    let targets: Arc<Vec<Target>> = Arc::new(lines.into_iter().map(|l| l.target).collect());

    let (tx, rx) = mpsc::channel::<Msg>();
    let driver = Driver {
        targets: Arc::clone(&targets),
        due: due.clone(),
        all: args.all,
        resolver,
        opts,
        politeness,
        tx,
        cancel: Arc::clone(&stop_signal),
        now: clock.now_unix(),
    };
    let handle = rt.spawn(driver.run(signals));

    // The writer: this thread, outside the runtime, owns the store.
    let policy = SchedulePolicy::default();
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} probes {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut batch: Vec<ProbeRow> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let mut summary = RunSummary::default();
    let mut worst: Option<(f64, String)> = None;
    let mut store_failure: Option<anyhow::Error> = None;
    let mut outcome: Option<(Stop, HashSet<usize>, usize)> = None;

    let flush = |store: &mut Box<dyn Store>, batch: &mut Vec<ProbeRow>, failure: &mut Option<anyhow::Error>| {
        if batch.is_empty() || failure.is_some() {
            return;
        }
        if let Err(e) = store.append(run_id, &prober, batch) {
            let full = if e.is_full() { " (disk full?)" } else { "" };
            *failure = Some(anyhow::Error::new(e).context(format!("storing {} probes{full}", batch.len())));
        }
        batch.clear();
    };

    while outcome.is_none() {
        let wait = match oldest {
            Some(t) => BATCH_INTERVAL.saturating_sub(t.elapsed()),
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(Msg::Planned(n)) => bar.set_length(n as u64),
            Ok(Msg::Row(obs)) => {
                let obs = *obs;
                summary.probed += 1;
                if obs.answered() {
                    summary.answered += 1;
                    let off = obs.offset.unwrap_or(0.0);
                    if worst.as_ref().is_none_or(|(w, _)| off.abs() > w.abs()) {
                        worst = Some((off, format!("{} {}", obs.target, obs.address)));
                    }
                } else {
                    summary.failed += 1;
                }
                let key = DueKey {
                    target: obs.target.clone(),
                    address: obs.address.clone(),
                    method: obs.method.map(|m| m.as_str().to_string()).unwrap_or_default(),
                };
                let state = policy.next(
                    due.get(&key),
                    &ProbeOutcome {
                        t: obs.t_send,
                        offset: obs.offset,
                        offset_lo: obs.offset_lo,
                        offset_hi: obs.offset_hi,
                        error: obs.error.as_deref(),
                    },
                );
                due.insert(key, state.clone());
                batch.push(ProbeRow { obs, due: state });
                oldest.get_or_insert_with(Instant::now);
                bar.inc(1);
                if batch.len() >= BATCH_ROWS {
                    flush(&mut store, &mut batch, &mut store_failure);
                    oldest = None;
                }
            }
            Ok(Msg::Done { stop, left_targets, left_probes }) => outcome = Some((stop, left_targets, left_probes)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                flush(&mut store, &mut batch, &mut store_failure);
                oldest = None;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => outcome = Some((Stop::Cancelled, HashSet::new(), 0)),
        }
        if store_failure.is_some() {
            stop_signal.store(true, Ordering::SeqCst);
        }
    }
    flush(&mut store, &mut batch, &mut store_failure);
    bar.finish_and_clear();
    let _ = rt.block_on(handle);
    rt.shutdown_timeout(Duration::from_millis(100));

    let (stop, left_targets, left_probes) = outcome.unwrap_or((Stop::Cancelled, HashSet::new(), 0));
    let status = match (&store_failure, stop) {
        (Some(_), _) => "store_error",
        (None, Stop::Completed) => "completed",
        (None, Stop::Deadline) => "deadline",
        (None, Stop::Signal(_) | Stop::Cancelled) => "interrupted",
    };
    summary.status = status.to_string();
    summary.finished = clock.now_unix();
    summary.targets_left = left_targets.len() as u64;
    summary.worst_offset = worst.as_ref().map(|(w, _)| *w);
    if store_failure.is_none()
        && let Err(e) = store.finish_run(run_id, &summary)
    {
        store_failure = Some(anyhow::Error::new(e).context("recording the end of the run"));
    }

    let worst_text = match &worst {
        Some((w, what)) => format!("worst offset {w:+.6} s ({what})"),
        None => "worst offset -".to_string(),
    };
    let mut line = format!(
        "survey: probed {}, answered {}, failed {}, {:.2} s, {worst_text}",
        summary.probed,
        summary.answered,
        summary.failed,
        t_start.elapsed().as_secs_f64()
    );
    if left_probes > 0 {
        line.push_str(&format!(", {} targets left ({left_probes} probes)", left_targets.len()));
    }
    match stop {
        Stop::Deadline => line.push_str(", stopped at the deadline"),
        Stop::Signal(sig) => line.push_str(&format!(", stopped by signal {sig}")),
        _ => {}
    }
    println!("{line}");
    if let Some(e) = store_failure {
        eprintln!("timeaudit: error: {} ({e:#}); measurements committed before are kept", store.describe());
        return Ok(ExitCode::from(EXIT_STORE));
    }
    Ok(ExitCode::from(match stop {
        Stop::Completed => EXIT_OK,
        Stop::Deadline if left_probes > 0 => EXIT_DEADLINE,
        Stop::Deadline => EXIT_OK,
        Stop::Signal(2) => EXIT_SIGINT,
        Stop::Signal(_) => EXIT_SIGTERM,
        Stop::Cancelled => EXIT_ERROR,
    }))
}

struct Driver {
    targets: Arc<Vec<Target>>,
    due: HashMap<DueKey, DueState>,
    all: bool,
    resolver: Resolver,
    opts: ProbeOptions,
    politeness: Politeness,
    tx: mpsc::Sender<Msg>,
    cancel: Arc<AtomicBool>,
    now: f64,
}

impl Driver {
    fn key_due(&self, target: &Target, address: &str, method: Method) -> bool {
        let key =
            DueKey { target: target.raw.clone(), address: address.to_string(), method: method.as_str().to_string() };
        is_due(self.due.get(&key), self.now, self.all)
    }

    async fn run(self, signals: (tokio::signal::unix::Signal, tokio::signal::unix::Signal)) {
        let (mut sigint, mut sigterm) = signals;
        let signalled = async move {
            tokio::select! {
                _ = sigint.recv() => 2,
                _ = sigterm.recv() => 15,
            }
        };
        tokio::pin!(signalled);
        let cancel = Arc::clone(&self.cancel);
        let cancelled = async move {
            while !cancel.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::pin!(cancelled);

        // Resolve every target (names concurrently), then keep what is due.
        let mut resolving: JoinSet<(usize, Result<Vec<IpAddr>, String>)> = JoinSet::new();
        let dns_slots = Arc::new(tokio::sync::Semaphore::new(self.politeness.limits().concurrency.max(1)));
        for (i, t) in self.targets.iter().enumerate() {
            let resolver = self.resolver.clone();
            let host = t.host.clone();
            let slots = Arc::clone(&dns_slots);
            resolving.spawn(async move {
                let _slot = slots.acquire_owned().await;
                (i, resolver.resolve(&host).await.map_err(|e| e.to_string()))
            });
        }
        let mut addrs: Vec<Option<Vec<IpAddr>>> = vec![None; self.targets.len()];
        let mut stop: Option<Stop> = None;
        loop {
            tokio::select! {
                sig = &mut signalled => { stop = Some(Stop::Signal(sig)); break; }
                _ = &mut cancelled => { stop = Some(Stop::Cancelled); break; }
                next = resolving.join_next() => match next {
                    None => break,
                    Some(Ok((i, Ok(a)))) => addrs[i] = Some(a),
                    // The row (error `dns`, no address) is the record: cron stays quiet.
                    Some(Ok((i, Err(_)))) => {
                        addrs[i] = Some(Vec::new());
                        let t = &self.targets[i];
                        for &m in &t.methods {
                            if self.key_due(t, "", m) {
                                let obs = failed(t, None, m, ErrorKind::Dns, SystemClock.now_unix());
                                let _ = self.tx.send(Msg::Row(Box::new(obs)));
                            }
                        }
                    }
                    Some(Err(_)) => {}
                }
            }
        }
        resolving.abort_all();

        // Order: method by method, then target by target, so that the probes of one address are
        // far apart in the queue and the per-address gap rarely holds up the others.
        let mut jobs: Vec<Job> = Vec::new();
        for method in Method::ALL {
            for (i, t) in self.targets.iter().enumerate() {
                if !t.methods.contains(&method) {
                    continue;
                }
                for &addr in addrs[i].iter().flatten() {
                    if self.key_due(t, &addr.to_string(), method) {
                        jobs.push(Job { target: i, addr, method });
                    }
                }
            }
        }
        let _ = self.tx.send(Msg::Planned(jobs.len()));

        let mut running: JoinSet<usize> = JoinSet::new();
        let mut in_flight: HashMap<tokio::task::Id, usize> = HashMap::new();
        let mut next_job = 0usize;
        let samples = self.opts.samples.max(1);
        // Each query is one exchange; the survey spaces the samples of a probe itself so that
        // every query goes through the rate and gap limits.
        let mut one = self.opts.clone();
        one.samples = 1;
        let budget = one.timeout + PROBE_SLACK;
        if stop.is_none() {
            while next_job < jobs.len() {
                let job = jobs[next_job].clone();
                let admitted = tokio::select! {
                    sig = &mut signalled => { stop = Some(Stop::Signal(sig)); break; }
                    _ = &mut cancelled => { stop = Some(Stop::Cancelled); break; }
                    a = async {
                        let slot = self.politeness.slot().await?;
                        self.politeness.pace(job.addr).await.map(|_| slot)
                    } => a,
                };
                let Ok(slot) = admitted else {
                    stop = Some(Stop::Deadline);
                    break;
                };
                next_job += 1;
                let targets = Arc::clone(&self.targets);
                let opts = one.clone();
                let tx = self.tx.clone();
                let politeness = self.politeness.clone();
                let idx = next_job - 1;
                let queries = if job.method == Method::Ntp { samples } else { 1 };
                let h = running.spawn(async move {
                    let _slot = slot;
                    let t = &targets[job.target];
                    let mut best: Option<Observation> = None;
                    let mut last: Option<Observation> = None;
                    let mut sent = 0u32;
                    for q in 0..queries {
                        if q > 0 && politeness.pace(job.addr).await.is_err() {
                            break;
                        }
                        if job.method == Method::Ntp
                            && let Some(code) = politeness.denied(job.addr)
                        {
                            // The address said DENY/RSTR (to this or another target): ask no more.
                            if sent == 0 {
                                let now = SystemClock.now_unix();
                                last = Some(failed(t, Some(job.addr), job.method, ErrorKind::Kod(code), now));
                            }
                            break;
                        }
                        let started = SystemClock.now_unix();
                        let obs =
                            match tokio::time::timeout(budget, probe_address(t, job.addr, job.method, &opts)).await {
                                Ok(obs) => obs,
                                Err(_) => failed(t, Some(job.addr), job.method, ErrorKind::Timeout, started),
                            };
                        sent += 1;
                        if let Some(Ok(ErrorKind::Kod(code))) = obs.error.as_deref().map(str::parse::<ErrorKind>) {
                            politeness.kiss(job.addr, code);
                        }
                        let kod = obs.error.as_deref().is_some_and(|e| e.starts_with("kod:"));
                        if obs.answered() && best.as_ref().is_none_or(|b| obs.delay < b.delay) {
                            best = Some(obs.clone());
                        }
                        let unanswered = !obs.answered();
                        last = Some(obs);
                        if unanswered && !kod {
                            // Refused, timed out or garbled: one failed query is the answer.
                            break;
                        }
                        if kod {
                            // Honour a Kiss-o'-Death at once: report it, ask no more.
                            best = None;
                            break;
                        }
                    }
                    if let Some(mut obs) = best.or(last) {
                        if job.method == Method::Ntp {
                            obs.samples = Some(sent);
                        }
                        let _ = tx.send(Msg::Row(Box::new(obs)));
                    }
                    idx
                });
                in_flight.insert(h.id(), idx);
                // Reap finished tasks so the map stays small.
                while let Some(done) = running.try_join_next_with_id() {
                    match done {
                        Ok((id, _)) => in_flight.remove(&id),
                        Err(e) => in_flight.remove(&e.id()),
                    };
                }
            }
        }
        // Let the probes in flight finish, unless stopped or past the deadline.
        let deadline = self.politeness.deadline_at();
        loop {
            if running.is_empty() {
                break;
            }
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                sig = &mut signalled, if stop.is_none() || stop == Some(Stop::Deadline) => {
                    stop = Some(Stop::Signal(sig)); break;
                }
                _ = &mut cancelled, if stop != Some(Stop::Cancelled) => { stop = Some(Stop::Cancelled); break; }
                _ = until_deadline => { stop = stop.or(Some(Stop::Deadline)); break; }
                done = running.join_next_with_id() => match done {
                    Some(Ok((id, _))) => { in_flight.remove(&id); }
                    Some(Err(e)) => { in_flight.remove(&e.id()); }
                    None => break,
                }
            }
        }
        running.abort_all();
        while let Some(done) = running.join_next_with_id().await {
            // A probe that finished while being aborted has sent its row.
            if let Ok((id, _)) = done {
                in_flight.remove(&id);
            }
        }
        let mut left: Vec<usize> = in_flight.into_values().collect();
        left.extend(next_job..jobs.len());
        let left_targets: HashSet<usize> = left.iter().map(|&j| jobs[j].target).collect();
        let left_probes = left.len();
        let _ = self.tx.send(Msg::Done { stop: stop.unwrap_or(Stop::Completed), left_targets, left_probes });
    }
}
