//! Real nginx on loopback with its clock bent by libfaketime, for HTTP(S) `Date` tests; and
//! self-signed certificates made with openssl (backdated with faketime).
//!
//! Gotchas (DESIGN.md §7): nginx clears its environment at start-up, so the config re-exports
//! `LD_PRELOAD`, `FAKETIME` and `FAKETIME_DONT_RESET` with `env`; it runs in the foreground as one
//! process (`daemon off; master_process off;`) with pid, logs and temp paths in its own directory
//! and `-e` for the early error log. The monotonic clock is left alone
//! (`FAKETIME_DONT_FAKE_MONOTONIC=1`) so that nginx's timers work under a frozen wall clock.

use super::{TestDir, now_unix, require_file, require_program, stop_child};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's single-threaded libfaketime lives (nginx runs one thread).
pub const LIBFAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];
/// How long nginx gets to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace between SIGTERM and SIGKILL at the end of a test.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// A certificate and its key, PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// Certificate.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Makes a self-signed P-256 certificate in `dir` for `san` (`IP:127.1.2.3`, `DNS:web.test`)
/// valid `days` days from `faketime_start` (a faketime date like `2020-01-01 00:00:00`; `None`:
/// from now). A start in the past gives an expired certificate.
pub fn self_signed_cert(dir: &Path, san: &str, faketime_start: Option<&str>, days: u32) -> CertFiles {
    let openssl = require_program("openssl");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let mut cmd = match faketime_start {
        Some(start) => {
            let mut c = Command::new(require_program("faketime"));
            c.arg(start).arg(&openssl);
            c
        }
        None => Command::new(&openssl),
    };
    let out = cmd
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .args(["-subj", "/CN=timeaudit test", "-addext"])
        .arg(format!("subjectAltName={san}"))
        .args(["-days", &days.to_string()])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
    CertFiles { cert, key }
}

/// What one nginx serves: `return 200 "ok"` on every listener.
#[derive(Debug, Clone, Default)]
pub struct NginxConfig {
    /// Plain HTTP listeners.
    pub http: Vec<SocketAddr>,
    /// HTTPS listeners with the certificate.
    pub https: Option<(SocketAddr, CertFiles)>,
    /// FAKETIME (`-90s`, `+0.4`, `+0 x1.001`, `2020-01-01 00:00:00`, ...); `None`: real clock.
    pub faketime: Option<String>,
}

/// A running nginx; stopped on drop.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    dir: TestDir,
    /// The config it runs with.
    pub config: NginxConfig,
    /// Local Unix time just before it was spawned (libfaketime's rate modes count from there).
    pub spawned_at: f64,
}

impl Nginx {
    /// Plain HTTP on a fresh loopback endpoint with FAKETIME `faketime`.
    pub fn http(faketime: &str) -> Nginx {
        let (addrs, port) = super::net::endpoints(1, true);
        Nginx::start(NginxConfig {
            http: vec![SocketAddr::from((addrs[0], port))],
            https: None,
            faketime: Some(faketime.to_string()),
        })
    }

    /// Starts nginx and waits until every listener accepts connections.
    pub fn start(config: NginxConfig) -> Nginx {
        let nginx = require_program("nginx");
        let faketime_lib = require_file("libfaketime.so.1 (package libfaketime)", LIBFAKETIME);
        let dir = TestDir::new("nginx");
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("tmp")).expect("nginx temp dir");
        let mut listen = String::new();
        for a in &config.http {
            listen += &format!("        listen {a};\n");
        }
        if let Some((a, cert)) = &config.https {
            listen += &format!(
                "        listen {a} ssl;\n        ssl_certificate {};\n        ssl_certificate_key {};\n",
                cert.cert.display(),
                cert.key.display()
            );
        }
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             env LD_PRELOAD;\nenv FAKETIME;\nenv FAKETIME_DONT_RESET;\nenv FAKETIME_DONT_FAKE_MONOTONIC;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/tmp/body;\n    proxy_temp_path {d}/tmp/proxy;\n\
             \x20   fastcgi_temp_path {d}/tmp/fastcgi;\n    uwsgi_temp_path {d}/tmp/uwsgi;\n    scgi_temp_path {d}/tmp/scgi;\n\
             \x20   server {{\n{listen}        server_name _;\n        location / {{ return 200 \"ok\\n\"; }}\n    }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error-early.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(ft) = &config.faketime {
            cmd.env("LD_PRELOAD", faketime_lib)
                .env("FAKETIME", ft)
                .env("FAKETIME_DONT_RESET", "1")
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        let spawned_at = now_unix();
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start nginx: {e}"));
        let mut server = Nginx { child, dir, config, spawned_at };
        let mut addrs = server.config.http.clone();
        addrs.extend(server.config.https.as_ref().map(|(a, _)| *a));
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in addrs {
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if let Ok(Some(status)) = server.child.try_wait() {
                    panic!("nginx exited ({status}) before listening on {addr}:\n{}", server.logs());
                }
                assert!(
                    Instant::now() < deadline,
                    "nginx not listening on {addr} after {START_TIMEOUT:?}:\n{}",
                    server.logs()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        server
    }

    /// Both error logs, for failure messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("error-early.log"), read("error.log"))
    }

    /// `http://ADDR/` of the first plain listener.
    pub fn http_url(&self) -> String {
        format!("http://{}/", self.config.http[0])
    }

    /// `https://ADDR/` of the TLS listener.
    pub fn https_url(&self) -> String {
        format!("https://{}/", self.config.https.as_ref().map(|(a, _)| *a).expect("no https listener"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop_child(&mut self.child, STOP_GRACE);
    }
}
