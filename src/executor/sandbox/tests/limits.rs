//! Limits: the step's cgroup (memory, processes, CPU, devices on v1) on this host's
//! real cgroupfs, `--ulimit` and the `/dev/shm` size; and that the cgroup is gone
//! after the run.

use std::path::PathBuf;

use super::*;
use crate::executor::sandbox::cgroup::{self, stale, Controller, Place, Version};
use crate::executor::sandbox::Limits;

/// This host's cgroup place, if the test may use it (root and a usable cgroupfs).
fn place(what: &str) -> Option<Place> {
    if !prerequisites(what) {
        return None;
    }
    let place = cgroup::detect();
    if place.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI hosts must allow cgroups ({what}): {place:?}"
        );
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped: {what} needs a usable cgroup: {:?}", place.missing);
        }
        return None;
    }
    Some(place)
}

/// Printed first by a step: the name of its cgroup (no cgroup namespace: the host's
/// paths show in `/proc/self/cgroup`).
const SHOW_CGROUP: &str = "grep -o 'rbuild-[0-9-]*' /proc/self/cgroup | head -1; ";

/// The step's cgroup name (the first line of its output) and the rest.
fn split_name(out: &str) -> (String, String) {
    let (name, rest) = out.split_once('\n').unwrap_or((out, ""));
    assert!(
        stale::parse(name).is_some(),
        "not a step cgroup name: {out:?}"
    );
    (name.to_owned(), rest.to_owned())
}

/// The directories of step cgroup `name` still present in `place`.
fn left(place: &Place, name: &str) -> Vec<PathBuf> {
    place
        .hierarchies
        .iter()
        .map(|h| h.dir.join(name))
        .filter(|d| d.exists())
        .collect()
}

fn limited(rootfs: &Rootfs, place: &Place, limits: Limits, script: &str) -> SandboxSpec {
    let mut spec = rootfs.spec(&["/bin/sh", "-c", &format!("{SHOW_CGROUP}{script}")]);
    spec.limits = limits;
    spec.cgroup = Some(place.clone());
    spec
}

#[test]
fn a_step_over_its_memory_limit_is_oom_killed_and_counted() {
    let Some(place) = place("memory limit") else {
        return;
    };
    if !place.has(Controller::Memory) {
        return;
    }
    let rootfs = Rootfs::busybox();
    let limits = Limits {
        memory: Some(32 << 20),
        ..Limits::default()
    };
    let script = "dd if=/dev/zero of=/dev/null bs=100M count=1";
    let (status, out) = run(&limited(&rootfs, &place, limits, script));
    let status = status.unwrap();
    assert_eq!(status.code, 137, "{out}");
    assert!(status.usage.is_some_and(|u| u.oom_kills >= 1), "{status:?}");
    assert_eq!(left(&place, &split_name(&out).0), Vec::<PathBuf>::new());
}

#[test]
fn a_step_at_its_process_limit_cannot_fork_and_it_is_counted() {
    let Some(place) = place("pids limit") else {
        return;
    };
    if !place.has(Controller::Pids) {
        return;
    }
    let rootfs = Rootfs::busybox();
    let limits = Limits {
        pids: Some(10),
        ..Limits::default()
    };
    let script = "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done; wait";
    let (status, out) = run(&limited(&rootfs, &place, limits, script));
    let status = status.unwrap();
    assert_ne!(status.code, 0, "{out}");
    assert!(
        status.usage.is_some_and(|u| u.pids_refused >= 1),
        "{status:?}"
    );
    assert_eq!(left(&place, &split_name(&out).0), Vec::<PathBuf>::new());
}

#[test]
fn cpu_limits_are_written_while_the_step_runs() {
    let Some(place) = place("cpu limit") else {
        return;
    };
    if !place.has(Controller::Cpu) {
        return;
    }
    let rootfs = Rootfs::busybox();
    let limits = Limits {
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        ..Limits::default()
    };
    let spec = limited(&rootfs, &place, limits, "sleep 0.5");
    let mut seen = Vec::new();
    let mut name = String::new();
    let result = Sandbox::new().run(&spec, &mut |bytes| {
        name = split_name(&String::from_utf8_lossy(bytes)).0;
        let Some(h) = place
            .hierarchies
            .iter()
            .find(|h| h.controllers.contains(&Controller::Cpu))
        else {
            return;
        };
        let read = |f: &str| std::fs::read_to_string(h.dir.join(&name).join(f)).unwrap_or_default();
        seen = match place.version {
            Version::V1 => vec![read("cpu.cfs_quota_us"), read("cpu.cfs_period_us")],
            Version::V2 => vec![read("cpu.max")],
        };
    });
    assert!(result.unwrap().success());
    let want = match place.version {
        Version::V1 => ["50000\n", "100000\n"].as_slice(),
        Version::V2 => ["50000 100000\n"].as_slice(),
    };
    assert_eq!(seen, want);
    assert_eq!(left(&place, &name), Vec::<PathBuf>::new());
}

#[test]
fn v1_devices_allow_only_runc_s_list() {
    let Some(place) = place("devices cgroup") else {
        return;
    };
    if !place.has(Controller::Devices) {
        return;
    }
    let rootfs = Rootfs::busybox();
    // mknod is allowed (as runc), using the node is not; /dev/null is.
    let script = "mknod /tmp/disk b 7 0 && \
                  (head -c1 /tmp/disk >/dev/null 2>&1 && echo read || echo refused); \
                  echo x > /dev/null && echo null-ok";
    let (status, out) = run(&limited(&rootfs, &place, Limits::default(), script));
    assert!(status.unwrap().success(), "{out}");
    assert_eq!(split_name(&out).1, "refused\nnull-ok\n");
}

#[test]
fn ulimits_are_set_before_exec() {
    if !prerequisites("ulimit") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let mut spec = rootfs.spec(&["/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"]);
    spec.limits.ulimits = vec!["nofile=100:200".parse().unwrap(), "core=0".parse().unwrap()];
    let (status, out) = run(&spec);
    assert!(status.unwrap().success(), "{out}");
    assert_eq!(out, "100\n200\n0\n");
}

#[test]
fn shm_size_is_the_dev_shm_tmpfs_size() {
    if !prerequisites("shm size") {
        return;
    }
    let rootfs = Rootfs::busybox();
    let script = "df -k /dev/shm | tail -1 | awk '{print $2}'; \
                  dd if=/dev/zero of=/dev/shm/f bs=1k count=2048 2>/dev/null \
                  && echo fits || echo full";
    let mut spec = rootfs.spec(&["/bin/sh", "-c", script]);
    spec.limits.shm_size = 1 << 20;
    let (status, out) = run(&spec);
    assert!(status.unwrap().success(), "{out}");
    assert_eq!(out, "1024\nfull\n");
    let (status, out) = run(&rootfs.spec(&["/bin/sh", "-c", script]));
    assert!(status.unwrap().success(), "{out}");
    assert_eq!(out, "65536\nfits\n", "Docker's default 64 MiB");
}

#[test]
fn limits_without_their_cgroup_are_refused() {
    let mut spec = spec_at("/nonexistent");
    spec.limits.memory = Some(64 << 20);
    let (result, _) = run(&spec);
    assert!(
        matches!(
            result,
            Err(Error::InvalidSpec {
                field: "cgroup",
                ..
            })
        ),
        "{result:?}"
    );
}

/// The v2 path on any host with a cgroup2 mount (a hybrid host's `unified` one has no
/// controllers: the cgroup is made, init is created inside it with `clone3`, it is
/// removed).
#[test]
fn v2_init_is_created_inside_the_step_cgroup() {
    if !prerequisites("cgroup v2 entry") {
        return;
    }
    let Some(dir) = cgroup::own_v2_dir() else {
        return;
    };
    let place = Place {
        version: Version::V2,
        hierarchies: vec![cgroup::Hierarchy {
            dir: dir.clone(),
            controllers: Vec::new(),
        }],
        missing: Vec::new(),
    };
    let rootfs = Rootfs::busybox();
    let script = "grep '^0::' /proc/self/cgroup | grep -o 'rbuild-[0-9-]*'";
    let mut spec = rootfs.spec(&["/bin/sh", "-c", script]);
    spec.cgroup = Some(place.clone());
    let (status, out) = run(&spec);
    assert!(status.unwrap().success(), "{out}");
    let (name, _) = split_name(&out);
    assert!(!dir.join(&name).exists());
}

/// The v2 device program on any host with a cgroup2 mount (a hybrid host's `unified`
/// one): found attachable by the probe, attached to the step's cgroup while the step
/// runs, and the sandbox's devices still work under it.
#[test]
fn v2_steps_get_the_device_program() {
    if !prerequisites("cgroup v2 device program") {
        return;
    }
    let Some(place) = cgroup::own_v2_place() else {
        return;
    };
    if !place.has(Controller::Devices) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "skipped: no device program here: {}",
                place.why_not(Controller::Devices)
            );
        }
        return;
    }
    let dir = place.hierarchies[0].dir.clone();
    let rootfs = Rootfs::busybox();
    let script = "for d in null zero full random urandom; do \
                  head -c1 /dev/$d >/dev/null || echo $d refused; done; \
                  echo x >/dev/null && head -c4 /dev/urandom | wc -c; \
                  mknod /tmp/disk b 7 0 && echo mknod-ok; sleep 0.3";
    let spec = limited(&rootfs, &place, Limits::default(), script);
    let (mut name, mut attached) = (String::new(), None);
    let mut out = String::new();
    let result = Sandbox::new().run(&spec, &mut |bytes| {
        out.push_str(&String::from_utf8_lossy(bytes));
        if name.is_empty() {
            if let Some((first, _)) = out.split_once('\n') {
                name = first.to_owned();
                attached = Some(cgroup::device_programs(&dir.join(&name)).map_err(|e| e.kind()));
            }
        }
    });
    assert!(result.unwrap().success(), "{out}");
    assert_eq!(attached, Some(Ok(1)), "{out}");
    assert_eq!(split_name(&out).1, "4\nmknod-ok\n");
    assert!(!dir.join(&name).exists());
}
