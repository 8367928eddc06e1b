//! The lab's servers on loopback: for each misbehaving clock an NTP responder (UDP) and an HTTP
//! server sending `Date` (TCP), plus a DNS responder mapping names to them. The clock models and
//! the wire answers are pure (`timeaudit_analysis::lab`); this module only moves bytes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use timeaudit_analysis::lab::dns::{self, DnsName};
use timeaudit_analysis::lab::reply::{http_date, ntp_reply};
use timeaudit_analysis::lab::{Behaviour, LabClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// Domain under which the lab's names live.
pub const LAB_DOMAIN: &str = "lab.test";
/// Name that resolves to every server of the lab (several clocks and a silent address).
pub const LAB_ALL_NAME: &str = "all.lab.test";
/// Largest HTTP request head the lab's HTTP server reads before giving up on a connection.
pub const MAX_REQUEST_HEAD: usize = 8192;
/// Idle time after which the HTTP server closes a keep-alive connection.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A socket could not be bound.
    #[error("cannot bind the lab's {what} server to {addr}: {source}")]
    Bind {
        /// Which server.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("bad lab configuration: {0}")]
    Config(String),
}

/// What to start.
#[derive(Clone, Debug)]
pub struct LabConfig {
    /// One server per behaviour.
    pub behaviours: Vec<Behaviour>,
    /// Address of the DNS server; the clock servers take the following addresses.
    pub base: Ipv4Addr,
    /// NTP port of every server (0: the first server takes an ephemeral port, the others the same).
    pub ntp_port: u16,
    /// HTTP port of every server (0: as for NTP).
    pub http_port: u16,
    /// DNS port (0: ephemeral).
    pub dns_port: u16,
    /// Seed of the random and load-balanced clocks.
    pub seed: u64,
}

/// One running server of the lab.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LabServer {
    /// Its DNS name (`offset.lab.test`, ...).
    pub name: String,
    /// Its behaviour.
    pub behaviour: String,
    /// The class a classifier should find.
    pub expected_class: String,
    /// Its address.
    pub address: Ipv4Addr,
    /// NTP port.
    pub ntp_port: u16,
    /// HTTP port.
    pub http_port: u16,
}

/// The running lab: servers, the DNS server, and their tasks (aborted on drop).
#[derive(Debug)]
pub struct Lab {
    /// The clock servers.
    pub servers: Vec<LabServer>,
    /// The DNS server.
    pub dns: SocketAddr,
    /// True Unix time at which the clocks started.
    pub start: f64,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The system clock as Unix seconds.
pub fn now_unix() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn offset_addr(base: Ipv4Addr, i: usize) -> Result<Ipv4Addr, LabError> {
    let n = u32::from(base).checked_add(i as u32).ok_or_else(|| LabError::Config("address overflow".into()))?;
    let a = Ipv4Addr::from(n);
    if !a.is_loopback() {
        return Err(LabError::Config(format!("{a} is not a loopback address: the lab stays on 127.0.0.0/8")));
    }
    Ok(a)
}

impl Lab {
    /// Binds every socket and spawns the servers on the current tokio runtime.
    pub async fn start(config: &LabConfig) -> Result<Lab, LabError> {
        if config.behaviours.is_empty() {
            return Err(LabError::Config("no behaviours given".into()));
        }
        let start = now_unix();
        let mut servers = Vec::new();
        let mut tasks = Vec::new();
        let mut names: Vec<DnsName> = Vec::new();
        // With port 0 the first server picks a free port and every other server reuses it (they
        // are on different addresses), so one name can lead to all of them on one port.
        let (mut ntp_port_all, mut http_port_all) = (config.ntp_port, config.http_port);
        for (i, b) in config.behaviours.iter().enumerate() {
            let address = offset_addr(config.base, i + 1)?;
            let same_kind = config.behaviours[..i].iter().filter(|o| o.short_name() == b.short_name()).count();
            let name = if same_kind == 0 {
                format!("{}.{LAB_DOMAIN}", b.short_name())
            } else {
                format!("{}{}.{LAB_DOMAIN}", b.short_name(), same_kind + 1)
            };
            let clock = Arc::new(LabClock::new(b.clone(), start, config.seed.wrapping_add(i as u64)));
            let counter = Arc::new(AtomicU64::new(0));
            let ntp_at = SocketAddr::new(IpAddr::V4(address), ntp_port_all);
            let udp =
                UdpSocket::bind(ntp_at).await.map_err(|source| LabError::Bind { what: "NTP", addr: ntp_at, source })?;
            let ntp_port =
                udp.local_addr().map_err(|source| LabError::Bind { what: "NTP", addr: ntp_at, source })?.port();
            let http_at = SocketAddr::new(IpAddr::V4(address), http_port_all);
            let tcp = TcpListener::bind(http_at).await.map_err(|source| LabError::Bind {
                what: "HTTP",
                addr: http_at,
                source,
            })?;
            let http_port =
                tcp.local_addr().map_err(|source| LabError::Bind { what: "HTTP", addr: http_at, source })?.port();
            ntp_port_all = ntp_port;
            http_port_all = http_port;
            if matches!(b, Behaviour::Silent) {
                // Hold the sockets, never answer.
                tasks.push(tokio::spawn(async move {
                    let _keep = (udp, tcp);
                    std::future::pending::<()>().await;
                }));
            } else {
                tasks.push(tokio::spawn(serve_ntp(udp, clock.clone(), counter.clone())));
                tasks.push(tokio::spawn(serve_http(tcp, clock, counter)));
            }
            names.push(DnsName { name: name.clone(), addresses: vec![address] });
            servers.push(LabServer {
                name,
                behaviour: b.to_string(),
                expected_class: b.expected_class().to_string(),
                address,
                ntp_port,
                http_port,
            });
        }
        names.push(DnsName { name: LAB_ALL_NAME.into(), addresses: servers.iter().map(|s| s.address).collect() });
        let dns_at = SocketAddr::new(IpAddr::V4(config.base), config.dns_port);
        let dns_sock =
            UdpSocket::bind(dns_at).await.map_err(|source| LabError::Bind { what: "DNS", addr: dns_at, source })?;
        let dns = dns_sock.local_addr().map_err(|source| LabError::Bind { what: "DNS", addr: dns_at, source })?;
        tasks.push(tokio::spawn(serve_dns(dns_sock, names)));
        Ok(Lab { servers, dns, start, tasks })
    }
}

async fn serve_ntp(sock: UdpSocket, clock: Arc<LabClock>, counter: Arc<AtomicU64>) {
    let mut buf = [0u8; 1024];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else { continue };
        let t2_true = now_unix();
        let k = counter.fetch_add(1, Ordering::Relaxed);
        let t2 = clock.read(t2_true, k);
        let t3 = clock.read(now_unix(), k);
        if let Some(reply) = ntp_reply(&buf[..n], t2, t3) {
            let _ = sock.send_to(&reply, peer).await;
        }
    }
}

async fn serve_http(listener: TcpListener, clock: Arc<LabClock>, counter: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(http_connection(stream, clock.clone(), counter.clone()));
    }
}

/// Serves requests on one connection until the client closes it, asks to, or idles.
async fn http_connection(mut stream: TcpStream, clock: Arc<LabClock>, counter: Arc<AtomicU64>) {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > MAX_REQUEST_HEAD {
                return;
            }
            let mut chunk = [0u8; 1024];
            match tokio::time::timeout(HTTP_IDLE_TIMEOUT, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        buf.drain(..head_end);
        let is_head = head.starts_with("head ");
        let close = head.contains("\r\nconnection: close");
        let k = counter.fetch_add(1, Ordering::Relaxed);
        let date = http_date(clock.read(now_unix(), k));
        let body = "timeaudit lab\n";
        let response = format!(
            "HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: timeaudit-lab\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nCache-Control: no-store\r\n{}\r\n{}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" },
            if is_head { "" } else { body }
        );
        if stream.write_all(response.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

async fn serve_dns(sock: UdpSocket, names: Vec<DnsName>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((n, peer)) = sock.recv_from(&mut buf).await else { continue };
        if let Some(reply) = dns::answer(&buf[..n], &names) {
            let _ = sock.send_to(&reply, peer).await;
        }
    }
}
