//! `Registry`: the real CNCF registry (`/usr/bin/docker-registry`, distribution 2.8 in
//! Debian 12) on `127.0.0.1:<free port>`, with its storage, config, keys and log in a
//! temporary directory, killed when dropped.
//!
//! The port is found by binding `127.0.0.1:0` and releasing it. Another process may take
//! it before the registry binds; the registry then exits with "address already in use"
//! and the launch is retried on a new port. Ready means: the registry logged `listening
//! on`, is still running (so the answer is not from a stranger), and `GET /v2/` answers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::certs;
use super::token::TokenIssuer;

/// Registry path in Debian's `docker-registry` package.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Launch attempts on different ports before giving up.
const ATTEMPTS: usize = 5;
/// How long a registry may take to answer `/v2/` (it usually takes ~50 ms).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running registry; killed (and reaped) on drop.
pub struct Registry {
    child: Child,
    host: String,
    tls: bool,
    ca_cert: Option<PathBuf>,
    dir: tempfile::TempDir,
}

/// What the registry config says besides storage and address.
struct Setup {
    /// `http.tls` paths: (certificate, key).
    tls: Option<(PathBuf, PathBuf)>,
    ca_cert: Option<PathBuf>,
    /// The `auth:` section, YAML, or empty.
    auth: String,
}

/// How one launch attempt ended.
enum Launch {
    Ready,
    PortTaken,
    Failed(String),
}

impl Registry {
    /// Plain HTTP, no authentication, deletes enabled.
    pub fn plain() -> Registry {
        let dir = temp_dir();
        Registry::launch(dir, |_| Setup {
            tls: None,
            ca_cert: None,
            auth: String::new(),
        })
    }

    /// Plain HTTP with htpasswd Basic auth for one account (bcrypt, as distribution
    /// requires; made with `htpasswd -Bbn` from apache2-utils).
    pub fn basic(user: &str, password: &str) -> Registry {
        Registry::launch(temp_dir(), |dir| Setup {
            tls: None,
            ca_cert: None,
            auth: htpasswd_auth(dir, user, password),
        })
    }

    /// HTTPS with a fresh CA ([`Registry::ca_cert`]; the certificate is for IP
    /// `127.0.0.1` and `localhost`) and htpasswd Basic auth for one account.
    pub fn tls_basic(user: &str, password: &str) -> Registry {
        Registry::launch(temp_dir(), |dir| {
            let tls = certs::server_tls(dir);
            Setup {
                tls: Some((tls.cert, tls.key)),
                ca_cert: Some(tls.ca_cert),
                auth: htpasswd_auth(dir, user, password),
            }
        })
    }

    /// Plain HTTP with token auth: challenges point at `issuer`, whose signing
    /// certificate is the root the registry verifies tokens against.
    pub fn token(issuer: &TokenIssuer) -> Registry {
        let auth = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            issuer.realm(),
            issuer.service(),
            issuer.issuer(),
            issuer.root_cert().display()
        );
        Registry::launch(temp_dir(), move |_| Setup {
            tls: None,
            ca_cert: None,
            auth,
        })
    }

    /// `127.0.0.1:PORT`: the registry part of image references.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// The CA certificate (PEM) of a TLS registry, to put in `certs.d/HOST/ca.crt`.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        self.ca_cert.clone()
    }

    /// Everything the registry logged so far (access log included).
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// The storage root (`docker/registry/v2/{blobs,repositories}` below it).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Process id of the registry (tests check it is gone after drop).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts a registry made by `setup` (called once, in the temporary directory) on
    /// free ports until one answers; panics with the log's tail when it cannot start.
    fn launch(dir: tempfile::TempDir, setup: impl FnOnce(&Path) -> Setup) -> Registry {
        let setup = setup(dir.path());
        Registry::launch_on(dir, setup, std::iter::empty())
    }

    /// A plain registry that tries `ports` first, then free ones (tests the retry).
    pub(super) fn plain_trying(ports: impl IntoIterator<Item = u16>) -> Registry {
        let setup = Setup {
            tls: None,
            ca_cert: None,
            auth: String::new(),
        };
        Registry::launch_on(temp_dir(), setup, ports)
    }

    fn launch_on(
        dir: tempfile::TempDir,
        setup: Setup,
        ports: impl IntoIterator<Item = u16>,
    ) -> Registry {
        let tls = setup.tls.is_some();
        let mut last_log = String::new();
        let ports = ports.into_iter().chain(std::iter::repeat_with(free_port));
        for port in ports.take(ATTEMPTS) {
            let host = format!("127.0.0.1:{port}");
            let mut child = spawn(dir.path(), &host, &setup);
            let outcome = wait_ready(&mut child, dir.path(), &host, tls);
            if let Launch::Ready = outcome {
                let ca_cert = setup.ca_cert;
                return Registry {
                    child,
                    host,
                    tls,
                    ca_cert,
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = read_log(dir.path());
            if let Launch::Failed(why) = outcome {
                panic!(
                    "docker-registry did not start on {host} ({why}); log tail:\n{}",
                    tail(&last_log, 30)
                );
            }
            eprintln!("registry: {host} was taken, retrying on another port");
        }
        panic!(
            "docker-registry: no free port in {ATTEMPTS} attempts; last log tail:\n{}",
            tail(&last_log, 30)
        )
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the config for `host` and starts the registry, its output going to the log.
fn spawn(dir: &Path, host: &str, setup: &Setup) -> Child {
    let config = dir.join("config.yml");
    std::fs::write(&config, config_yaml(dir, host, setup)).expect("write the registry config");
    let log = std::fs::File::create(dir.join("registry.log")).expect("create the registry log");
    let mut cmd = Command::new(REGISTRY_BIN);
    cmd.arg("serve").arg(&config).stdin(Stdio::null());
    cmd.stdout(log.try_clone().expect("dup the log file"))
        .stderr(log);
    // Environment overrides (REGISTRY_HTTP_ADDR, ...) would silently change the config.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd.spawn()
        .expect("start docker-registry (package docker-registry)")
}

/// Waits until the registry listens and answers, exits, or the time is up.
fn wait_ready(child: &mut Child, dir: &Path, host: &str, tls: bool) -> Launch {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) if read_log(dir).contains("address already in use") => {
                return Launch::PortTaken;
            }
            Ok(Some(status)) => return Launch::Failed(format!("exited with {status}")),
            Ok(None) => {}
            Err(e) => return Launch::Failed(format!("cannot poll the process: {e}")),
        }
        // `listening on` comes after a successful bind: an answer is then ours.
        if read_log(dir).contains("listening on") && answers(host, tls) {
            return Launch::Ready;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Launch::Failed(format!("no answer on /v2/ within {START_TIMEOUT:?}"))
}

/// Whether `GET /v2/` on `host` gets any HTTP answer (401 included).
fn answers(host: &str, tls: bool) -> bool {
    if tls {
        // No TLS client in the test harness: curl checks the TLS registry.
        return Command::new("curl")
            .args("-sk -o /dev/null -w %{http_code} --max-time 2".split(' '))
            .arg(format!("https://{host}/v2/"))
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"2") || o.stdout.starts_with(b"4"));
    }
    let Ok(mut conn) = TcpStream::connect(host) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut reply = [0u8; 12];
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_exact(&mut reply).is_ok()
        && reply.starts_with(b"HTTP/1.1 ")
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
}

/// The registry's YAML config: filesystem storage under `dir/data`, `setup`'s TLS and auth,
/// and foreign layers' http(s) URLs allowed (as on registries that serve such images).
fn config_yaml(dir: &Path, host: &str, setup: &Setup) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {host}\n  secret: rbuild-test-not-a-secret\n",
        dir.join("data").display()
    );
    if let Some((cert, key)) = &setup.tls {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ));
    }
    yaml.push_str(&setup.auth);
    yaml.push_str("validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n");
    yaml
}

/// Writes a bcrypt htpasswd file for one account; returns the `auth:` section.
fn htpasswd_auth(dir: &Path, user: &str, password: &str) -> String {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("run htpasswd (package apache2-utils)");
    assert!(
        out.status.success(),
        "htpasswd -Bbn failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("htpasswd");
    std::fs::write(&path, &out.stdout).expect("write htpasswd");
    format!(
        "auth:\n  htpasswd:\n    realm: rbuild-test\n    path: {}\n",
        path.display()
    )
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("bound address").port()
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("registry temp dir")
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
