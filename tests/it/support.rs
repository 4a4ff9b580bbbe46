//! Test harness: a temporary store and context, running the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A store root and a build context in temporary directories.
pub struct TestContext {
    pub dir: tempfile::TempDir,
}

impl TestContext {
    /// A context containing `files` (path, content) and a `Dockerfile`.
    pub fn new(dockerfile: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).expect("context dir");
        std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("Dockerfile");
        for (path, content) in files {
            let p = ctx.join(path);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("dirs");
            std::fs::write(p, content).expect("file");
        }
        TestContext { dir }
    }

    /// Adds `dirs` directories of `files` one-byte files each to the context (a build
    /// that takes a while to copy, for interrupting).
    pub fn fill(&self, dirs: usize, files: usize) {
        for d in 0..dirs {
            let dir = self.context().join(format!("d{d}"));
            std::fs::create_dir_all(&dir).expect("dir");
            for f in 0..files {
                std::fs::write(dir.join(format!("f{f}")), "x").expect("file");
            }
        }
    }

    pub fn context(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `rbuild --root <store> ARGS`.
    pub fn rbuild(&self, args: &[&str]) -> Output {
        rbuild_in(&self.root(), args, &[])
    }

    /// Runs a build of the context with extra arguments; panics with stderr on failure.
    pub fn build(&self, args: &[&str]) -> String {
        let out = self.build_ok(args);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// [`TestContext::build`], returning the plain progress log (stderr) instead.
    pub fn build_log(&self, args: &[&str]) -> String {
        let out = self.build_ok(args);
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn build_ok(&self, args: &[&str]) -> Output {
        let ctx = self.context();
        let mut all: Vec<&str> = vec!["build", "--progress", "plain"];
        all.extend_from_slice(args);
        let ctx = ctx.to_string_lossy().into_owned();
        all.push(&ctx);
        let out = self.rbuild(&all);
        assert!(
            out.status.success(),
            "build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a build expected to fail; returns stderr.
    pub fn build_fails(&self, args: &[&str]) -> String {
        let ctx = self.context().to_string_lossy().into_owned();
        let mut all: Vec<&str> = vec!["build", "--progress", "plain"];
        all.extend_from_slice(args);
        all.push(&ctx);
        let out = self.rbuild(&all);
        assert!(!out.status.success(), "build unexpectedly succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// Runs the binary with a store root and environment.
pub fn rbuild_in(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbuild"));
    cmd.arg("--root").arg(root).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running rbuild")
}

/// Runs the binary on store `root`; it must succeed: (stdout trimmed, stderr).
pub fn run_ok(root: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let out = rbuild_in(root, args, env);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "rbuild {args:?} failed:\n{stderr}");
    (stdout.trim().to_owned(), stderr)
}

/// Runs the binary on store `root`; it must fail: its stderr.
pub fn run_fails(root: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = rbuild_in(root, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "rbuild {args:?} should fail");
    stderr
}

/// Whether an external tool is available; without it, a test skips with a message
/// unless `CI` is set, where it fails.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{tool} is required in CI");
        eprintln!("skipping: {tool} not installed");
    }
    found
}

/// Whether this process may mount (root with overlayfs): the builder needs it.
pub fn can_mount() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the tests as root"
        );
        eprintln!("skipping: needs root for overlay mounts");
    }
    root
}

/// Overlay mounts in the host's mount table that belong to test stores.
pub fn leaked_mounts(root: &Path) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = root.to_string_lossy();
    table
        .lines()
        .filter(|l| l.contains(root.as_ref()))
        .map(str::to_owned)
        .collect()
}

/// What is left in the per-process work directories of a store (`tmp/<build>/`): a
/// build that ended, however it ended, leaves nothing.
pub fn leftover_work_files(root: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(root.join("tmp"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .flat_map(|e| e.path().read_dir().ok())
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Builds `t`'s context with plain progress, `args` and `SOURCE_DATE_EPOCH=epoch`;
/// panics with the log on failure. Returns (image ID, log).
pub fn build_at_epoch(t: &TestContext, args: &[&str], epoch: &str) -> (String, String) {
    let ctx = t.context().to_string_lossy().into_owned();
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(&ctx);
    let out = rbuild_in(&t.root(), &all, &[("SOURCE_DATE_EPOCH", epoch)]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{log}");
    (String::from_utf8_lossy(&out.stdout).trim().to_owned(), log)
}

/// Unpacks image `name` from the store with umoci; returns the rootfs path.
pub fn umoci_unpack(t: &TestContext, name: &str) -> PathBuf {
    let bundle = t.path("bundle");
    let _ = std::fs::remove_dir_all(&bundle);
    umoci_unpack_from(&t.root(), name, &bundle)
}

/// Unpacks image `name` of the store at `root` into `bundle` with umoci; returns the
/// rootfs path.
pub fn umoci_unpack_from(root: &Path, name: &str, bundle: &Path) -> PathBuf {
    let image = format!("{}:{name}", root.display());
    let out = Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(bundle)
        .output()
        .expect("umoci");
    assert!(
        out.status.success(),
        "umoci unpack failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.join("rootfs")
}

/// The command lines of running processes that contain `marker`.
pub fn processes_with(marker: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            text.contains(marker).then_some(text)
        })
        .collect()
}

/// The text of file `rel` under `dir` (an output of a build); panics naming `rel`.
pub fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A busybox base (from Debian's busybox-static) followed by `rest`.
pub fn busybox(rest: &str, files: &[(&str, &str)]) -> Option<TestContext> {
    if !can_mount() || !std::path::Path::new("/bin/busybox").is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs busybox-static"
        );
        return None;
    }
    let dockerfile = format!(
        "FROM scratch AS base\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
         COPY passwd group /etc/\nRUN mkdir -p /tmp && chmod 1777 /tmp\n{rest}"
    );
    let mut all = vec![
        (
            "passwd",
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        ("group", "root:x:0:\napp:x:1000:\nextra:x:2000:app\n"),
    ];
    all.extend_from_slice(files);
    let t = TestContext::new(&dockerfile, &all);
    std::fs::copy("/bin/busybox", t.context().join("busybox")).expect("copy busybox");
    Some(t)
}

/// Serves the current `body` over HTTP on 127.0.0.1 (with `Last-Modified` when given)
/// until the test ends; returns the port.
pub fn serve(
    body: std::sync::Arc<std::sync::Mutex<String>>,
    last_modified: Option<&'static str>,
) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = body.lock().map(|b| b.clone()).unwrap_or_default();
            let modified = last_modified
                .map(|m| format!("Last-Modified: {m}\r\n"))
                .unwrap_or_default();
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{modified}Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// Runs `rbuild --root <root> ARGS` under GNU time: (success, stderr, the largest
/// resident set size of the process in KiB). GNU time is the parent, not this test
/// process: a child's `ru_maxrss` counts the memory of the process it was forked from.
pub fn rbuild_measured(root: &Path, args: &[&str]) -> (bool, String, u64) {
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report.path())
        .arg(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("running rbuild under /usr/bin/time");
    let text = std::fs::read_to_string(report.path()).expect("time's report");
    let rss = text
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no max RSS in {text:?}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), stderr, rss)
}

/// Serves `body` to every HTTP request on 127.0.0.1 until the test ends; the port.
pub fn serve_bytes(body: Vec<u8>) -> u16 {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.read(&mut [0u8; 4096]);
            respond(&mut stream, "200 OK", &body);
        }
    });
    port
}

/// A `git daemon` serving `base` (its bare repositories) on a free port; killed on drop.
pub struct GitDaemon {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a `git daemon` exporting every repository below `base`.
pub fn git_daemon(base: &Path) -> GitDaemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    // `git-daemon` itself, not `git daemon`: a `git` wrapper may run it as a child
    // that killing the wrapper would leave behind, holding the test's stdout.
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git --exec-path");
    let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_owned();
    let child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon");
    // Up to 30 s: a loaded CI runner can be slow to start it.
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    GitDaemon { child, port }
}

/// Runs the shell `script` in `dir` with a fixed git identity and commit time; panics
/// when it fails. Returns its standard output, trimmed.
pub fn git_script(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .env("GIT_COMMITTER_DATE", "@981173106 +0000")
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Serves the files below `base` over plain HTTP on 127.0.0.1 until the test ends (a
/// "dumb" git server for bare repositories after `git update-server-info`); the port.
pub fn serve_dir(base: PathBuf) -> u16 {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split(' ').nth(1).unwrap_or("/");
            let path = path.split('?').next().unwrap_or_default();
            let safe = !path.split('/').any(|c| c == "..");
            let body = std::fs::read(base.join(path.trim_start_matches('/')))
                .ok()
                .filter(|_| safe);
            match body {
                Some(body) => respond(&mut stream, "200 OK", &body),
                None => respond(&mut stream, "404 Not Found", b""),
            }
        }
    });
    port
}

/// Answers an HTTP request with `status` and `body`, then the connection closes.
fn respond(stream: &mut std::net::TcpStream, status: &str, body: &[u8]) {
    use std::io::Write;
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// Panics when a file below `dir` contains `needle` (a secret that must not be kept).
pub fn assert_nowhere_in(dir: &Path, needle: &str) {
    let out = Command::new("grep")
        .args(["-r", "-l", "-F", "--", needle])
        .arg(dir)
        .output()
        .expect("grep");
    let found = String::from_utf8_lossy(&out.stdout);
    assert!(found.is_empty(), "{needle:?} is in {found}");
}

/// Runs `podman ARGS` with a private store under `dir` (never the host's images);
/// its stdout, or a panic with its stderr.
pub fn podman(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("podman")
        .arg("--root")
        .arg(dir.join("podman-root"))
        .arg("--runroot")
        .arg(dir.join("podman-run"))
        .args(["--storage-driver", "vfs", "--events-backend", "none"])
        .args(args)
        .output()
        .expect("running podman");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "podman {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The manifest digest of `image` (a name, or an image ID as a build prints it) in
/// store `root`: what a build's reproducibility is judged by, layer bytes included.
pub fn manifest_digest(root: &Path, image: &str) -> String {
    run_ok(root, &["inspect", "--format", "{{.Digest}}", image], &[]).0
}

/// The text of `member` in the tar `file` (read with GNU tar); panics naming it.
pub fn tar_member(file: &Path, member: &str) -> String {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(file)
        .arg(member)
        .output()
        .expect("running tar");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{member} of {}: {stderr}",
        file.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
