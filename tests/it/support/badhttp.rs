//! Small misbehaving HTTP servers of the tests' own (a thread on a loopback port each): no `Date`,
//! a garbage `Date`, a megabyte of headers, a reply trickled out byte by byte.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a server misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// `200 OK` without a `Date` header.
    NoDate,
    /// `Date: ` followed by text that is no date.
    GarbageDate,
    /// A valid `Date` after 1 MB of other headers.
    HugeHeaders,
    /// A valid reply written one byte every `TRICKLE_PAUSE`.
    Trickle,
    /// `405` to HEAD, `200` with a `Date` to GET.
    HeadNotAllowed,
    /// `301` to `https://elsewhere.test/` with a `Date`.
    Redirect,
    /// `200` with a `Date` and `Age: 120` (as from a cache).
    Cached,
}

/// Pause between bytes of [`Misbehaviour::Trickle`].
pub const TRICKLE_PAUSE: Duration = Duration::from_millis(300);
/// Total size of the extra headers of [`Misbehaviour::HugeHeaders`].
pub const HUGE_HEADER_BYTES: usize = 1 << 20;

/// A running server; stops accepting on drop.
#[derive(Debug)]
pub struct BadServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Request lines' methods, in arrival order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

fn reply(kind: Misbehaviour, method: &str) -> Vec<u8> {
    let date = httpdate_now();
    let ok = |extra: &str| {
        format!("HTTP/1.1 200 OK\r\nServer: {kind:?}\r\nDate: {date}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .into_bytes()
    };
    match kind {
        Misbehaviour::HeadNotAllowed if method == "HEAD" => {
            b"HTTP/1.1 405 Not Allowed\r\nServer: HeadNotAllowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
        Misbehaviour::HeadNotAllowed => ok(""),
        Misbehaviour::Cached => ok("Age: 120\r\n"),
        Misbehaviour::Redirect => format!(
            "HTTP/1.1 301 Moved Permanently\r\nServer: Redirect\r\nDate: {date}\r\nLocation: https://elsewhere.test/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        Misbehaviour::NoDate => b"HTTP/1.1 200 OK\r\nServer: nodate\r\nContent-Length: 0\r\n\r\n".to_vec(),
        Misbehaviour::GarbageDate => {
            b"HTTP/1.1 200 OK\r\nServer: garbage\r\nDate: the day after yesterday\r\nContent-Length: 0\r\n\r\n".to_vec()
        }
        Misbehaviour::HugeHeaders => {
            let mut r = b"HTTP/1.1 200 OK\r\nServer: huge\r\n".to_vec();
            let line = format!("X-Padding: {}\r\n", "a".repeat(1000));
            while r.len() < HUGE_HEADER_BYTES {
                r.extend_from_slice(line.as_bytes());
            }
            r.extend_from_slice(format!("Date: {date}\r\nContent-Length: 0\r\n\r\n").as_bytes());
            r
        }
        Misbehaviour::Trickle => {
            format!("HTTP/1.1 200 OK\r\nServer: trickle\r\nDate: {date}\r\nContent-Length: 0\r\n\r\n").into_bytes()
        }
    }
}

/// The current time as IMF-fixdate (the servers' clocks are the real one).
fn httpdate_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    timeaudit_date(now as i64)
}

fn timeaudit_date(unix: i64) -> String {
    // Same algorithm as the analysis crate, written out again so that the test is independent.
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (mut y, mut d) = (1970i64, days);
    loop {
        let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 { 366 } else { 365 };
        if d < len {
            break;
        }
        d -= len;
        y += 1;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let lens = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut m = 0;
    while d >= lens[m] {
        d -= lens[m];
        m += 1;
    }
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        d + 1,
        MONTHS[m],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn serve(mut s: TcpStream, kind: Misbehaviour, stop: &AtomicBool, requests: &Mutex<Vec<String>>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read one request head.
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let method = head.split(' ').next().unwrap_or("").to_string();
    if let Ok(mut log) = requests.lock() {
        log.push(method.clone());
    }
    let r = reply(kind, &method);
    if let Misbehaviour::Trickle = kind {
        for b in r {
            if stop.load(Ordering::Relaxed) || s.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(TRICKLE_PAUSE);
        }
    } else {
        let _ = s.write_all(&r);
    }
}

impl BadServer {
    /// Listens on `ip:0` (a free port) and serves every connection in its own thread.
    pub fn start(ip: &str, kind: Misbehaviour) -> BadServer {
        let listener = TcpListener::bind(format!("{ip}:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let requests2 = requests.clone();
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let (stop3, requests3) = (stop2.clone(), requests2.clone());
                        std::thread::spawn(move || serve(s, kind, &stop3, &requests3));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        BadServer { addr, stop, requests }
    }

    /// `http://IP:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The methods of the requests received so far.
    pub fn methods(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for BadServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn independent_date_formatter() {
    assert_eq!(timeaudit_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(timeaudit_date(951_868_799), "Tue, 29 Feb 2000 23:59:59 GMT");
}
