//! The process model: pid namespace, exit statuses, reaping, timeouts, and that
//! nothing (process or mount) outlives a run.

use std::time::{Duration, Instant};

use crate::executor::sandbox::HELPER_ARGV0;

use super::*;

#[test]
fn runs_a_command_and_streams_its_output() {
    if !prerequisites("sandbox run") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "echo out; echo err >&2; echo $$");
    assert_eq!(
        (code, out.as_str()),
        (0, "out\nerr\n2\n"),
        "init is pid 1, the command pid 2"
    );
}

#[test]
fn only_the_sandbox_processes_are_in_proc() {
    if !prerequisites("pid namespace") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "cd /proc && echo [0-9]*");
    assert_eq!(code, 0);
    let pids: Vec<u32> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
    // init (1), the shell (2); the shell's glob runs in-process.
    assert_eq!(pids, [1, 2], "{out}");
}

#[test]
fn exit_codes_and_signal_deaths_pass_through() {
    if !prerequisites("exit status") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (status, _) = run(&rootfs.spec(&["/bin/sh", "-c", "exit 3"]));
    assert_eq!(
        status.unwrap(),
        ExitStatus {
            code: 3,
            signal: None,
            usage: None
        }
    );
    let (status, _) = run(&rootfs.spec(&["/bin/sh", "-c", "kill -9 $$"]));
    assert_eq!(
        status.unwrap(),
        ExitStatus {
            code: 137,
            signal: Some(9),
            usage: None
        }
    );
    let (status, _) = run(&rootfs.spec(&["/bin/sh", "-c", "kill -TERM $$"]));
    assert_eq!(
        status.unwrap(),
        ExitStatus {
            code: 143,
            signal: Some(15),
            usage: None
        }
    );
}

#[test]
fn init_reaps_orphans() {
    if !prerequisites("zombie reaping") {
        return;
    }
    let rootfs = Rootfs::busybox();
    // The inner shell exits at once; its background `sleep` is reparented to init,
    // exits, and must be reaped there rather than linger as a zombie.
    let script =
        "sh -c 'sleep 0.1 &'; sleep 0.6; cat /proc/[0-9]*/stat | cut -d' ' -f3 | grep -c Z; exit 5";
    let (code, out) = sh(&rootfs, script);
    assert_eq!((code, out.trim()), (5, "0"));
}

#[test]
fn background_processes_die_with_the_command() {
    if !prerequisites("background processes") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let start = Instant::now();
    // The daemon keeps stdout open; the run must still end when the shell does.
    let (code, _) = sh(
        &rootfs,
        "sleep 3131 & sleep 3132 </dev/null >/dev/null 2>&1 & exit 4",
    );
    assert_eq!(code, 4);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(processes_with("sleep 313"), Vec::<String>::new());
}

#[test]
fn a_timeout_kills_the_whole_step_and_leaves_nothing() {
    if !prerequisites("timeout") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut spec = rootfs.spec(&["/bin/sh", "-c", "sleep 4242 & sleep 4243; echo not reached"]);
    spec.timeout = Some(Duration::from_millis(400));
    spec.mounts = vec![super::super::Mount::Tmpfs {
        target: "/scratch".into(),
        size: None,
    }];
    let start = Instant::now();
    let (result, out) = run(&spec);
    assert!(
        matches!(result, Err(Error::Timeout { timeout }) if timeout == Duration::from_millis(400)),
        "{result:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(!out.contains("not reached"));
    assert_eq!(processes_with("sleep 424"), Vec::<String>::new());
    assert_eq!(host_mounts_under(rootfs.path()), Vec::<String>::new());
}

#[test]
fn a_cancel_flag_stops_the_running_step_and_leaves_nothing() {
    if !prerequisites("cancel") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let spec = rootfs.spec(&["/bin/sh", "-c", "sleep 5151 & sleep 5152; echo not reached"]);
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let setter = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let start = Instant::now();
    let mut out = Vec::new();
    let result = Sandbox::new()
        .with_cancel(flag)
        .run(&spec, &mut |b| out.extend_from_slice(b));
    setter.join().unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(!String::from_utf8_lossy(&out).contains("not reached"));
    assert_eq!(processes_with("sleep 515"), Vec::<String>::new());
    assert_eq!(host_mounts_under(rootfs.path()), Vec::<String>::new());
}

/// The pid of the sandbox helper above the host process whose command line contains
/// `marker`: the topmost of the `rbuild-sandbox` processes above it (the step's init
/// is a fork of the helper, with the same command line).
fn helper_of(marker: &str) -> Option<i32> {
    let first = processes_with(marker).into_iter().next()?;
    let mut pid: i32 = first.split(':').next()?.parse().ok()?;
    let mut helper = None;
    for _ in 0..8 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid: i32 = stat.rsplit(") ").next()?.split(' ').nth(1)?.parse().ok()?;
        let argv0 = fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
        if argv0.split(|&b| b == 0).next() == Some(HELPER_ARGV0.as_bytes()) {
            helper = Some(ppid);
        } else if helper.is_some() {
            break;
        }
        pid = ppid;
    }
    helper
}

/// Ctrl-C reaches the helper and rbuild at once: when the helper stops the step before
/// rbuild's own handler has run (a busy machine), the run is a cancel all the same, not
/// a helper that "ended without a report".
#[test]
fn a_step_stopped_by_ctrl_c_at_the_helper_is_a_cancel() {
    if !prerequisites("cancel") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let spec = rootfs.spec(&["/bin/sh", "-c", "sleep 6161"]);
    // Another thread, as the terminal is: the run is waiting in `poll` meanwhile.
    let interrupter = std::thread::spawn(|| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let helper = loop {
            if let Some(pid) = helper_of("sleep 6161") {
                break pid;
            }
            assert!(Instant::now() < deadline, "no helper above `sleep 6161`");
            std::thread::sleep(Duration::from_millis(5));
        };
        let pid = rustix::process::Pid::from_raw(helper).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    });
    let result = Sandbox::new().run(&spec, &mut |_| {});
    interrupter.join().unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert_eq!(processes_with("sleep 6161"), Vec::<String>::new());
}

#[test]
fn nothing_is_mounted_on_the_host_during_or_after_a_run() {
    if !prerequisites("mount namespace") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (code, out) = sh(&rootfs, "grep -c . /proc/self/mountinfo");
    assert_eq!(code, 0);
    assert!(
        out.trim().parse::<u32>().unwrap() > 10,
        "the sandbox has its own mounts: {out}"
    );
    // None of the sandbox's mounts (all below the rootfs) is visible to the host.
    assert_eq!(host_mounts_under(rootfs.path()), Vec::<String>::new());
}

#[test]
fn exec_failures_are_errors_not_exit_codes() {
    if !prerequisites("exec errors") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let (result, _) = run(&rootfs.spec(&["/no/such/binary"]));
    match result {
        Err(Error::Exec { argv, source }) => {
            assert_eq!(argv, ["/no/such/binary"]);
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("{other:?}"),
    }
    let (result, _) = run(&rootfs.spec(&["no-such-command"]));
    assert!(matches!(result, Err(Error::Exec { .. })), "{result:?}");
    // A PATH lookup finds busybox applets.
    let (result, out) = run(&rootfs.spec(&["echo", "found"]));
    assert_eq!((result.unwrap().code, out.as_str()), (0, "found\n"));
}

#[test]
fn setup_failures_name_the_step_and_path() {
    if !prerequisites("setup errors") {
        return;
    }
    let rootfs = Rootfs::busybox();
    fs::remove_dir(rootfs.path().join("proc")).unwrap();
    std::os::unix::fs::symlink("/etc", rootfs.path().join("proc")).unwrap();
    let (result, _) = run(&rootfs.spec(&["true"]));
    match result {
        Err(Error::Setup { op, path, .. }) => {
            assert_eq!((op, path.as_str()), (SetupOp::CheckTarget, "/proc"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn invalid_specs_are_refused_before_anything_runs() {
    let mut spec = spec_at("/nonexistent");
    spec.argv.clear();
    assert!(matches!(
        Sandbox::new().run(&spec, &mut |_| {}),
        Err(Error::InvalidSpec { field: "argv", .. })
    ));
    let mut spec = spec_at("/nonexistent");
    spec.cwd = "relative".into();
    assert!(matches!(
        spec.validate(),
        Err(Error::InvalidSpec { field: "cwd", .. })
    ));
    let mut spec = spec_at("/nonexistent");
    spec.env = vec!["NOEQUALS".into()];
    assert!(matches!(
        spec.validate(),
        Err(Error::InvalidSpec { field: "env", .. })
    ));
}

/// Set for the child test process of [`the_step_dies_with_its_caller`].
const CALLER_ENV: &str = "RBUILD_SANDBOX_TEST_CALLER_ROOTFS";

/// Not a test of its own: the caller that [`the_step_dies_with_its_caller`] starts
/// and kills. Does nothing unless that test set [`CALLER_ENV`].
#[test]
#[ignore = "helper process of the_step_dies_with_its_caller"]
fn caller_running_a_long_step() {
    let Ok(rootfs) = std::env::var(CALLER_ENV) else {
        return;
    };
    let mut spec = spec_at(rootfs);
    spec.argv = ["/bin/sh", "-c", "sleep 5151 & sleep 5152"]
        .map(String::from)
        .to_vec();
    let _ = run(&spec);
}

#[test]
fn the_step_dies_with_its_caller() {
    if !prerequisites("caller death") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut caller = std::process::Command::new("/proc/self/exe")
        .args([
            "--ignored",
            "--exact",
            "executor::sandbox::tests::process::caller_running_a_long_step",
        ])
        .env(CALLER_ENV, rootfs.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while processes_with("sleep 5152").is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    caller.kill().unwrap(); // SIGKILL: no cleanup code of the caller runs
    caller.wait().unwrap();
    let killed = Instant::now();
    while !processes_with("sleep 515").is_empty() || !host_mounts_under(rootfs.path()).is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "{:?}",
            processes_with("sleep 515")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
