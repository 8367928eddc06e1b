//! `timeaudit pcap` and `timeaudit pcap-synth` end to end: every packet of the public captures
//! decoded field by field as tshark decodes it; format and link-type variants giving identical
//! results; synthetic server captures whose known totals come back exactly; damaged files.

use crate::support::tshark;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use timeaudit_probes::capture::{CaptureFile, PcapWriter, WriterOptions};

const CAPTURES: [&str; 11] = [
    "tcpdump/ntp.pcap",
    "tcpdump/ntp-time.pcap",
    "tcpdump/ntp-time-ef.pcap",
    "tcpdump/ntp-control.pcap",
    "tcpdump/ntp-mode7.pcap",
    "ndpi/NTPv2.pcap",
    "ndpi/NTPv3.pcap",
    "ndpi/NTPv4.pcap",
    "zeek/ntp__ntp.pcap",
    "zeek/ntp__NTP-digest.pcap",
    "zeek/ntp__ntpmode67.pcap",
];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pcaps").join(name)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn timeaudit(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_timeaudit")).args(args).output().expect("running timeaudit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

fn packets(file: &Path) -> Vec<Value> {
    let r = timeaudit(&["pcap", file.to_str().unwrap(), "--packets"]);
    assert_eq!(r.code, 0, "{}: {}", file.display(), r.stderr);
    r.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

fn report(files: &[&Path], extra: &[&str]) -> Value {
    let mut args = vec!["pcap"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--format", "json"]);
    args.extend(extra);
    let r = timeaudit(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).expect("JSON report")
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("timeaudit-it-pcap-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The refid as timeaudit renders it, from tshark's hex bytes (ASCII for stratum 0 and 1).
fn refid_from_hex(hex: &str, stratum: u64) -> String {
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    if stratum <= 1 {
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        bytes[..end]
            .iter()
            .map(|&b| if b.is_ascii_graphic() || b == b' ' { char::from(b).to_string() } else { format!("\\x{b:02x}") })
            .collect()
    } else {
        bytes.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
    }
}

fn opt_u64(s: &str) -> Option<u64> {
    (!s.is_empty()).then(|| s.parse().unwrap())
}

const FIELDS: [&str; 20] = [
    "frame.time_epoch",
    "ip.src",
    "ipv6.src",
    "ip.dst",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "ntp.flags.vn",
    "ntp.flags.mode",
    "ntp.stratum",
    "ntp.ppoll",
    "ntp.precision",
    "ntp.rootdelay",
    "ntp.rootdispersion",
    "ntp.refid",
    "ntp.reftime",
    "ntp.org",
    "ntp.rec",
    "ntp.xmt",
];

fn assert_close(what: &str, got: &Value, want: Option<f64>, ctx: &str) {
    match (got.as_f64(), want) {
        (None, None) => assert!(got.is_null(), "{ctx}: {what} = {got}, tshark has none"),
        (Some(g), Some(w)) => assert!((g - w).abs() < 2e-6, "{ctx}: {what} = {g}, tshark says {w}"),
        (g, w) => panic!("{ctx}: {what} = {g:?}, tshark says {w:?}"),
    }
}

fn compare_with_tshark(file: &Path) -> usize {
    let ours = packets(file);
    let theirs: Vec<Vec<String>> =
        tshark::fields(file, &FIELDS).into_iter().filter(|r| r[5] == "123" || r[6] == "123").collect();
    assert_eq!(ours.len(), theirs.len(), "{}: NTP packet count differs from tshark", file.display());
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        let ctx = format!("{} packet {}", file.display(), i + 1);
        let ts: f64 = t[0].parse().unwrap();
        assert_close("ts", &o["ts"], Some(ts), &ctx);
        let src = if t[1].is_empty() { &t[2] } else { &t[1] };
        let dst = if t[3].is_empty() { &t[4] } else { &t[3] };
        assert_eq!(o["src"].as_str().unwrap(), src, "{ctx}: src");
        assert_eq!(o["dst"].as_str().unwrap(), dst, "{ctx}: dst");
        assert_eq!(o["sport"].as_u64(), opt_u64(&t[5]), "{ctx}: sport");
        assert_eq!(o["dport"].as_u64(), opt_u64(&t[6]), "{ctx}: dport");
        assert_eq!(o["length"].as_u64(), opt_u64(&t[7]).map(|l| l - 8), "{ctx}: length");
        assert_eq!(o["version"].as_u64(), opt_u64(&t[8]), "{ctx}: version");
        assert_eq!(o["mode"].as_u64(), opt_u64(&t[9]), "{ctx}: mode");
        if matches!(opt_u64(&t[9]), Some(6 | 7)) {
            // Control and private messages have no time header (tshark's ntp.stratum here
            // comes from peer records inside the data).
            for field in ["stratum", "poll", "precision", "root_delay", "refid", "transmit_ts", "kiss"] {
                assert!(o[field].is_null(), "{ctx}: {field} = {}", o[field]);
            }
            continue;
        }
        assert_eq!(o["stratum"].as_u64(), opt_u64(&t[10]), "{ctx}: stratum");
        assert_eq!(o["poll"].as_i64(), opt_u64(&t[11]).map(|v| i64::from(v as u8 as i8)), "{ctx}: poll");
        assert_eq!(o["precision"].as_i64(), opt_u64(&t[12]).map(|v| i64::from(v as u8 as i8)), "{ctx}: precision");
        assert_eq!(o["root_delay"].as_f64(), opt_u64(&t[13]).map(|v| v as f64 / 65536.0), "{ctx}: root_delay");
        assert_eq!(
            o["root_dispersion"].as_f64(),
            opt_u64(&t[14]).map(|v| v as f64 / 65536.0),
            "{ctx}: root_dispersion"
        );
        let stratum = opt_u64(&t[10]);
        let refid = stratum.map(|s| refid_from_hex(&t[15], s));
        assert_eq!(o["refid"].as_str().map(str::to_string), refid, "{ctx}: refid");
        for (k, field) in [(16, "reference_ts"), (17, "origin_ts"), (18, "receive_ts"), (19, "transmit_ts")] {
            assert_close(field, &o[field], tshark::parse_time(&t[k]), &ctx);
        }
        // A KoD is a server-side reply (mode 2, 4, 5) with stratum 0 whose refid is an ASCII
        // code (1–4 upper-case letters or digits, NUL- or space-padded; RFC 5905 §7.4).
        let mode = opt_u64(&t[9]);
        let code = refid_from_hex(&t[15], 0);
        let code = code.trim_end_matches(' ');
        let ascii_code =
            !code.is_empty() && code.len() <= 4 && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let kiss = (stratum == Some(0) && matches!(mode, Some(2 | 4 | 5)) && ascii_code).then(|| code.to_string());
        assert_eq!(o["kiss"].as_str().map(str::to_string), kiss, "{ctx}: kiss");
    }
    ours.len()
}

#[test]
fn every_packet_of_the_public_captures_decodes_as_tshark_decodes_it() {
    let mut total = 0;
    for name in CAPTURES {
        total += compare_with_tshark(&data(name));
    }
    // Extension fields, MACs and crypto-NAKs of time packets, counted as tshark counts them.
    for name in CAPTURES {
        let rows = tshark::fields_all(&data(name), &["ntp.flags.mode", "ntp.keyid", "ntp.mac", "ntp.ext.type"]);
        let time: Vec<&Vec<String>> = rows.iter().filter(|r| r[0].parse::<u8>().is_ok_and(|m| m <= 5)).collect();
        let ext: usize = time.iter().map(|r| r[3].split(';').filter(|x| !x.is_empty()).count()).sum();
        let with_ext = time.iter().filter(|r| !r[3].is_empty()).count();
        let macs = time.iter().filter(|r| !r[1].is_empty() && !r[2].is_empty()).count();
        let naks = time.iter().filter(|r| !r[1].is_empty() && r[2].is_empty()).count();
        let t = &report(&[&data(name)], &[])["totals"];
        assert_eq!(t["extension_fields"].as_u64(), Some(ext as u64), "{name}: extension fields");
        assert_eq!(t["packets_with_extensions"].as_u64(), Some(with_ext as u64), "{name}");
        assert_eq!(t["packets_with_mac"].as_u64(), Some(macs as u64), "{name}: MACs");
        assert_eq!(t["crypto_naks"].as_u64(), Some(naks as u64), "{name}: crypto-NAKs");
    }
    // 8 + 2 + 2 + 21 + 8 + 1 + 1 + 1 + 32 + 40 + 9 NTP packets.
    assert_eq!(total, 125);
    // The KoD of ntp.pcap, and the INIT request that is not one.
    let p = packets(&data("tcpdump/ntp.pcap"));
    assert_eq!(p[1]["kiss"], "STEP");
    assert_eq!(p[6]["refid"], "INIT");
    assert!(p[6]["kiss"].is_null());
}

/// Rewrites an Ethernet pcap into another link type by replacing the 14-byte Ethernet header.
fn relink(input: &Path, output: &Path, opts: WriterOptions, header: impl Fn(&[u8]) -> Vec<u8>) {
    let mut r = CaptureFile::open(input).unwrap();
    let mut w = PcapWriter::new(std::fs::File::create(output).unwrap(), opts).unwrap();
    while let Some(f) = r.next_frame().unwrap() {
        assert_eq!(f.linktype, 1);
        let mut frame = header(f.data);
        frame.extend_from_slice(&f.data[14..]);
        let orig = f.orig_len as usize - 14 + frame.len() - (f.data.len() - 14);
        w.write_frame_with_len(f.ts_ns, &frame, orig as u32).unwrap();
    }
    w.finish().unwrap();
}

fn ethertype(f: &[u8]) -> [u8; 2] {
    [f[12], f[13]]
}

#[test]
fn format_and_link_type_variants_give_identical_results() {
    let dir = tempdir("variants");
    for name in CAPTURES {
        let src = data(name);
        let base = name.replace('/', "_");
        let want = packets(&src);
        let mut variants: Vec<PathBuf> = Vec::new();
        let v = |suffix: &str| dir.join(format!("{base}.{suffix}"));
        tshark::editcap(&["-F", "pcapng"], &src, &v("pcapng"));
        tshark::editcap(&["-F", "nsecpcap"], &src, &v("ns.pcap"));
        variants.extend([v("pcapng"), v("ns.pcap")]);
        let same = |o: WriterOptions| WriterOptions { linktype: 1, ..o };
        relink(
            &src,
            &v("be.pcap"),
            same(WriterOptions { big_endian: true, nanoseconds: true, ..Default::default() }),
            |f| f[..14].to_vec(),
        );
        relink(&src, &v("pcap.gz"), same(WriterOptions { gzip: true, ..Default::default() }), |f| f[..14].to_vec());
        relink(&src, &v("vlan.pcap"), WriterOptions::default(), |f| {
            let mut h = f[..12].to_vec();
            h.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a]);
            h.extend_from_slice(&ethertype(f));
            h
        });
        relink(&src, &v("sll.pcap"), WriterOptions { linktype: 113, ..Default::default() }, |f| {
            let mut h = vec![0, 0, 0, 1, 0, 6];
            h.extend_from_slice(&f[6..12]);
            h.extend_from_slice(&[0, 0]);
            h.extend_from_slice(&ethertype(f));
            h
        });
        relink(&src, &v("sll2.pcap"), WriterOptions { linktype: 276, ..Default::default() }, |f| {
            let mut h = ethertype(f).to_vec();
            h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
            h.extend_from_slice(&f[6..12]);
            h.extend_from_slice(&[0, 0]);
            h
        });
        relink(&src, &v("raw.pcap"), WriterOptions { linktype: 101, ..Default::default() }, |_| Vec::new());
        let family = |f: &[u8]| if ethertype(f) == [0x86, 0xdd] { 30u32 } else { 2 };
        relink(&src, &v("null.pcap"), WriterOptions { linktype: 0, ..Default::default() }, |f| {
            family(f).to_le_bytes().to_vec()
        });
        relink(&src, &v("loop.pcap"), WriterOptions { linktype: 108, ..Default::default() }, |f| {
            family(f).to_be_bytes().to_vec()
        });
        for s in ["be.pcap", "pcap.gz", "vlan.pcap", "sll.pcap", "sll2.pcap", "raw.pcap", "null.pcap", "loop.pcap"] {
            variants.push(v(s));
        }
        // pcapng of a cooked capture, and two sections in one file (interface table reset).
        tshark::editcap(&["-F", "pcapng"], &v("sll2.pcap"), &v("sll2.pcapng"));
        variants.push(v("sll2.pcapng"));
        for variant in &variants {
            assert_eq!(packets(variant), want, "{} differs from {name}", variant.display());
        }
        let mut two = std::fs::read(v("pcapng")).unwrap();
        two.extend(std::fs::read(v("sll2.pcapng")).unwrap());
        std::fs::write(v("2sections.pcapng"), two).unwrap();
        let doubled: Vec<Value> = want.iter().chain(&want).cloned().collect();
        assert_eq!(packets(&v("2sections.pcapng")), doubled, "{name}: two pcapng sections");
        // Load reports agree too, except the wire bytes, which include the link header.
        let a = report(&[&src], &[]);
        let b = report(&[&v("raw.pcap")], &[]);
        for key in ["ntp_packets", "requests", "responses", "unique_clients", "modes", "versions", "kod", "malformed"] {
            assert_eq!(a["totals"][key], b["totals"][key], "{name}: totals.{key}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn totals_of_the_public_captures_match_tshark_counts() {
    // ntp.pcap: server 192.168.100.1 answers 4 requests, one reply a KoD STEP.
    let r = report(&[&data("tcpdump/ntp.pcap")], &[]);
    let t = &r["totals"];
    assert_eq!(r["server"], "192.168.100.1");
    assert_eq!(t["packets"], 8);
    assert_eq!(t["requests"], 4);
    assert_eq!(t["responses"], 4);
    assert_eq!(t["unique_clients"], 1);
    assert_eq!(t["kod"], serde_json::json!({"STEP": 1}));
    assert_eq!(t["modes"], serde_json::json!({"3": 4, "4": 4}));
    // Independently: tshark's frame lengths of packets from and to the server.
    let rows = tshark::fields(&data("tcpdump/ntp.pcap"), &["ip.src", "frame.len"]);
    let out: u64 = rows.iter().filter(|r| r[0] == "192.168.100.1").map(|r| r[1].parse::<u64>().unwrap()).sum();
    let inb: u64 = rows.iter().filter(|r| r[0] != "192.168.100.1").map(|r| r[1].parse::<u64>().unwrap()).sum();
    assert_eq!(t["bytes_out"].as_u64(), Some(out));
    assert_eq!(t["bytes_in"].as_u64(), Some(inb));
    // Loopback captures of ntpq/ntpdc (one address on both ends): direction by port 123, and
    // requests/responses by the response bit, as tshark reads it.
    for name in ["tcpdump/ntp-control.pcap", "tcpdump/ntp-mode7.pcap", "zeek/ntp__ntpmode67.pcap"] {
        let rows = tshark::fields(&data(name), &["ntp.ctrl.flags2.r", "ntp.priv.flags.r"]);
        let bit = |r: &Vec<String>| if r[0].is_empty() { r[1].clone() } else { r[0].clone() };
        let req = rows.iter().filter(|r| bit(r) == "0").count() as u64;
        let resp = rows.iter().filter(|r| bit(r) == "1").count() as u64;
        let t = &report(&[&data(name)], &[])["totals"];
        assert_eq!((t["requests"].as_u64(), t["responses"].as_u64()), (Some(req), Some(resp)), "{name}");
        assert_eq!(t["unique_clients"], 1, "{name}");
    }
    // The monlist reflection: one MON_GETLIST_1 response, out ≫ in.
    let r = report(&[&data("ndpi/NTPv2.pcap")], &[]);
    assert_eq!(r["totals"]["monlist_responses"], 1);
    assert_eq!(r["totals"]["mode7_packets"], 1);
    // zeek's trace: one client polling 8 pool servers; with --server, one of them.
    let server = "147.135.207.213";
    let r = report(&[&data("zeek/ntp__ntp.pcap")], &["--server", server]);
    let rows = tshark::fields(&data("zeek/ntp__ntp.pcap"), &["ip.src", "ip.dst", "ntp.flags.mode"]);
    let req = rows.iter().filter(|r| r[1] == server && r[2] == "3").count();
    let resp = rows.iter().filter(|r| r[0] == server && r[2] == "4").count();
    assert_eq!((req, resp), (1, 1));
    assert_eq!(r["totals"]["requests"].as_u64(), Some(req as u64));
    assert_eq!(r["totals"]["responses"].as_u64(), Some(resp as u64));
    assert_eq!(r["totals"]["unique_clients"], 1);
    assert_eq!(r["clients"][0]["address"], "192.168.43.118");
    // The client's queries to the 7 other servers are traffic not involving this one.
    assert_eq!(r["totals"]["other_ntp_packets"].as_u64(), Some(rows.len() as u64 - 2));
}

fn synth(path: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["pcap-synth", path.to_str().unwrap()];
    args.extend(extra);
    let r = timeaudit(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

fn assert_totals_match(report: &Value, truth: &Value, ctx: &str) {
    let t = &report["totals"];
    for key in [
        "packets",
        "bytes",
        "requests",
        "responses",
        "kod",
        "mode6_packets",
        "mode7_packets",
        "monlist_responses",
        "malformed",
        "bytes_in",
        "bytes_out",
        "unique_clients",
    ] {
        assert_eq!(t[key], truth[key], "{ctx}: totals.{key}");
    }
    for key in ["first_ts", "last_ts"] {
        let (a, b) = (t[key].as_f64().unwrap(), truth[key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-6, "{ctx}: {key} {a} vs {b}");
    }
    let top: Vec<(String, u64)> = report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["address"].as_str().unwrap().to_string(), c["requests"].as_u64().unwrap()))
        .collect();
    let want: Vec<(String, u64)> = truth["top_clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["address"].as_str().unwrap().to_string(), c["requests"].as_u64().unwrap()))
        .collect();
    assert_eq!(top, want, "{ctx}: top clients");
}

#[test]
fn synthetic_server_captures_give_back_their_known_totals() {
    let dir = tempdir("synth");
    let plain = dir.join("s.pcap");
    let args = ["--clients", "3000", "--packets", "60000", "--seed", "7", "--top", "10"];
    let truth = synth(&plain, &args);
    assert!(truth["kod"]["RATE"].as_u64().unwrap() > 0);
    assert!(truth["mode6_packets"].as_u64().unwrap() > 0 && truth["mode7_packets"].as_u64().unwrap() > 0);
    assert!(truth["malformed"].as_u64().unwrap() > 0);
    let r = report(&[&plain], &["--top", "10"]);
    assert_eq!(r["server"], "192.0.2.123");
    assert_totals_match(&r, &truth, "pcap");
    // One thread, or a reader and one or more aggregators: the same report.
    for threads in ["1", "2", "4"] {
        assert_eq!(report(&[&plain], &["--top", "10", "--threads", threads]), r, "--threads {threads}");
    }
    // Same content as gzip, nanosecond big-endian: same totals.
    let gz = dir.join("s.pcap.gz");
    let mut more = args.to_vec();
    more.extend(["--nanoseconds", "--big-endian"]);
    assert_eq!(synth(&gz, &more), truth);
    assert_totals_match(&report(&[&gz], &["--top", "10"]), &truth, "gzip ns big-endian");
    // Rotated into 4 files given in reverse order: one timeline, same totals.
    tshark::editcap(&["-c", "15000"], &plain, &dir.join("part.pcap"));
    let mut parts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("part"))
        .collect();
    assert_eq!(parts.len(), 4);
    parts.sort();
    parts.reverse();
    let refs: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    assert_totals_match(&report(&refs, &["--top", "10"]), &truth, "rotated");
    // Requests per client, independently from tshark: every client's count.
    let want = tshark_requests_per_client(&plain, &["192.0.2.123"]);
    let out = dir.join("tables");
    let r = report(&[&plain], &["--top", "0", "--out-dir", out.to_str().unwrap()]);
    assert_eq!(r["clients"].as_array().unwrap().len(), 0);
    let got = requests_in_clients_csv(&out);
    let differ: Vec<_> = want.iter().filter(|(a, n)| got.get(*a) != Some(n)).take(5).collect();
    assert!(differ.is_empty(), "requests per client differ from tshark's count: {differ:?}");
    assert_eq!(got.len(), want.len());
    for table in ["prefixes", "what_if", "traffic_cdf", "client_types", "rate_per_minute"] {
        assert!(out.join(format!("{table}.csv")).exists(), "{table}.csv");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Requests per client as tshark decodes them (version 0 is not NTP: the generator's malformed
/// packets), for a server at `servers`, IPv4 and IPv6.
fn tshark_requests_per_client(file: &Path, servers: &[&str]) -> BTreeMap<String, u64> {
    let rows = tshark::fields(
        file,
        &[
            "ip.src",
            "ip.dst",
            "ipv6.src",
            "ipv6.dst",
            "ntp.flags.mode",
            "ntp.ctrl.flags2.r",
            "ntp.priv.flags.r",
            "ntp.flags.vn",
        ],
    );
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        let request = r[7] != "0"
            && match r[4].as_str() {
                "3" => true,
                "6" => r[5] == "0",
                "7" => r[6] == "0",
                _ => false,
            };
        let (src, dst) = if r[0].is_empty() { (&r[2], &r[3]) } else { (&r[0], &r[1]) };
        if request && servers.contains(&dst.as_str()) {
            *want.entry(src.clone()).or_default() += 1;
        }
    }
    want
}

/// `address → requests` of a `clients.csv` written by `--out-dir` (clients with requests only).
fn requests_in_clients_csv(dir: &Path) -> BTreeMap<String, u64> {
    let csv = std::fs::read_to_string(dir.join("clients.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (ai, ri) =
        (header.iter().position(|h| *h == "address").unwrap(), header.iter().position(|h| *h == "requests").unwrap());
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        let n: u64 = cells[ri].parse().unwrap();
        if n > 0 {
            got.insert(cells[ai].to_string(), n);
        }
    }
    got
}

#[test]
fn dual_stack_server_capture_counts_both_families_as_tshark_does() {
    let dir = tempdir("dual");
    let file = dir.join("d.pcap");
    let truth = synth(&file, &["--clients", "2000", "--packets", "40000", "--ipv6-percent", "35", "--top", "10"]);
    assert_eq!(truth["servers"], serde_json::json!(["192.0.2.123", "2001:db8::123"]));
    // Both addresses detected; every client of either family counted.
    let r = report(&[&file], &["--top", "10"]);
    assert_eq!(r["servers"], truth["servers"]);
    assert_eq!(r["server"], "192.0.2.123");
    assert_totals_match(&r, &truth, "dual stack");
    assert_eq!(r["totals"]["other_ntp_packets"], 0);
    let want = tshark_requests_per_client(&file, &["192.0.2.123", "2001:db8::123"]);
    assert!(want.keys().filter(|a| a.contains(':')).count() > 500, "IPv6 clients in the capture");
    // Any number of threads: the same full tables.
    let mut tables = Vec::new();
    for threads in ["1", "2", "3", "5"] {
        let out = dir.join(format!("tables-{threads}"));
        let r = report(&[&file], &["--top", "10", "--threads", threads, "--out-dir", out.to_str().unwrap()]);
        assert_totals_match(&r, &truth, &format!("--threads {threads}"));
        let got = requests_in_clients_csv(&out);
        let differ: Vec<_> = want.iter().filter(|(a, n)| got.get(*a) != Some(n)).take(5).collect();
        assert!(differ.is_empty(), "--threads {threads}: requests per client differ from tshark's: {differ:?}");
        assert_eq!(got.len(), want.len());
        tables.push(
            ["clients", "prefixes", "what_if", "traffic_cdf", "client_types", "rate_per_minute"]
                .map(|t| std::fs::read_to_string(out.join(format!("{t}.csv"))).unwrap()),
        );
    }
    assert!(tables.windows(2).all(|w| w[0] == w[1]), "tables differ between thread counts");
    // Given only the IPv4 address, the IPv6 half is traffic of other hosts.
    let v4 = report(&[&file], &["--top", "10", "--server", "192.0.2.123"]);
    assert_eq!(v4["servers"], serde_json::json!(["192.0.2.123"]));
    let v6_requests: u64 = want.iter().filter(|(a, _)| a.contains(':')).map(|(_, n)| n).sum();
    assert_eq!(v4["totals"]["requests"].as_u64().unwrap(), truth["requests"].as_u64().unwrap() - v6_requests);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_files_yield_what_precedes_the_damage() {
    let dir = tempdir("damage");
    let good = std::fs::read(data("tcpdump/ntp.pcap")).unwrap();
    // Record boundaries, computed from the bytes independently of the reader.
    let mut offsets = vec![24usize];
    while *offsets.last().unwrap() < good.len() {
        let o = *offsets.last().unwrap();
        let caplen = u32::from_le_bytes(good[o + 8..o + 12].try_into().unwrap()) as usize;
        offsets.push(o + 16 + caplen);
    }
    assert_eq!(offsets.len(), 9);

    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let r = timeaudit(&["pcap", empty.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("empty.pcap: empty file (0 bytes)"), "{}", r.stderr);

    let garbage = dir.join("garbage.pcap");
    std::fs::write(&garbage, b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").unwrap();
    let r = timeaudit(&["pcap", garbage.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("garbage.pcap: not a pcap or pcapng file (starts with 47 45 54 20)"), "{}", r.stderr);

    // Record 3 claims 4 GB: the two records before it are read.
    let mut huge = good.clone();
    huge[offsets[2] + 8..offsets[2] + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let path = dir.join("huge.pcap");
    std::fs::write(&path, &huge).unwrap();
    let r = timeaudit(&["pcap", path.to_str().unwrap(), "--packets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2);
    let want = format!("huge.pcap: stopped at byte {}: record 3 claims 4294967295 captured bytes", offsets[2]);
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    // ...and as the first record nothing can be read: non-zero exit.
    let mut first = good.clone();
    first[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let path = dir.join("huge-first.pcap");
    std::fs::write(&path, &first).unwrap();
    let r = timeaudit(&["pcap", path.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("stopped at byte 24: record 1 claims 4294967295"), "{}", r.stderr);

    // Cut in the middle of the last record: the first seven are read, the report is produced.
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &good[..offsets[7] + 30]).unwrap();
    let r = timeaudit(&["pcap", cut.to_str().unwrap(), "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["totals"]["packets"], 7);
    let rec8 = offsets[8] - offsets[7];
    let want = format!(
        "cut.pcap: stopped at byte {}: file cut short inside record 8 ({rec8} bytes): {rec8} bytes needed, 30 left",
        offsets[7]
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);

    // A gzip'd capture cut in half: what decompresses is read, and is a prefix of the whole.
    let gz = dir.join("synth.pcap.gz");
    synth(&gz, &["--clients", "200", "--packets", "20000"]);
    let whole = timeaudit(&["pcap", gz.to_str().unwrap(), "--packets"]);
    assert_eq!(whole.code, 0);
    let bytes = std::fs::read(&gz).unwrap();
    let half = dir.join("half.pcap.gz");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let r = timeaudit(&["pcap", half.to_str().unwrap(), "--packets"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let n = r.stdout.lines().count();
    assert!(n > 1000 && n < 20000, "{n} packets from half the file");
    assert!(whole.stdout.starts_with(&r.stdout), "a cut file's packets are a prefix of the whole file's");
    assert!(
        r.stderr.contains("half.pcap.gz: stopped at byte") && r.stderr.contains("of the decompressed data"),
        "{}",
        r.stderr
    );

    // A damaged file among good ones: the good ones count, the damage is reported.
    let r = timeaudit(&["pcap", garbage.to_str().unwrap(), data("tcpdump/ntp.pcap").to_str().unwrap(), "--packets"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout.lines().count(), 8);
    assert!(r.stderr.contains("garbage.pcap: not a pcap"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn table_output_of_ntp_pcap_matches_its_golden_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_timeaudit"))
        .current_dir(data(""))
        .args(["pcap", "tcpdump/ntp.pcap", "--top", "5"])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}
