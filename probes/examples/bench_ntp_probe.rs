//! Benchmark driver for `scripts/bench-ntp-probe`: runs COUNT one-exchange NTP probes of one
//! server through `probe::probe_all` (the code path of `timeaudit probe`, without argument
//! parsing and output) at a given concurrency, and prints probes per second and the process's
//! peak resident memory (VmHWM).
//!
//! Usage: bench_ntp_probe ADDR:PORT COUNT CONCURRENCY [ROUNDS]
//! With several rounds, the median round is reported (runs of a few milliseconds are noisy).

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use timeaudit_analysis::observation::Method;
use timeaudit_analysis::target::Target;
use timeaudit_probes::probe::{ProbeOptions, probe_all};
use timeaudit_probes::resolve::Resolver;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (addr, count, concurrency, rounds) = match args.as_slice() {
        [_, a, n, c] => (a, n, c, "1"),
        [_, a, n, c, r] => (a, n, c, r.as_str()),
        _ => return Err("usage: bench_ntp_probe ADDR:PORT COUNT CONCURRENCY [ROUNDS]".into()),
    };
    let rounds: usize = rounds.parse::<usize>()?.max(1);
    let addr: SocketAddr = addr.parse()?;
    let count: usize = count.parse()?;
    let concurrency: usize = concurrency.parse()?;
    let target = Target::parse(&format!("ntp://{addr}"), &[Method::Ntp])?;
    let targets = vec![target; count];
    let opts = ProbeOptions {
        timeout: Duration::from_secs(2),
        samples: 1,
        interval: Duration::ZERO,
        ..ProbeOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let resolver = Resolver::new(Some(addr))?;
    let mut runs = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let rows = runtime.block_on(probe_all(&targets, &resolver, &opts, concurrency, |_, _| {}));
        runs.push((started.elapsed().as_secs_f64(), rows));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, rows) = runs.swap_remove(rounds / 2);
    let answered = rows.iter().filter(|o| o.answered()).count();
    let mut delays: Vec<f64> = rows.iter().filter_map(|o| o.delay).collect();
    delays.sort_by(f64::total_cmp);
    let median_delay_ms = delays.get(delays.len() / 2).map_or(f64::NAN, |d| d * 1e3);
    println!(
        "concurrency={concurrency} probes={count} rounds={rounds} answered={answered} seconds={seconds:.3} probes_per_s={:.0} \
         median_delay_ms={median_delay_ms:.3} peak_rss_kib={}",
        count as f64 / seconds,
        peak_rss_kib().unwrap_or(0)
    );
    Ok(())
}
