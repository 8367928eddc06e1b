//! One entry point for measuring one address of one target by one method, producing an
//! [`Observation`]; and the fan-out of a target over its methods and resolved addresses.

use crate::clock::{Clock, SystemClock};
use crate::http;
use crate::ntp_client::{self, Exchange, NtpOptions};
use crate::resolve::{ResolveError, Resolver};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use timeaudit_analysis::observation::{ErrorKind, Method, Observation};
use timeaudit_analysis::target::{Host, Target};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Options shared by every prober.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Wait for each reply.
    pub timeout: Duration,
    /// Exchanges per NTP probe.
    pub samples: u32,
    /// Pause between NTP exchanges of one probe.
    pub interval: Duration,
    /// HTTP(S): `Some(n)` refines the one-second `Date` reading with up to `n` extra requests
    /// timed around the server's second rollover (`--precise`).
    pub precise: Option<u32>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        let ntp = NtpOptions::default();
        Self { timeout: ntp.timeout, samples: ntp.samples, interval: ntp.interval, precise: None }
    }
}

impl ProbeOptions {
    /// The NTP client's options.
    pub fn ntp(&self) -> NtpOptions {
        NtpOptions { samples: self.samples, timeout: self.timeout, interval: self.interval }
    }
}

/// An observation with only the identifying columns and an error.
pub fn failed(target: &Target, address: Option<IpAddr>, method: Method, error: ErrorKind, now: f64) -> Observation {
    Observation {
        target: target.raw.clone(),
        address: address.map(|a| a.to_string()).unwrap_or_default(),
        method: Some(method),
        port: Some(target.port_for(method)),
        t_send: now,
        t_recv: now,
        error: Some(error.to_string()),
        ..Observation::default()
    }
}

/// Measures `addr` (one address of `target`) with `method`.
pub async fn probe_address(target: &Target, addr: IpAddr, method: Method, opts: &ProbeOptions) -> Observation {
    let clock = SystemClock;
    match method {
        Method::Ntp => probe_ntp(target, addr, opts, &clock).await,
        Method::Http | Method::Https => probe_http(target, addr, method, opts).await,
    }
}

async fn probe_ntp(target: &Target, addr: IpAddr, opts: &ProbeOptions, clock: &dyn Clock) -> Observation {
    let port = target.port_for(Method::Ntp);
    let started = clock.now_unix();
    let result = ntp_client::probe(SocketAddr::new(addr, port), &opts.ntp(), clock).await;
    let mut obs = failed(target, Some(addr), Method::Ntp, ErrorKind::Timeout, started);
    obs.samples = Some(result.sent);
    obs.error = result.error.map(|e| e.to_string());
    match result.best {
        Some(ex) => fill_ntp(&mut obs, &ex),
        None => obs.t_recv = clock.now_unix(),
    }
    obs
}

async fn probe_http(target: &Target, addr: IpAddr, method: Method, opts: &ProbeOptions) -> Observation {
    let host = match &target.host {
        Host::Name(name) => name.clone(),
        Host::Ip(ip) => ip.to_string(),
    };
    let t = http::HttpTarget {
        raw: target.raw.clone(),
        host,
        addr,
        port: target.port_for(method),
        https: method == Method::Https,
        path: target.path.clone().unwrap_or_else(|| "/".to_string()),
    };
    http::probe(&t, &http::HttpOptions { timeout: opts.timeout, precise: opts.precise }).await
}

/// Copies a measured exchange into the observation's columns.
pub fn fill_ntp(obs: &mut Observation, ex: &Exchange) {
    let h = &ex.header;
    let interval = ex.sample.interval();
    obs.t_send = ex.t1_unix;
    obs.t_recv = ex.t4_unix;
    obs.offset = Some(ex.sample.offset().to_seconds());
    obs.offset_lo = Some(interval.lo);
    obs.offset_hi = Some(interval.hi);
    obs.delay = Some(ex.sample.delay().to_seconds());
    obs.stratum = Some(h.stratum);
    obs.refid = Some(h.refid_text());
    obs.leap = Some(h.leap.0);
    obs.version = Some(h.version);
    obs.poll = Some(h.poll);
    obs.precision = Some(h.precision);
    obs.root_delay = Some(h.root_delay.to_seconds());
    obs.root_dispersion = Some(h.root_dispersion.to_seconds());
    obs.reference_time = (!h.reference_ts.is_zero()).then(|| h.reference_ts.to_unix_near(ex.t1_unix));
}

/// Resolves every target and probes every address of it with every method of the target, at
/// most `concurrency` lookups and probes in flight. Rows come back in input order: by target,
/// then method, then address in the order DNS gave them. A name that does not resolve gives
/// one `dns` row per method (empty address); `on_dns_error` receives the resolver's message.
pub async fn probe_all(
    targets: &[Target],
    resolver: &Resolver,
    opts: &ProbeOptions,
    concurrency: usize,
    on_dns_error: impl Fn(&Target, &ResolveError),
) -> Vec<Observation> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let opts = Arc::new(opts.clone());
    let mut resolutions = JoinSet::new();
    for (ti, target) in targets.iter().enumerate() {
        let (resolver, permits, host) = (resolver.clone(), permits.clone(), target.host.clone());
        resolutions.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (ti, resolver.resolve(&host).await)
        });
    }
    let mut probes = JoinSet::new();
    let mut rows: Vec<((usize, usize, usize), Observation)> = Vec::new();
    let push_dns_rows = |ti: usize, rows: &mut Vec<_>| {
        let target = &targets[ti];
        let now = SystemClock.now_unix();
        for (mi, &m) in target.methods.iter().enumerate() {
            rows.push(((ti, mi, 0), failed(target, None, m, ErrorKind::Dns, now)));
        }
    };
    while let Some(joined) = resolutions.join_next().await {
        // A lookup task cannot panic short of a bug in the resolver; count it as a DNS failure.
        let Ok((ti, resolved)) = joined else { continue };
        let target = &targets[ti];
        match resolved {
            Err(e) => {
                on_dns_error(target, &e);
                push_dns_rows(ti, &mut rows);
            }
            Ok(addrs) => {
                for (mi, &method) in target.methods.iter().enumerate() {
                    for (ai, &addr) in addrs.iter().enumerate() {
                        let (permits, opts, target) = (permits.clone(), opts.clone(), target.clone());
                        probes.spawn(async move {
                            let _permit = permits.acquire_owned().await;
                            ((ti, mi, ai), probe_address(&target, addr, method, &opts).await)
                        });
                    }
                }
            }
        }
    }
    while let Some(joined) = probes.join_next().await {
        if let Ok(row) = joined {
            rows.push(row);
        }
    }
    rows.sort_by_key(|(key, _)| *key);
    rows.into_iter().map(|(_, o)| o).collect()
}
