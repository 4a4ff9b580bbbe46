//! End-to-end sandbox tests, run as root on a busybox rootfs (Debian's
//! `busybox-static`). Without root they are skipped with a printed reason, except
//! under `CI=true`, where that is a failure. The unit-test binary doubles as the
//! sandbox helper through the `.init_array` hook in `sys/test_hook.rs`.
//!
//! | file | proves |
//! |---|---|
//! | `process.rs` | pid namespace, exit codes and signals, reaping, timeouts, cleanup |
//! | `security.rs` | capabilities, `no_new_privs`, seccomp, masked and read-only paths |
//! | `filesystem.rs` | `/dev`, `/etc` files, stubs and the overlay upperdir, mounts |
//! | `hostile.rs` | device nodes outside `/dev`'s set, mount flags (`nodev`, `nosuid`, recursive read-only) |
//! | `identity.rs` | user, groups, env, cwd, host name, network namespaces |
//! | `limits.rs` | the step's cgroup (memory, pids, cpu, devices), ulimits, `/dev/shm` |
//! | `tests/it/rootless.rs` | the same sandbox in a user namespace (capabilities, `no_new_privs`, seccomp, networks, `kill -9`) |

mod filesystem;
mod hostile;
mod identity;
mod limits;
mod process;
mod security;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Error, Executor, ExitStatus, Network, Sandbox, SandboxSpec, SetupOp};

/// Mount points in this (the host's) mount namespace whose path mentions `path`.
pub(super) fn host_mounts_under(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_owned)
        .collect()
}

/// Host processes whose command line contains `marker`.
pub(super) fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// Whether the test may run (root and `/bin/busybox`); see the module docs.
pub(super) fn prerequisites(what: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let busybox = Path::new("/bin/busybox").exists();
    if root && busybox {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the sandbox tests as root with busybox-static installed ({what})"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipped: {what} needs root and /bin/busybox (apt-get install busybox-static)");
    }
    false
}

/// A throw-away busybox root filesystem.
pub(super) struct Rootfs {
    dir: tempfile::TempDir,
}

impl Rootfs {
    /// `/bin/busybox` with a symlink per applet, `/etc/passwd` (`root`, `app:1000`),
    /// `/etc/group` and an image `/etc/hosts`; `/proc`, `/dev`, `/sys`, `/tmp`.
    pub(super) fn busybox() -> Rootfs {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "bin", "etc", "proc", "dev", "sys", "tmp", "root", "home/app",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        let list = std::process::Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" && !applet.is_empty() {
                symlink("busybox", root.join("bin").join(applet)).unwrap();
            }
        }
        fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
        )
        .unwrap();
        fs::write(root.join("etc/hosts"), "10.9.8.7 from-the-image\n").unwrap();
        Rootfs { dir }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A spec running `argv` as root in this rootfs with no network.
    pub(super) fn spec(&self, argv: &[&str]) -> SandboxSpec {
        let mut spec = spec_at(self.path());
        spec.argv = argv.iter().map(|s| s.to_string()).collect();
        spec
    }
}

/// A spec running `true` as root in `rootfs`, with no network and host name `host`.
pub(super) fn spec_at(rootfs: impl Into<PathBuf>) -> SandboxSpec {
    SandboxSpec {
        rootfs: rootfs.into(),
        argv: vec!["true".into()],
        env: vec!["PATH=/bin".into(), "HOME=/root".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        hostname: "host".into(),
        network: Network::None,
        mounts: vec![],
        hosts: "127.0.0.1 localhost\n::1 localhost\n".into(),
        resolv_conf: "nameserver 192.0.2.53\n".into(),
        timeout: Some(Duration::from_secs(60)),
        limits: Default::default(),
        cgroup: None,
        binfmt: None,
    }
}

/// Runs `spec`; returns the result and the output.
pub(super) fn run(spec: &SandboxSpec) -> (Result<ExitStatus, Error>, String) {
    let mut out = Vec::new();
    let result = Sandbox::new().run(spec, &mut |b| out.extend_from_slice(b));
    (result, String::from_utf8_lossy(&out).into_owned())
}

/// Runs a shell script as root; panics unless the sandbox itself worked.
pub(super) fn sh(rootfs: &Rootfs, script: &str) -> (i32, String) {
    let (result, out) = run(&rootfs.spec(&["/bin/sh", "-c", script]));
    let status = result.unwrap_or_else(|e| panic!("sandbox failed: {e:?} (output: {out})"));
    (status.code, out)
}
