//! Name resolution for probes: every A and AAAA record of a name (hickory-resolver, no hosts
//! file, no cache), address literals without DNS, and an optional explicit DNS server.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use timeaudit_analysis::target::Host;

/// Timeout of one DNS query attempt.
pub const DNS_QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts per DNS query.
pub const DNS_ATTEMPTS: usize = 2;

/// Why a host did not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The system resolver configuration could not be read.
    #[error("cannot read the system DNS configuration: {0}")]
    SystemConfig(String),
    /// The resolver could not be built.
    #[error("cannot build the DNS resolver: {0}")]
    Build(String),
    /// The lookup failed (no such name, no records, server failure or timeout).
    #[error("{host}: DNS lookup failed: {reason}")]
    Lookup {
        /// The name looked up.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The name exists but has neither A nor AAAA records.
    #[error("{host}: no A or AAAA records")]
    NoAddresses {
        /// The name looked up.
        host: String,
    },
}

/// Resolves target hosts to every address.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

fn measurement_options() -> ResolverOpts {
    let mut opts = ResolverOpts::default();
    // Set explicitly: the crate's docs and code disagree on the default.
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.cache_size = 0;
    opts.timeout = DNS_QUERY_TIMEOUT;
    opts.attempts = DNS_ATTEMPTS;
    opts
}

impl Resolver {
    /// A resolver using the system's name servers (`/etc/resolv.conf`), or `server` when given
    /// (UDP and TCP on its port; tests run one on loopback).
    pub fn new(server: Option<SocketAddr>) -> Result<Self, ResolveError> {
        let (config, mut opts) = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                (ResolverConfig::from_name_servers(vec![ns]), ResolverOpts::default())
            }
            None => hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| ResolveError::SystemConfig(e.to_string()))?,
        };
        let m = measurement_options();
        opts.ip_strategy = m.ip_strategy;
        opts.use_hosts_file = m.use_hosts_file;
        opts.cache_size = m.cache_size;
        opts.timeout = m.timeout;
        opts.attempts = m.attempts;
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| ResolveError::Build(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Every A and AAAA address of `host` (IPv4 first, each once, in the order received); an
    /// address literal is returned as is.
    pub async fn resolve(&self, host: &Host) -> Result<Vec<IpAddr>, ResolveError> {
        let name = match host {
            Host::Ip(ip) => return Ok(vec![*ip]),
            Host::Name(name) => name,
        };
        let lookup = self
            .inner
            .lookup_ip(name.as_str())
            .await
            .map_err(|e| ResolveError::Lookup { host: name.clone(), reason: e.to_string() })?;
        let mut out: Vec<IpAddr> = Vec::new();
        for ip in lookup.iter() {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        if out.is_empty() {
            return Err(ResolveError::NoAddresses { host: name.clone() });
        }
        Ok(out)
    }
}
