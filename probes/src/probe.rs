//! One entry point for measuring one address of one target by one method, producing an
//! [`Observation`]; and the fan-out of a target over its methods and resolved addresses.

use crate::clock::{Clock, SystemClock};
use crate::ntp_client::{self, Exchange, NtpOptions};
use crate::resolve::Resolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use timeaudit_analysis::observation::{ErrorKind, Method, Observation};
use timeaudit_analysis::target::Target;

/// Options shared by every prober.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Wait for each reply.
    pub timeout: Duration,
    /// Exchanges per NTP probe.
    pub samples: u32,
    /// Pause between NTP exchanges of one probe.
    pub interval: Duration,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        let ntp = NtpOptions::default();
        Self { timeout: ntp.timeout, samples: ntp.samples, interval: ntp.interval }
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
        Method::Http | Method::Https => failed(target, Some(addr), method, ErrorKind::Unsupported, clock.now_unix()),
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

/// Resolves `target` and probes every address with every method of the target, one after the
/// other for one target (callers run targets concurrently). A name that does not resolve gives
/// one `dns` row per method; `on_dns_error` receives the resolver's message.
pub async fn probe_target(
    target: &Target,
    resolver: &Resolver,
    opts: &ProbeOptions,
    on_dns_error: &(dyn Fn(&str) + Sync),
) -> Vec<Observation> {
    let addrs = match resolver.resolve(&target.host).await {
        Ok(a) => a,
        Err(e) => {
            on_dns_error(&e.to_string());
            let now = SystemClock.now_unix();
            return target.methods.iter().map(|&m| failed(target, None, m, ErrorKind::Dns, now)).collect();
        }
    };
    let mut jobs = Vec::new();
    for &method in &target.methods {
        for &addr in &addrs {
            jobs.push(probe_address(target, addr, method, opts));
        }
    }
    join_all(jobs).await
}

/// Runs futures concurrently on the current task, keeping their order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut set = Vec::with_capacity(futures.len());
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().flatten().collect()
}
