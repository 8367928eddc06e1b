//! `timeaudit lab`: its servers answer NTP, HTTP and DNS on loopback with the promised clocks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// Starts `timeaudit lab` and returns the child and its JSON listing.
fn start_lab(base: &str, behaviours: &str, secs: u32) -> (Child, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["lab", "--format", "json", "--ntp-port", "0", "--http-port", "0", "--dns-port", "0"])
        .args(["--base-addr", base, "--behaviours", behaviours, "--duration", &secs.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run timeaudit lab");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "lab exited before listing: {text}");
        text.push_str(&line);
        if line.starts_with('}') {
            break;
        }
    }
    (child, serde_json::from_str(&text).unwrap())
}

/// Offset of an NTP server from one raw SNTP exchange, decoded by hand (independent of the codec).
fn ntp_offset(addr: &str) -> Option<f64> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut req = [0u8; 48];
    req[0] = 0x23; // LI 0, VN 4, mode 3
    let t1 = now();
    let ntp = t1 + 2_208_988_800.0;
    req[40..44].copy_from_slice(&(ntp as u32).to_be_bytes());
    req[44..48].copy_from_slice(&(((ntp.fract()) * 4_294_967_296.0) as u32).to_be_bytes());
    sock.send_to(&req, addr).unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).ok()?;
    let t4 = now();
    assert_eq!(n, 48);
    assert_eq!(buf[0] & 7, 4, "mode 4");
    assert_eq!(&buf[24..32], &req[40..48], "origin echoes our transmit");
    let ts = |i: usize| {
        let s = u32::from_be_bytes(buf[i..i + 4].try_into().unwrap()) as f64;
        let f = u32::from_be_bytes(buf[i + 4..i + 8].try_into().unwrap()) as f64 / 4_294_967_296.0;
        s + f - 2_208_988_800.0
    };
    Some(((ts(32) - t1) + (ts(40) - t4)) / 2.0)
}

fn http_date(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"HEAD /x HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r.lines().find_map(|l| l.strip_prefix("Date: ")).unwrap().to_string()
}

fn month(m: &str) -> u32 {
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|x| *x == m)
        .unwrap() as u32
        + 1
}

/// Unix seconds of an IMF-fixdate, by the days-from-civil formula.
fn parse_date(d: &str) -> f64 {
    let p: Vec<&str> = d.split([' ', ':']).collect();
    let (day, mon, year): (i64, u32, i64) = (p[1].parse().unwrap(), month(p[2]), p[3].parse().unwrap());
    let (y, m) = if mon <= 2 { (year - 1, mon + 9) } else { (year, mon - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m as i64 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let (h, mi, s): (i64, i64, i64) = (p[4].parse().unwrap(), p[5].parse().unwrap(), p[6].parse().unwrap());
    (days * 86_400 + h * 3600 + mi * 60 + s) as f64
}

fn dns_a(server: &str, name: &str) -> Vec<String> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, server).unwrap();
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).unwrap();
    let ancount = u16::from_be_bytes([buf[6], buf[7]]) as usize;
    (0..ancount)
        .map(|i| {
            let rd = q.len() + i * 16 + 12;
            assert!(rd + 4 <= n);
            format!("{}.{}.{}.{}", buf[rd], buf[rd + 1], buf[rd + 2], buf[rd + 3])
        })
        .collect()
}

#[test]
fn lab_servers_serve_their_clocks() {
    let (mut child, listing) = start_lab("127.0.0.70", "offset=-90,stuck,drift=500000ppm,silent", 8);
    let servers = listing["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 4);
    let at = |i: usize, port: &str| format!("{}:{}", servers[i]["address"].as_str().unwrap(), servers[i][port]);
    assert_eq!(servers[0]["address"], "127.0.0.71");
    assert_eq!(servers[3]["expected_class"], "unreachable");
    let start = listing["start"].as_f64().unwrap();

    let off = ntp_offset(&at(0, "ntp_port")).unwrap();
    assert!((off + 90.0).abs() < 0.01, "offset server reads {off}");
    let date = parse_date(&http_date(&at(0, "http_port")));
    let t = now();
    assert!(date - (t - 90.0) > -1.5 && date - (t - 90.0) < 0.5, "Date {date} vs {}", t - 90.0);

    // Stuck: the reading stays at the start time, so the offset is minus the elapsed time.
    std::thread::sleep(Duration::from_millis(300));
    let t = now();
    let stuck = ntp_offset(&at(1, "ntp_port")).unwrap();
    assert!((stuck + (t - start)).abs() < 0.02, "stuck reads {stuck}, elapsed {}", t - start);

    // Drift of 50 %: the offset grows by half the elapsed time.
    let t = now();
    let drift = ntp_offset(&at(2, "ntp_port")).unwrap();
    assert!((drift - 0.5 * (t - start)).abs() < 0.02, "drift reads {drift} after {}", t - start);

    assert_eq!(ntp_offset(&at(3, "ntp_port")), None, "silent never answers");

    let dns = listing["dns"].as_str().unwrap();
    assert_eq!(dns_a(dns, "all.lab.test"), ["127.0.0.71", "127.0.0.72", "127.0.0.73", "127.0.0.74"]);
    assert_eq!(dns_a(dns, "stuck.lab.test"), ["127.0.0.72"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn lab_rejects_bad_behaviour_and_non_loopback() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_timeaudit")).args(["lab", "--behaviours", "ok,wobbly"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad lab behaviour \"wobbly\""));
    let out = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .args(["lab", "--base-addr", "10.0.0.1", "--behaviours", "ok"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"), "{out:?}");
}
