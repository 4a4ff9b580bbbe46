//! RUN limits through the real binary: `--memory` (OOM kill named), `--pids-limit`
//! (fork refused, named, nothing left), `--ulimit`, `--shm-size`, and no step cgroup
//! left after `kill -9` of rbuild mid-step.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{busybox, processes_with, TestContext};

/// Where step cgroups are made on this host: the own cgroup of this process in each
/// hierarchy (v1: `memory`, `pids`, `cpu`, `cpuset`, `devices`; v2: the unified one
/// and, when it holds processes, its parent).
fn cgroup_dirs() -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut dirs = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        let dir = if controllers.is_empty() {
            Path::new("/sys/fs/cgroup").join(rel)
        } else {
            match controllers.split(',').find(|c| !c.starts_with("name=")) {
                Some(c) => Path::new("/sys/fs/cgroup").join(c).join(rel),
                None => continue,
            }
        };
        if let Some(parent) = dir.parent().filter(|_| controllers.is_empty()) {
            dirs.push(parent.to_path_buf());
        }
        dirs.push(dir);
    }
    dirs
}

/// Step cgroups (`rbuild-<ns>-<rbuild pid>-<helper pid>`) of rbuild process `pid`.
fn step_cgroups_of(pid: u32) -> Vec<PathBuf> {
    let infix = format!("-{pid}-");
    cgroup_dirs()
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("rbuild-") && name.contains(&infix)
        })
        .map(|e| e.path())
        .collect()
}

/// Whether step cgroups can be made here (a note says so otherwise).
fn cgroups_usable(t: &TestContext) -> bool {
    let out = t.rbuild(&[
        "build",
        "--progress",
        "plain",
        "--no-cache",
        "--memory",
        "1g",
        "-f",
        &t.path("probe.Dockerfile").display().to_string(),
        &t.context().display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let usable = !stderr.contains("needs a cgroup");
    if !usable {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI hosts must allow cgroups: {stderr}"
        );
        eprintln!("skipping: no usable cgroup here: {stderr}");
    }
    usable
}

fn with_probe(t: TestContext) -> TestContext {
    std::fs::write(
        t.path("probe.Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"true\"]\n",
    )
    .expect("probe Dockerfile");
    t
}

#[test]
fn memory_limit_kills_the_step_and_names_the_limit() {
    let Some(t) = busybox(
        "FROM base\nRUN dd if=/dev/zero of=/dev/null bs=200M count=1\n",
        &[],
    ) else {
        return;
    };
    let t = with_probe(t);
    if !cgroups_usable(&t) {
        return;
    }
    let stderr = t.build_fails(&["--memory", "64m"]);
    assert!(
        stderr.contains("RUN was killed: out of memory (--memory 64MiB)"),
        "{stderr}"
    );
}

#[test]
fn pids_limit_stops_a_fork_loop_and_leaves_no_process() {
    // A duration nothing else on the host sleeps for.
    let marker = "41.2718";
    let Some(t) = busybox(
        &format!(
            "FROM base\nRUN i=0; while [ $i -lt 200 ]; do sleep {marker} & i=$((i+1)); \
             done; wait\n"
        ),
        &[],
    ) else {
        return;
    };
    let t = with_probe(t);
    if !cgroups_usable(&t) {
        return;
    }
    let stderr = t.build_fails(&["--pids-limit", "50"]);
    assert!(
        stderr.contains("RUN hit the process limit (--pids-limit 50)"),
        "{stderr}"
    );
    assert_eq!(
        processes_with(&format!("sleep {marker}")),
        Vec::<String>::new()
    );
}

#[test]
fn ulimits_reach_the_command() {
    let Some(t) = busybox(
        "FROM base\nRUN ulimit -n > /soft && ulimit -Hn > /hard\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    t.build(&[
        "--ulimit",
        "nofile=100:100",
        "-o",
        &format!("type=local,dest={}", out.display()),
    ]);
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    assert_eq!(
        (read("soft").as_str(), read("hard").as_str()),
        ("100\n", "100\n")
    );
}

#[test]
fn shm_size_sets_the_dev_shm_tmpfs() {
    let Some(t) = busybox(
        "FROM base\nRUN df -k /dev/shm | tail -1 | awk '{print $2}' > /shm-kib && \
         (dd if=/dev/zero of=/dev/shm/f bs=1k count=2048 2>/dev/null && echo fits \
         || echo full) > /shm-2mib\n",
        &[],
    ) else {
        return;
    };
    let out = t.path("out");
    let dest = format!("type=local,dest={}", out.display());
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap_or_default();
    t.build(&["-o", &dest]);
    assert_eq!(read("shm-kib"), "65536\n", "Docker's default: 64 MiB");
    assert_eq!(read("shm-2mib"), "fits\n");
    // Another size is another cache key: the step runs again.
    t.build(&["--shm-size", "1m", "-o", &dest]);
    assert_eq!(read("shm-kib"), "1024\n");
    assert_eq!(read("shm-2mib"), "full\n");
}

#[test]
fn no_step_cgroup_or_process_survives_a_kill_of_rbuild() {
    let marker = "29.3141";
    let Some(t) = busybox(
        &format!("FROM base\nRUN echo started && sleep {marker}\n"),
        &[],
    ) else {
        return;
    };
    let t = with_probe(t);
    if !cgroups_usable(&t) {
        return;
    }
    let log = std::fs::File::create(t.path("log")).expect("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "plain"])
        .arg(t.context())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("rbuild");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while processes_with(&format!("sleep {marker}")).is_empty() {
        assert!(Instant::now() < deadline, "the step never started");
        assert!(child.try_wait().expect("wait").is_none(), "rbuild ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !step_cgroups_of(pid).is_empty(),
        "the step runs in a cgroup"
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (cgroups, sleeps) = (
            step_cgroups_of(pid),
            processes_with(&format!("sleep {marker}")),
        );
        if cgroups.is_empty() && sleeps.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left 3 s after the kill: {cgroups:?} {sleeps:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// rbuild with every cgroupfs mount read-only (in a mount namespace of its own).
fn rbuild_with_read_only_cgroups(t: &TestContext, args: &[&str]) -> std::process::Output {
    let script = "grep -E ' - cgroup2? ' /proc/self/mountinfo | cut -d' ' -f5 | \
                  while read -r m; do mount -o remount,bind,ro \"$m\" || exit 1; done && \
                  exec \"$@\"";
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_rbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress", "plain"])
        .args(args)
        .arg(t.context())
        .output()
        .expect("unshare")
}

#[test]
fn without_a_usable_cgroup_there_is_one_note_and_limit_flags_are_refused() {
    let Some(t) = busybox("FROM base\nRUN true\nRUN true\n", &[]) else {
        return;
    };
    let out = rbuild_with_read_only_cgroups(&t, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let note = "RUN steps run without cgroup limits (the default --pids-limit 4096 is not applied)";
    assert_eq!(
        stderr.matches(note).count(),
        1,
        "one note per build: {stderr}"
    );
    assert!(stderr.contains("read-only"), "{stderr}");
    let out = rbuild_with_read_only_cgroups(&t, &["--no-cache", "--memory", "64m"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--memory needs a cgroup, and none can be used here"),
        "{stderr}"
    );
}
