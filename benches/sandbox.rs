//! `RUN true` through the sandbox, end to end: spawn the helper, namespaces, mounts,
//! `pivot_root`, privileges, seccomp, `execve`, reaping, stub cleanup, teardown;
//! `run_true_in_a_cgroup` adds the step's cgroup as a build makes it (every
//! hierarchy, the default `--pids-limit`, created, joined, read, removed).
//! 20 samples of one run each; divan prints the median. Needs root and
//! `/bin/busybox` (Debian's `busybox-static`). Run with `cargo bench --bench sandbox`.

use std::path::Path;
use std::time::Duration;

use rbuild::executor::sandbox::{cgroup, Executor, Limits, Network, Sandbox, SandboxSpec};

fn main() {
    // This binary is also the sandbox helper (`/proc/self/exe`).
    if let Some(code) = rbuild::reexec::dispatch() {
        std::process::exit(i32::from(code));
    }
    if !rustix::process::geteuid().is_root() || !Path::new("/bin/busybox").exists() {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: the sandbox benchmark needs root and /bin/busybox");
        }
        return;
    }
    divan::main();
}

/// A busybox rootfs with `/bin/true`, `/etc` (without `hosts`, so the stub path is
/// exercised too) and the usual mount points.
fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.path().join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.path().join("bin/true")).unwrap();
    dir
}

fn spec(root: &Path) -> SandboxSpec {
    SandboxSpec {
        rootfs: root.to_path_buf(),
        argv: vec!["/bin/true".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        hostname: "bench".into(),
        network: Network::None,
        mounts: vec![],
        hosts: "127.0.0.1 localhost\n".into(),
        resolv_conf: "nameserver 192.0.2.53\n".into(),
        timeout: Some(Duration::from_secs(30)),
        limits: Default::default(),
        cgroup: None,
        binfmt: None,
    }
}

fn bench_spec(bencher: divan::Bencher, spec: &SandboxSpec) {
    let sandbox = Sandbox::new();
    bencher.bench_local(|| {
        let status = sandbox.run(spec, &mut |_| {}).unwrap();
        assert!(status.success());
    });
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn run_true(bencher: divan::Bencher) {
    let root = rootfs();
    bench_spec(bencher, &spec(root.path()));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn run_true_in_a_cgroup(bencher: divan::Bencher) {
    let root = rootfs();
    let mut spec = spec(root.path());
    spec.limits = Limits {
        pids: Some(rbuild::executor::sandbox::DEFAULT_PIDS_LIMIT),
        ..Limits::default()
    };
    let place = cgroup::detect();
    spec.cgroup = (!place.is_empty()).then_some(place);
    bench_spec(bencher, &spec);
}
