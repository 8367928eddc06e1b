//! Politeness and limits of a survey: a global concurrency cap, a global query rate (a token
//! bucket of depth one: queries evenly paced, never a burst), a minimum gap between two queries to one
//! address, the per-probe timeout, and a deadline for the whole run after which nothing new
//! starts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeaudit_analysis::ntp::KissCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Limits of one survey run.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Queries per second over all addresses (> 0).
    pub rate: f64,
    /// Minimum time between the starts of two queries to one address.
    pub gap: Duration,
    /// Longest one probe may take.
    pub timeout: Duration,
    /// Longest the whole run may take; nothing starts after it.
    pub deadline: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 64,
            rate: 50.0,
            gap: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            deadline: None,
        }
    }
}

/// Why a probe could not be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Its start slot would fall after the run's deadline.
    #[error("the run's deadline has passed")]
    Deadline,
}

/// Shared admission control for one run. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Politeness {
    limits: Limits,
    started: Instant,
    deadline_at: Option<Instant>,
    slots: Arc<Semaphore>,
    pace: Arc<Mutex<Pace>>,
    /// Addresses that answered with a Kiss-o'-Death demanding that queries stop (DENY, RSTR).
    denied: Arc<Mutex<HashMap<IpAddr, KissCode>>>,
}

#[derive(Debug)]
struct Pace {
    /// Earliest start of the next query anywhere.
    next_global: Instant,
    /// Earliest start of the next query to each address.
    next_per_addr: HashMap<IpAddr, Instant>,
    /// When the last query really started, anywhere.
    last_global: Option<Instant>,
    /// When the last query to each address really started.
    last_per_addr: HashMap<IpAddr, Instant>,
}

/// Held while a probe runs; dropping it frees a concurrency slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Politeness {
    /// Starts the clock of a run now.
    pub fn new(limits: Limits) -> Self {
        let started = Instant::now();
        let concurrency = limits.concurrency.max(1);
        Politeness {
            deadline_at: limits.deadline.map(|d| started + d),
            started,
            slots: Arc::new(Semaphore::new(concurrency)),
            pace: Arc::new(Mutex::new(Pace {
                next_global: started,
                next_per_addr: HashMap::new(),
                last_global: None,
                last_per_addr: HashMap::new(),
            })),
            denied: Arc::new(Mutex::new(HashMap::new())),
            limits,
        }
    }

    /// Records that `addr` sent a Kiss-o'-Death demanding that queries stop (DENY, RSTR): for the
    /// rest of the run nothing more is sent to it, whichever target or port led there. Other kiss
    /// codes (RATE) only end the probe that received them and are ignored here.
    pub fn kiss(&self, addr: IpAddr, code: KissCode) {
        if code.demands_stop() {
            self.denied.lock().unwrap_or_else(|e| e.into_inner()).entry(addr).or_insert(code);
        }
    }

    /// The kiss code with which `addr` demanded that queries stop, if it did.
    pub fn denied(&self, addr: IpAddr) -> Option<KissCode> {
        self.denied.lock().unwrap_or_else(|e| e.into_inner()).get(&addr).copied()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether the deadline has passed.
    pub fn past_deadline(&self) -> bool {
        self.deadline_at.is_some_and(|d| Instant::now() >= d)
    }

    /// The deadline instant, if any.
    pub fn deadline_at(&self) -> Option<Instant> {
        self.deadline_at
    }

    /// Waits for a concurrency slot (one per probe in flight; a probe may send several queries).
    pub async fn slot(&self) -> Result<Slot, Refused> {
        let permit = Arc::clone(&self.slots).acquire_owned().await.map_err(|_| Refused::Deadline)?;
        Ok(Slot { _permit: permit })
    }

    /// Reserves the earliest start of one query to `addr` that keeps both the global rate (one
    /// query per `1/rate` seconds) and the per-address gap, then sleeps until it. Refuses when
    /// that start would fall after the deadline. Call it before every query.
    pub async fn pace(&self, addr: IpAddr) -> Result<Instant, Refused> {
        let start = {
            let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let addr_next = pace.next_per_addr.get(&addr).copied().unwrap_or(now);
            let start = now.max(pace.next_global).max(addr_next);
            if self.deadline_at.is_some_and(|d| start >= d) {
                return Err(Refused::Deadline);
            }
            pace.next_global = start + Duration::from_secs_f64(1.0 / self.limits.rate.max(1e-6));
            pace.next_per_addr.insert(addr, start + self.limits.gap);
            start
        };
        tokio::time::sleep_until(start).await;
        // A late wake-up (a busy machine) must not bring this query closer to the previous one
        // than the limits allow: check against the times queries really went out, wait more if
        // needed, and record this one.
        let per_query = Duration::from_secs_f64(1.0 / self.limits.rate.max(1e-6));
        loop {
            let wait = {
                let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                let mut need = now;
                if let Some(last) = pace.last_global {
                    need = need.max(last + per_query);
                }
                if let Some(last) = pace.last_per_addr.get(&addr) {
                    need = need.max(*last + self.limits.gap);
                }
                if need <= now {
                    pace.last_global = Some(now);
                    pace.last_per_addr.insert(addr, now);
                    None
                } else {
                    Some(need)
                }
            };
            match wait {
                None => return Ok(start),
                Some(t) => tokio::time::sleep_until(t).await,
            }
        }
    }

    /// The time a probe admitted now may take: the per-probe timeout.
    pub fn probe_timeout(&self) -> Duration {
        self.limits.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kod_deny_or_rstr_stops_every_query_to_the_address_rate_does_not() {
        let p = Politeness::new(limits(10.0, 0, 1));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        p.kiss(a, KissCode::RATE);
        assert_eq!(p.denied(a), None, "RATE ends one probe only");
        p.kiss(a, KissCode::DENY);
        p.kiss(a, KissCode::RSTR);
        assert_eq!(p.denied(a), Some(KissCode::DENY), "the first stop code is kept");
        let clone = p.clone();
        clone.kiss(b, KissCode::RSTR);
        assert_eq!(p.denied(b), Some(KissCode::RSTR), "shared by every clone of the run");
    }

    fn limits(rate: f64, gap_ms: u64, concurrency: usize) -> Limits {
        Limits {
            concurrency,
            rate,
            gap: Duration::from_millis(gap_ms),
            timeout: Duration::from_secs(1),
            deadline: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn paces_the_global_rate_and_the_per_address_gap() {
        let p = Politeness::new(limits(10.0, 1000, 100));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = p.started();
        let mut starts = vec![];
        for addr in [a, b, a, b, b] {
            let start = p.pace(addr).await.unwrap();
            starts.push((start - t0).as_millis());
        }
        // a@0, b@100 (rate), a@1000 (gap), b@1100 (gap from 100), b@2100.
        assert_eq!(starts, vec![0, 100, 1000, 1100, 2100]);
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_after_the_deadline() {
        let mut l = limits(1.0, 0, 100);
        l.deadline = Some(Duration::from_millis(2500));
        let p = Politeness::new(l);
        let mut admitted = 0;
        for i in 0..10u8 {
            match p.pace(IpAddr::from([127, 0, 0, i])).await {
                Ok(_) => admitted += 1,
                Err(Refused::Deadline) => break,
            }
        }
        assert_eq!(admitted, 3, "starts at 0, 1 and 2 s; 3 s is past 2.5 s");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_slots_are_held_until_dropped() {
        let p = Politeness::new(limits(1000.0, 0, 2));
        let x = p.slot().await.unwrap();
        let _y = p.slot().await.unwrap();
        let p2 = p.clone();
        let third = tokio::spawn(async move { p2.slot().await.map(|_| Instant::now()) });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!third.is_finished());
        drop(x);
        let start = third.await.unwrap().unwrap();
        assert_eq!((start - p.started()).as_secs(), 5);
    }
}
