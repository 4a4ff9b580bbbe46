//! Step cgroup names and the removal of stale ones.
//!
//! A step's cgroup is `rbuild-<pid namespace inode>-<rbuild pid>-<helper pid>`. Its
//! helper removes it; a helper killed outright (SIGKILL) cannot, and leaves it empty
//! (init died of its parent-death signal and took the pid namespace along). The next
//! build removes such directories: named by a helper of our own pid namespace (pids
//! of another namespace mean nothing here) that no longer exists. `rmdir` only
//! removes an empty cgroup, so a live step is never touched.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Place;

/// The prefix of every step cgroup's name.
pub const PREFIX: &str = "rbuild-";

/// The inode of this process's pid namespace (0 if unknown).
fn pid_namespace() -> u64 {
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// The name of the calling helper's step cgroup (its parent is rbuild).
pub fn step_name() -> String {
    let me = rustix::process::getpid().as_raw_nonzero();
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    format!("{PREFIX}{}-{parent}-{me}", pid_namespace())
}

/// The name of a probe directory of this process (a step name whose helper is us,
/// so that a probe left by a killed build is collected like a step cgroup).
pub(super) fn probe_name() -> String {
    let me = rustix::process::getpid().as_raw_nonzero();
    format!("{PREFIX}{}-{me}-{me}", pid_namespace())
}

/// `(pid namespace, rbuild pid, helper pid)` of a step cgroup name.
pub(crate) fn parse(name: &str) -> Option<(u64, i32, i32)> {
    let mut parts = name.strip_prefix(PREFIX)?.split('-');
    let ns = parts.next()?.parse().ok()?;
    let caller = parts.next()?.parse().ok()?;
    let helper = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((ns, caller, helper))
}

/// Whether process `pid` exists.
fn alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => false,
    }
}

/// Removes the stale step cgroups in every hierarchy of `place`; how many.
pub(super) fn collect(place: &Place) -> usize {
    let ns = pid_namespace();
    place
        .hierarchies
        .iter()
        .map(|h| collect_in(&h.dir, |name| stale(name, ns, alive)))
        .sum()
}

/// Whether `name` is a step cgroup of namespace `ns` whose helper is dead.
fn stale(name: &str, ns: u64, alive: impl Fn(i32) -> bool) -> bool {
    parse(name).is_some_and(|(n, _, helper)| n == ns && ns != 0 && !alive(helper))
}

/// Removes the directories of `dir` whose name `is_stale` accepts; how many.
fn collect_in(dir: &Path, is_stale: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(&is_stale))
        .filter(|e| std::fs::remove_dir(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = step_name();
        let (ns, caller, helper) = parse(&name).unwrap();
        assert_eq!(ns, pid_namespace());
        assert_eq!(helper, rustix::process::getpid().as_raw_nonzero().get());
        assert!(caller > 0);
        assert_eq!(parse(&probe_name()).map(|p| p.1 == p.2), Some(true));
        for bad in [
            "rbuild-1-2",
            "rbuild-1-2-3-4",
            "rbuild-a-2-3",
            "other-1-2-3",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_dead_helpers_of_our_namespace_are_stale() {
        let dead = |pid: i32| pid != 7;
        let is_stale = |name: &str| stale(name, 5, |pid| !dead(pid));
        assert!(is_stale("rbuild-5-1-9"));
        assert!(!is_stale("rbuild-5-1-7"), "helper alive");
        assert!(!is_stale("rbuild-6-1-9"), "another pid namespace");
        assert!(!is_stale("docker"));
        assert!(!stale("rbuild-0-1-9", 0, |_| false), "namespace unknown");
    }

    #[test]
    fn collection_removes_only_stale_empty_directories() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["rbuild-5-1-9", "rbuild-5-1-7", "keep"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::create_dir(dir.path().join("rbuild-5-1-8")).unwrap();
        std::fs::write(dir.path().join("rbuild-5-1-8/busy"), "").unwrap();
        let removed = collect_in(dir.path(), |n| stale(n, 5, |pid| pid == 7));
        assert_eq!(removed, 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["keep", "rbuild-5-1-7", "rbuild-5-1-8"]);
    }
}
