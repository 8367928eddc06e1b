//! Classifier benchmark (not a test): accuracy on the project's ground-truth generator —
//! confusion matrix, per-class F1 and macro-F1 by method and by series length — and throughput
//! on 100,000 series of 100 points, single thread and all cores.
//!
//! Run: `cargo bench -p timeaudit-analysis --bench classify` (or `scripts/bench-classify`).
//! Environment: `BENCH_SERIES` series per class and cell (default 100; 30 at n = 2000),
//! `BENCH_THROUGHPUT` number of series for the throughput run (default 100000; 0 skips it),
//! `BENCH_SEED`, and the generator knobs of [`sim_config`].

use rand::SeedableRng;
use rand::rngs::StdRng;
use rayon::prelude::*;
use std::time::Instant;
use timeaudit_analysis::classify::score::Confusion;
use timeaudit_analysis::classify::{Class, Classifier, ClassifierParams, Sample, samples_from_observations};
use timeaudit_analysis::observation::Method;
use timeaudit_analysis::simulate::{SimConfig, simulate};

const CLASSES: [Class; 8] = [
    Class::Ok,
    Class::Offset,
    Class::Drifting,
    Class::Stuck,
    Class::Resetting,
    Class::LoadBalanced,
    Class::Random,
    Class::Changed,
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The generator's configuration, with the robustness knobs overridable from the environment:
/// `SIM_JITTER` (clock jitter σ, s), `SIM_RTT` (median RTT, s), `SIM_OUTLIER`, `SIM_STALE`,
/// `SIM_INTERVAL` (mean probe interval, s), `SIM_UNEVEN` (0 regular .. 1 exponential gaps).
fn sim_config() -> SimConfig {
    let d = SimConfig::default();
    SimConfig {
        clock_jitter_s: env_f64("SIM_JITTER", d.clock_jitter_s),
        rtt_median_s: env_f64("SIM_RTT", d.rtt_median_s),
        outlier_prob: env_f64("SIM_OUTLIER", d.outlier_prob),
        stale_prob: env_f64("SIM_STALE", d.stale_prob),
        mean_interval_s: env_f64("SIM_INTERVAL", d.mean_interval_s),
        interval_jitter: env_f64("SIM_UNEVEN", d.interval_jitter),
        ..d
    }
}

fn gen_cell(method: Method, n: usize, per_class: usize, seed: u64) -> Vec<(Class, Vec<Sample>, usize)> {
    let cfg = sim_config();
    let mut out = Vec::new();
    for (ci, &class) in CLASSES.iter().enumerate() {
        for k in 0..per_class {
            let mut rng = StdRng::seed_from_u64(
                seed ^ ((n as u64) << 40) ^ ((ci as u64) << 32) ^ (k as u64) ^ ((method as u64) << 56),
            );
            let s = simulate(class, method, n, &cfg, &mut rng);
            let (samples, failed) = samples_from_observations(&s.observations);
            out.push((class, samples, failed));
        }
    }
    out
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, and
    // then it only smoke-tests itself on a few series instead of printing the full figures.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let seed = env_usize("BENCH_SEED", 20_261_122) as u64;
    let per_class = if smoke { 2 } else { env_usize("BENCH_SERIES", 100) };
    let params = ClassifierParams::default();
    let lengths = [6usize, 10, 30, 200, 2000];
    println!("# Classifier accuracy on the timeaudit generator (seed {seed}, {per_class} series per class and cell)\n");
    println!("generator: {:?}\n", sim_config());
    let mut by_method_all = Vec::new();
    let mut summary = Vec::new();
    for method in [Method::Http, Method::Ntp] {
        let mut all = Confusion::default();
        for &n in &lengths {
            let k = if n >= 2000 { per_class.min(30) } else { per_class };
            let cell = gen_cell(method, n, k, seed);
            let t = Instant::now();
            let verdicts: Vec<(Class, Class)> = cell
                .par_iter()
                .map_init(
                    || Classifier::new(params.clone()),
                    |c, (truth, s, failed)| (*truth, c.classify(s, *failed).class),
                )
                .collect();
            let dt = t.elapsed();
            let mut conf = Confusion::default();
            for (t, p) in verdicts {
                conf.add(t, p);
            }
            println!(
                "## method {method}, n = {n} ({} series, classified in {:.2} s)\n",
                conf.total(),
                dt.as_secs_f64()
            );
            println!("{}", conf.table());
            println!("macro-F1 {:.3}  accuracy {:.3}\n", conf.macro_f1(), conf.accuracy());
            summary.push((method, n, conf.clone()));
            all.merge(&conf);
        }
        by_method_all.push((method, all));
    }
    println!("## Summary: macro-F1 (and F1 of ok / offset / drifting / stuck)\n");
    println!(
        "{:>6} {:>6} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "method", "n", "macro-F1", "ok", "offset", "drift", "stuck", "reset", "lb", "random", "changed"
    );
    for (m, n, c) in &summary {
        print!("{:>6} {:>6} {:>9.3}", m.as_str(), n, c.macro_f1());
        for cl in CLASSES {
            print!(" {:>6.3}", c.f1(cl));
        }
        println!();
    }
    for (m, c) in &by_method_all {
        println!("all lengths, {m}: macro-F1 {:.3}", c.macro_f1());
    }

    // Throughput.
    let total = if smoke { 200 } else { env_usize("BENCH_THROUGHPUT", 100_000) };
    if total == 0 {
        return;
    }
    println!("\n## Throughput: {total} series of 100 points (mixed classes, HTTP and NTP)\n");
    let cfg = sim_config();
    let series: Vec<(Vec<Sample>, usize)> = (0..total)
        .into_par_iter()
        .map(|i| {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64 * 7919));
            let method = if i % 2 == 0 { Method::Http } else { Method::Ntp };
            let s = simulate(CLASSES[i % CLASSES.len()], method, 100, &cfg, &mut rng);
            samples_from_observations(&s.observations)
        })
        .collect();
    let t = Instant::now();
    let mut c = Classifier::new(params.clone());
    let mut h = 0usize;
    for (s, f) in &series {
        h += c.classify(s, *f).class as usize;
    }
    let single = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let h2: usize = series
        .par_iter()
        .map_init(|| Classifier::new(params.clone()), |c, (s, f)| c.classify(s, *f).class as usize)
        .sum();
    let multi = t.elapsed().as_secs_f64();
    assert_eq!(h, h2, "single-thread and parallel runs disagree");
    let threads = rayon::current_num_threads();
    println!("single thread : {single:>7.2} s  {:>9.0} series/s", total as f64 / single);
    println!(
        "{threads} threads     : {multi:>7.2} s  {:>9.0} series/s  (speed-up {:.2}x over single thread)",
        total as f64 / multi,
        single / multi
    );
}
