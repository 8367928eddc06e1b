//! Mode 6 (ntpq-style READSTAT/READVAR) and mode 7 (ntpdc monlist) queries of one server, for
//! the exposure check of `timeaudit audit --control`. Only sent when the user asks: a polite
//! audit otherwise sends ordinary mode 3 queries only.

use std::net::SocketAddr;
use std::time::Duration;
use timeaudit_analysis::fleet::ControlProbe;
use timeaudit_analysis::ntp::PrivateHeader;
use timeaudit_analysis::ntp::control::{
    Progress, Reassembly, parse_associations, parse_variables, private_request, private_response, readstat_request,
    readvar_request,
};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

/// Options of the control queries.
#[derive(Clone, Copy, Debug)]
pub struct ControlOptions {
    /// How long to wait for each reply (all its fragments).
    pub timeout: Duration,
    /// At most this many associations are read with READVAR.
    pub max_peers: usize,
}

impl Default for ControlOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(1), max_peers: 8 }
    }
}

/// What the mode 6 queries of one server gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mode6Report {
    /// Whether any control reply came back.
    pub answered: bool,
    /// System variables (READVAR of association 0).
    pub system: Vec<(String, String)>,
    /// Variables of each association (READSTAT, then READVAR of each).
    pub peers: Vec<(u16, Vec<(String, String)>)>,
    /// Bytes sent.
    pub request_bytes: usize,
    /// Bytes received.
    pub response_bytes: usize,
    /// Why it failed, when it did (`timeout`, `refused`, a decode error, ...).
    pub error: Option<String>,
}

impl Mode6Report {
    /// The system variable `name`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.system.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// As the fleet audit's exposure record.
    pub fn to_probe(&self, address: &str) -> ControlProbe {
        ControlProbe {
            address: address.to_string(),
            mode: 6,
            answered: self.answered,
            request: "READVAR".into(),
            request_bytes: self.request_bytes,
            response_bytes: self.response_bytes,
            detail: self.var("version").map(str::to_string),
            sources: self
                .peers
                .iter()
                .filter_map(|(_, vars)| vars.iter().find(|(k, _)| k == "srcadr").map(|(_, v)| v.clone()))
                .collect(),
        }
    }
}

async fn socket_for(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    Ok(sock)
}

fn io_kind(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "refused".into(),
        _ => format!("io: {e}"),
    }
}

/// Sends one control request and collects its fragments.
async fn exchange(
    sock: &UdpSocket,
    request: &[u8],
    mut reassembly: Reassembly,
    wait: Duration,
    report: &mut Mode6Report,
) -> Result<Vec<u8>, String> {
    sock.send(request).await.map_err(|e| io_kind(&e))?;
    report.request_bytes += request.len();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 2048];
    loop {
        let n = match timeout_at(deadline, sock.recv(&mut buf)).await {
            Err(_) => return Err("timeout".into()),
            Ok(Err(e)) => return Err(io_kind(&e)),
            Ok(Ok(n)) => n,
        };
        report.response_bytes += n;
        report.answered = true;
        match reassembly.push(&buf[..n]) {
            Ok(Progress::Complete) => return Ok(reassembly.data()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// READVAR of the system, READSTAT, and READVAR of up to `max_peers` associations.
pub async fn query_mode6(addr: SocketAddr, opts: &ControlOptions) -> Mode6Report {
    let mut report = Mode6Report::default();
    let sock = match socket_for(addr).await {
        Ok(s) => s,
        Err(e) => {
            report.error = Some(io_kind(&e));
            return report;
        }
    };
    let op_readvar = timeaudit_analysis::ntp::ControlHeader::OP_READVAR;
    let op_readstat = timeaudit_analysis::ntp::ControlHeader::OP_READSTAT;
    let mut seq: u16 = 1;
    match exchange(&sock, &readvar_request(seq, 0), Reassembly::new(seq, op_readvar), opts.timeout, &mut report).await {
        Ok(data) => report.system = parse_variables(&data),
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    }
    seq += 1;
    let assocs =
        match exchange(&sock, &readstat_request(seq), Reassembly::new(seq, op_readstat), opts.timeout, &mut report)
            .await
        {
            Ok(data) => parse_associations(&data),
            Err(e) => {
                report.error = Some(e);
                return report;
            }
        };
    for (assoc, _status) in assocs.into_iter().take(opts.max_peers) {
        seq += 1;
        match exchange(&sock, &readvar_request(seq, assoc), Reassembly::new(seq, op_readvar), opts.timeout, &mut report)
            .await
        {
            Ok(data) => report.peers.push((assoc, parse_variables(&data))),
            Err(e) => {
                report.error = Some(e);
                break;
            }
        }
    }
    report
}

/// One mode 7 MON_GETLIST_1 (monlist) request; counts the response datagrams and bytes.
pub async fn query_mode7(addr: SocketAddr, opts: &ControlOptions) -> ControlProbe {
    let request = private_request(0, PrivateHeader::MON_GETLIST_1);
    let mut probe = ControlProbe {
        address: addr.ip().to_string(),
        mode: 7,
        answered: false,
        request: "MON_GETLIST_1".into(),
        request_bytes: request.len(),
        response_bytes: 0,
        detail: None,
        sources: Vec::new(),
    };
    let sock = match socket_for(addr).await {
        Ok(s) => s,
        Err(e) => {
            probe.detail = Some(io_kind(&e));
            return probe;
        }
    };
    if let Err(e) = sock.send(&request).await {
        probe.detail = Some(io_kind(&e));
        return probe;
    }
    let deadline = Instant::now() + opts.timeout;
    let mut buf = [0u8; 2048];
    let mut datagrams = 0usize;
    let mut items = 0usize;
    loop {
        match timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                if let Some(h) = private_response(&buf[..n], PrivateHeader::MON_GETLIST_1) {
                    probe.answered = true;
                    probe.response_bytes += n;
                    datagrams += 1;
                    items += usize::from(h.item_count);
                    if !h.more {
                        break;
                    }
                }
            }
            Ok(Err(e)) => {
                if !probe.answered {
                    probe.detail = Some(io_kind(&e));
                }
                break;
            }
            Err(_) => break,
        }
    }
    if probe.answered {
        probe.detail = Some(format!("{datagrams} datagrams, {items} monlist entries"));
    }
    probe
}
