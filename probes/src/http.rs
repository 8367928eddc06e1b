//! HTTP(S) `Date` prober: reads a web server's clock at one resolved address (Host header and TLS
//! SNI keep the name), optionally narrowing the one-second `Date` reading by bisecting the
//! server's second rollover over one keep-alive connection (`--precise`).
//!
//! Certificate problems never stop a measurement (the clock is what is audited): a verifier
//! wrapping webpki records them (`expired`, `not_yet_valid`, `self_signed`, `unknown_issuer`,
//! `name_mismatch`) and lets the handshake go on; handshake signatures are still checked.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clock::{Clock, SystemClock};
use reqwest::header::{HeaderMap, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use timeaudit_analysis::certinfo::{self, Validity};
use timeaudit_analysis::httpdate::{self, DateReading};
use timeaudit_analysis::observation::{ErrorKind, Method, Observation};

/// Default time limit of one HTTP exchange (connect, TLS, headers).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default number of extra requests of `--precise` (resolution 2^-8 s ≈ 4 ms plus one round trip).
pub const DEFAULT_PRECISE_REQUESTS: u32 = 8;
/// How early the prober wakes before a planned send, to be on time despite timer granularity.
pub const SCHEDULING_LEAD: Duration = Duration::from_millis(3);
/// Refinement stops once the interval is narrower than this many round trips plus
/// [`REFINE_FLOOR`] (further requests cannot narrow it).
pub const REFINE_STOP_DELAYS: f64 = 2.0;
/// See [`REFINE_STOP_DELAYS`].
pub const REFINE_FLOOR: f64 = 0.001;
/// Largest GET body read to keep the connection alive for the next request; larger bodies are
/// dropped (and the connection with them).
pub const MAX_BODY_DRAIN: usize = 256 * 1024;
/// Query parameter that makes each request URL unique so that caches do not answer it.
pub const CACHE_BUST_PARAM: &str = "timeaudit";

/// What to probe: one address of one target.
#[derive(Clone, Debug)]
pub struct HttpTarget {
    /// The target as the user wrote it (copied to `Observation::target`).
    pub raw: String,
    /// Host name (or address literal) for the Host header and SNI.
    pub host: String,
    /// The address to connect to.
    pub addr: IpAddr,
    /// TCP port.
    pub port: u16,
    /// HTTPS (true) or plain HTTP.
    pub https: bool,
    /// Path (and query) starting with `/`.
    pub path: String,
}

/// Tuning of one probe.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Time limit of each exchange.
    pub timeout: Duration,
    /// `Some(n)`: up to `n` extra requests bisecting the second rollover.
    pub precise: Option<u32>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions { timeout: DEFAULT_TIMEOUT, precise: None }
    }
}

/// The system clock ([`SystemClock`]) read once, then advanced by the monotonic clock, so that
/// a local clock step during a probe does not distort its intervals, and send times can be
/// scheduled as `Instant`s.
#[derive(Debug, Clone, Copy)]
struct AnchoredClock {
    unix: f64,
    mono: Instant,
}

impl AnchoredClock {
    fn new() -> Self {
        AnchoredClock { unix: SystemClock.now_unix(), mono: Instant::now() }
    }
    fn now(&self) -> f64 {
        self.unix + self.mono.elapsed().as_secs_f64()
    }
    fn instant_at(&self, unix: f64) -> Instant {
        let d = unix - self.unix;
        if d <= 0.0 { self.mono } else { self.mono + Duration::from_secs_f64(d) }
    }
}

/// Records certificate problems instead of failing the handshake.
#[derive(Debug)]
struct AuditingVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<rustls::crypto::CryptoProvider>,
    problems: Mutex<Vec<String>>,
}

/// The system's trust anchors (`/etc/ssl/certs` and friends), loaded once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            Arc::new(roots)
        })
        .clone()
}

impl AuditingVerifier {
    fn new(roots: Arc<RootCertStore>, provider: Arc<rustls::crypto::CryptoProvider>) -> Self {
        AuditingVerifier { roots, provider, problems: Mutex::new(Vec::new()) }
    }

    fn take_problems(&self) -> Option<String> {
        let mut p = self.problems.lock().map(|mut g| std::mem::take(&mut *g)).unwrap_or_default();
        p.dedup();
        (!p.is_empty()).then(|| p.join(","))
    }

    /// The problems of one certificate chain, `[]` when it verifies.
    fn problems_of(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let parsed = match rustls::server::ParsedCertificate::try_from(end_entity) {
            Ok(p) => p,
            Err(e) => return vec![format!("bad_certificate:{e}")],
        };
        // Check the chain at a time inside the validity period, so that issuer problems show
        // even on expired certificates; the validity itself is judged separately.
        let now_s = now.as_secs() as i64;
        let mut chain_time = now;
        let mut self_issued = false;
        match certinfo::parse(end_entity) {
            Ok(info) => {
                match info.validity_at(now_s) {
                    Validity::Expired => problems.push("expired".to_string()),
                    Validity::NotYetValid => problems.push("not_yet_valid".to_string()),
                    Validity::Valid => {}
                }
                let t = now_s.clamp(info.not_before, info.not_after).max(0);
                chain_time = UnixTime::since_unix_epoch(Duration::from_secs(t as u64));
                self_issued = info.self_issued;
            }
            Err(_) => problems.push("bad_certificate".to_string()),
        }
        let chain = rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            chain_time,
            self.provider.signature_verification_algorithms.all,
        );
        if let Err(e) = chain {
            use rustls::CertificateError as C;
            // An untrusted certificate whose issuer is its own subject is self-signed, whatever
            // webpki tripped on first (a self-signed CA certificate used as end entity, say).
            let problem = match e {
                _ if self_issued => "self_signed",
                rustls::Error::InvalidCertificate(c) => match c {
                    C::UnknownIssuer => "unknown_issuer",
                    C::Expired | C::ExpiredContext { .. } => "expired",
                    C::NotValidYet | C::NotValidYetContext { .. } => "not_yet_valid",
                    C::BadSignature => "bad_signature",
                    C::Revoked => "revoked",
                    C::NotValidForName | C::NotValidForNameContext { .. } => "name_mismatch",
                    C::InvalidPurpose | C::InvalidPurposeContext { .. } => "invalid_purpose",
                    _ => "invalid",
                },
                _ => "invalid",
            };
            problems.push(problem.to_string());
        }
        if rustls::client::verify_server_name(&parsed, server_name).is_err() {
            problems.push("name_mismatch".into());
        }
        problems.sort();
        problems.dedup();
        problems
    }
}

impl ServerCertVerifier for AuditingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let problems = self.problems_of(end_entity, intermediates, server_name, now);
        if let Ok(mut g) = self.problems.lock() {
            g.extend(problems);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A failed exchange: the error kind of the observation and a detail for logs.
#[derive(Debug)]
struct Failure {
    kind: ErrorKind,
}

/// Classifies a reqwest error into the observation's error kinds.
fn classify(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(e) = src {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return ErrorKind::Refused,
                std::io::ErrorKind::TimedOut => return ErrorKind::Timeout,
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                    return ErrorKind::BadReply;
                }
                _ => {}
            }
            // io::Error::source() skips the error it wraps: look inside explicitly.
            let mut inner = io.get_ref();
            while let Some(i) = inner {
                if i.is::<rustls::Error>() {
                    return ErrorKind::Tls;
                }
                inner = i.downcast_ref::<std::io::Error>().and_then(|x| x.get_ref());
            }
        }
        if e.is::<rustls::Error>() {
            return ErrorKind::Tls;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                return ErrorKind::BadReply;
            }
            if h.is_incomplete_message() {
                return ErrorKind::BadReply;
            }
        }
        src = e.source();
    }
    if err.is_connect() { ErrorKind::Io } else { ErrorKind::BadReply }
}

/// One timed exchange and the headers that matter.
#[derive(Debug)]
struct Exchange {
    t_send: f64,
    t_recv: f64,
    status: u16,
    headers: HeaderMap,
}

struct Prober {
    client: reqwest::Client,
    verifier: Arc<AuditingVerifier>,
    base_url: String,
    clock: AnchoredClock,
    use_get: bool,
    counter: u64,
    nonce: u64,
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

impl Prober {
    fn new(t: &HttpTarget, opts: &HttpOptions) -> Result<Self, ErrorKind> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // reqwest (feature rustls-no-provider) panics when it needs the process-wide provider
        // and none is installed; installing twice is harmless (Err means one is there).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let verifier = Arc::new(AuditingVerifier::new(system_roots(), provider.clone()));
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| ErrorKind::Tls)?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let host_in_url = match t.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            Ok(IpAddr::V4(v4)) => v4.to_string(),
            Err(_) => t.host.trim_start_matches('[').trim_end_matches(']').to_string(),
        };
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .http1_only()
            .user_agent(concat!("timeaudit/", env!("CARGO_PKG_VERSION")));
        if host_in_url.parse::<IpAddr>().is_err() && !host_in_url.starts_with('[') {
            builder = builder.resolve(&host_in_url, SocketAddr::new(t.addr, t.port));
        }
        let client = builder.build().map_err(|_| ErrorKind::Tls)?;
        let scheme = if t.https { "https" } else { "http" };
        let path = if t.path.starts_with('/') { t.path.clone() } else { format!("/{}", t.path) };
        let nonce = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
            ^ (u64::from(std::process::id()) << 32);
        Ok(Prober {
            client,
            verifier,
            base_url: format!("{scheme}://{host_in_url}:{}{path}", t.port),
            clock: AnchoredClock::new(),
            use_get: false,
            counter: 0,
            nonce,
        })
    }

    /// A unique URL per request so that no cache between us and the origin answers it.
    fn next_url(&mut self) -> String {
        self.counter += 1;
        let sep = if self.base_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{CACHE_BUST_PARAM}={:x}-{}", self.base_url, self.nonce, self.counter)
    }

    async fn once(&mut self, get: bool) -> Result<Exchange, Failure> {
        let url = self.next_url();
        let method = if get { reqwest::Method::GET } else { reqwest::Method::HEAD };
        let req = self
            .client
            .request(method, url)
            .header("Cache-Control", "no-cache")
            .header("Pragma", "no-cache")
            .build()
            .map_err(|_| Failure { kind: ErrorKind::Io })?;
        let t_send = self.clock.now();
        let resp = self.client.execute(req).await;
        let t_recv = self.clock.now();
        let mut resp = resp.map_err(|e| Failure { kind: classify(&e) })?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if get {
            // Drain a small body so the connection can serve the next request.
            let mut read = 0usize;
            while read <= MAX_BODY_DRAIN {
                match resp.chunk().await {
                    Ok(Some(c)) => read += c.len(),
                    _ => break,
                }
            }
        }
        Ok(Exchange { t_send, t_recv, status, headers })
    }

    /// HEAD, or GET when the server refuses HEAD (405, 501) — remembered for later requests.
    async fn exchange(&mut self) -> Result<Exchange, Failure> {
        if !self.use_get {
            let x = self.once(false).await?;
            if x.status != 405 && x.status != 501 {
                return Ok(x);
            }
            self.use_get = true;
        }
        self.once(true).await
    }
}

/// Probes one address: one exchange, then with `precise` up to n more timed around the server's
/// second rollover. Never fails: errors become `Observation::error`.
pub async fn probe(t: &HttpTarget, opts: &HttpOptions) -> Observation {
    let mut obs = Observation {
        target: t.raw.clone(),
        address: t.addr.to_string(),
        method: Some(if t.https { Method::Https } else { Method::Http }),
        port: Some(t.port),
        ..Observation::default()
    };
    let mut prober = match Prober::new(t, opts) {
        Ok(p) => p,
        Err(kind) => {
            obs.error = Some(kind.to_string());
            return obs;
        }
    };
    let first = prober.exchange().await;
    obs.cert_problem = prober.verifier.take_problems();
    let first = match first {
        Ok(x) => x,
        Err(f) => {
            obs.t_send = prober.clock.now();
            obs.t_recv = obs.t_send;
            obs.error = Some(f.kind.to_string());
            return obs;
        }
    };
    obs.t_send = first.t_send;
    obs.t_recv = first.t_recv;
    obs.delay = Some(first.t_recv - first.t_send);
    obs.samples = Some(1);
    obs.http_status = Some(first.status);
    obs.server = header_str(&first.headers, "server");
    obs.age = header_str(&first.headers, "age").and_then(|a| a.trim().parse().ok());
    if (300..400).contains(&first.status) {
        obs.redirect = header_str(&first.headers, "location");
    }
    obs.date = header_str(&first.headers, "date");
    let Some(raw_date) = obs.date.clone() else {
        obs.error = Some(if first.status >= 400 { ErrorKind::HttpStatus } else { ErrorKind::NoDate }.to_string());
        return obs;
    };
    let date = match httpdate::parse_http_date(&raw_date) {
        Ok(d) => d,
        Err(_) => {
            obs.error = Some(ErrorKind::BadDate.to_string());
            return obs;
        }
    };
    let mut readings = vec![DateReading { t_send: first.t_send, t_recv: first.t_recv, date }];
    if let Some(n) = opts.precise {
        refine(&mut prober, &mut readings, &mut obs, n).await;
    }
    if let Some(narrowed) = httpdate::narrow(&readings) {
        // Readings that contradict each other mean the remote clock does not run at our rate
        // (stuck, stepped): the bisection's premise fails, so keep only the last reading's own
        // interval, which holds for the clock as it was during that exchange.
        let interval = match readings.last() {
            Some(last) if !narrowed.consistent => last.interval(),
            _ => narrowed.interval,
        };
        obs.offset_lo = Some(interval.lo);
        obs.offset_hi = Some(interval.hi);
        obs.offset = Some(interval.mid());
    }
    obs
}

/// The sub-second refinement: up to `n` requests on the same (keep-alive) connection, each sent
/// to arrive when the server's clock would turn a second if the offset were the middle of the
/// current interval ([`httpdate::plan_next`]). Stops early once a round trip limits the width,
/// or at the first failed exchange (what was learnt so far is kept).
async fn refine(prober: &mut Prober, readings: &mut Vec<DateReading>, obs: &mut Observation, n: u32) {
    let lead = SCHEDULING_LEAD.as_secs_f64();
    for _ in 0..n {
        let Some(plan) = httpdate::plan_next(readings, prober.clock.now(), lead) else { break };
        let min_delay = readings.iter().map(DateReading::delay).fold(f64::INFINITY, f64::min);
        if plan.interval.width() <= REFINE_STOP_DELAYS * min_delay + REFINE_FLOOR {
            break;
        }
        if !timed_reading(prober, readings, obs, plan.send_at).await {
            return;
        }
    }
    // The closing check: catches clocks that do not run at our rate (a stuck clock looks
    // consistent over the less than a second that bisection readings span).
    if readings.len() >= 2
        && let Some(check) = httpdate::plan_check(readings, prober.clock.now(), lead)
    {
        timed_reading(prober, readings, obs, check.send_at).await;
    }
}

/// Sends one request at local time `send_at` and appends its reading; false when the exchange
/// failed or carried no usable `Date`.
async fn timed_reading(
    prober: &mut Prober,
    readings: &mut Vec<DateReading>,
    obs: &mut Observation,
    send_at: f64,
) -> bool {
    let send_at = prober.clock.instant_at(send_at);
    // Sleep to just before the send time, then yield until it (timer granularity is ~1 ms).
    tokio::time::sleep_until((send_at - SCHEDULING_LEAD).max(Instant::now()).into()).await;
    while Instant::now() < send_at {
        tokio::task::yield_now().await;
    }
    let Ok(x) = prober.exchange().await else { return false };
    let Some(date) = header_str(&x.headers, "date").and_then(|d| httpdate::parse_http_date(&d).ok()) else {
        return false;
    };
    readings.push(DateReading { t_send: x.t_send, t_recv: x.t_recv, date });
    obs.t_send = x.t_send;
    obs.t_recv = x.t_recv;
    obs.delay = Some(x.t_recv - x.t_send);
    obs.date = header_str(&x.headers, "date");
    obs.samples = Some(readings.len() as u32);
    true
}
