//! One step's cgroup, from the helper's side: created with its limits before init is
//! forked, entered by init, read and removed after init is gone.
//!
//! Entering is the per-step cost that matters: a write to `cgroup.procs` takes the
//! kernel's global threadgroup lock, whose first writer after a quiet spell waits for
//! an RCU grace period (~10 ms a step, measured on this project's v1 host). So on v1
//! init moves its one thread with `0` written to each `tasks` file (a thread moving
//! itself skips that lock), and on v2 the helper creates init inside the cgroup
//! (`clone3` with `CLONE_INTO_CGROUP`), falling back to `cgroup.procs` on kernels
//! without it.
//!
//! Everything after creation goes through directory descriptors opened at creation:
//! the helper shares init's mount namespace, so once init has entered the step's root
//! (`pivot_root`) the helper's `/` is that root too, and `/sys/fs/cgroup` paths no
//! longer lead to the cgroupfs.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, Mode, OFlags};

use super::v1::{self, ParentCpuset};
use super::write::Write;
use super::{devices_bpf, v2, Controller, Place, Usage, Version};
use crate::executor::sandbox::limits::Limits;

/// How long a removal waits for the last processes of a killed step to leave the
/// cgroup (they are already dead; the kernel finishes their exit asynchronously).
const REMOVE_PATIENCE: Duration = Duration::from_secs(3);

/// A failed cgroup operation: the file or directory, and why.
#[derive(Debug)]
pub struct CgroupFailure {
    /// The cgroup file or directory.
    pub path: PathBuf,
    /// The error.
    pub error: io::Error,
}

fn failure(path: PathBuf) -> impl FnOnce(io::Error) -> CgroupFailure {
    move |error| CgroupFailure { path, error }
}

/// The step's cgroup in one hierarchy.
#[derive(Debug)]
struct Dir {
    /// The hierarchy directory it was made in.
    parent: OwnedFd,
    /// The step's cgroup directory.
    dir: OwnedFd,
    /// Its path, for messages.
    path: PathBuf,
    controllers: Vec<Controller>,
}

/// The directories of one step's cgroup (one per hierarchy).
#[derive(Debug)]
pub struct StepCgroup {
    version: Version,
    name: String,
    dirs: Vec<Dir>,
}

impl StepCgroup {
    /// Creates cgroup `name` in every hierarchy of `place` and writes `limits` into
    /// it. On failure nothing is left behind.
    pub fn create(place: &Place, name: &str, limits: &Limits) -> Result<StepCgroup, CgroupFailure> {
        let mut made = StepCgroup {
            version: place.version,
            name: name.to_owned(),
            dirs: Vec::new(),
        };
        for h in &place.hierarchies {
            let step = made.make_dir(&h.dir, &h.controllers).and_then(|dir| {
                let configured = configure(place.version, &dir, limits);
                made.dirs.push(dir);
                configured
            });
            if let Err(f) = step {
                let _ = made.remove();
                return Err(f);
            }
        }
        Ok(made)
    }

    fn make_dir(
        &self,
        parent_path: &Path,
        controllers: &[Controller],
    ) -> Result<Dir, CgroupFailure> {
        let path = parent_path.join(&self.name);
        let flags = OFlags::DIRECTORY | OFlags::CLOEXEC;
        let parent = rustix::fs::open(parent_path, flags | OFlags::PATH, Mode::empty())
            .map_err(|e| failure(parent_path.to_path_buf())(e.into()))?;
        rustix::fs::mkdirat(&parent, self.name.as_str(), Mode::from_raw_mode(0o755))
            .map_err(|e| failure(path.clone())(e.into()))?;
        let dir = rustix::fs::openat(&parent, self.name.as_str(), flags, Mode::empty());
        let dir = match dir {
            Ok(dir) => dir,
            Err(e) => {
                let _ = rustix::fs::unlinkat(&parent, self.name.as_str(), AtFlags::REMOVEDIR);
                return Err(failure(path)(e.into()));
            }
        };
        Ok(Dir {
            parent,
            dir,
            path,
            controllers: controllers.to_vec(),
        })
    }

    /// How init gets in (see the module documentation).
    pub fn entry(&self) -> Result<Entry, CgroupFailure> {
        let file = match self.version {
            Version::V1 => "tasks",
            Version::V2 => "cgroup.procs",
        };
        let writes = self
            .dirs
            .iter()
            .map(|d| {
                let flags = OFlags::WRONLY | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(&d.dir, file, flags, Mode::empty());
                let path = d.path.join(file);
                Ok((path.clone(), fd.map_err(|e| failure(path)(e.into()))?))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let clone_into = match (self.version, self.dirs.first()) {
            (Version::V2, Some(d)) => Some(d.dir.try_clone().map_err(failure(d.path.clone()))?),
            _ => None,
        };
        Ok(Entry { writes, clone_into })
    }

    /// What the cgroup counted (a counter that cannot be read counts 0).
    pub fn usage(&self) -> Usage {
        let mut usage = Usage::default();
        let (oom_file, oom_key) = match self.version {
            Version::V1 => v1::OOM_KILLS,
            Version::V2 => v2::OOM_KILLS,
        };
        for d in &self.dirs {
            let read = |file: &str| read_at(d.dir.as_fd(), file).unwrap_or_default();
            if d.controllers.contains(&Controller::Memory) {
                usage.oom_kills = counter(&read(oom_file), oom_key);
            }
            if d.controllers.contains(&Controller::Pids) {
                usage.pids_refused = counter(&read("pids.events"), "max");
            }
        }
        usage
    }

    /// Removes every directory (waiting, up to a few seconds, for exiting processes to
    /// leave); the first failure.
    pub fn remove(&self) -> Result<(), CgroupFailure> {
        let mut first = Ok(());
        for d in self.dirs.iter().rev() {
            let removed = remove_dir(d.parent.as_fd(), &self.name).map_err(failure(d.path.clone()));
            if first.is_ok() {
                first = removed;
            }
        }
        first
    }
}

/// How init enters the step's cgroup: created in it (v2), or moving itself (v1, or
/// v2 without `clone3`).
#[derive(Debug)]
pub struct Entry {
    /// The `tasks` (v1) or `cgroup.procs` (v2) files, open for writing.
    writes: Vec<(PathBuf, OwnedFd)>,
    /// v2: the cgroup directory to create init in.
    clone_into: Option<OwnedFd>,
}

impl Entry {
    /// The cgroup directory to create init in (`CLONE_INTO_CGROUP`), on v2.
    pub fn clone_into(&self) -> Option<BorrowedFd<'_>> {
        self.clone_into.as_ref().map(AsFd::as_fd)
    }

    /// Called by init: moves its only thread into the step's cgroup (writes `0`:
    /// "myself"), unless it was created there.
    pub fn join(&self, created_inside: bool) -> Result<(), CgroupFailure> {
        if created_inside {
            return Ok(());
        }
        for (path, fd) in &self.writes {
            rustix::io::write(fd, b"0").map_err(|e| failure(path.clone())(e.into()))?;
        }
        Ok(())
    }
}

/// Writes the limits of its controllers into the new cgroup `d` (on v2, attaches the
/// device program).
fn configure(version: Version, d: &Dir, limits: &Limits) -> Result<(), CgroupFailure> {
    for &controller in &d.controllers {
        if (version, controller) == (Version::V2, Controller::Devices) {
            devices_bpf::attach(d.dir.as_fd()).map_err(|e| failure(d.path.clone())(e.into()))?;
            continue;
        }
        let writes = match version {
            Version::V1 => {
                let cpuset = match controller {
                    Controller::Cpuset => parent_cpuset(d)?,
                    _ => ParentCpuset::default(),
                };
                v1::writes(controller, limits, &cpuset)
            }
            Version::V2 => v2::writes(controller, limits),
        };
        for w in writes {
            write_at(d.dir.as_fd(), &w).map_err(failure(d.path.join(w.file)))?;
        }
    }
    Ok(())
}

fn parent_cpuset(d: &Dir) -> Result<ParentCpuset, CgroupFailure> {
    let parent = d.path.parent().unwrap_or(&d.path);
    let read = |file: &str| read_at(d.parent.as_fd(), file).map_err(failure(parent.join(file)));
    Ok(ParentCpuset {
        cpus: read("cpuset.cpus")?,
        mems: read("cpuset.mems")?,
    })
}

/// Writes `w` in one `write` (an optional file that does not exist is skipped).
fn write_at(dir: BorrowedFd<'_>, w: &Write) -> io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CLOEXEC | OFlags::TRUNC;
    let fd = match rustix::fs::openat(dir, w.file, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) if w.optional => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let n = rustix::io::write(&fd, w.value.as_bytes())?;
    if n != w.value.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// Reads the file `name` of directory `dir`.
fn read_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<String> {
    let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text)?;
    Ok(text)
}

/// `rmdir` of `parent/name`, retried while the cgroup is still busy.
fn remove_dir(parent: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let deadline = Instant::now() + REMOVE_PATIENCE;
    let mut pause = Duration::from_millis(1);
    loop {
        match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(rustix::io::Errno::BUSY) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line); 0 if absent.
pub(super) fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::sandbox::cgroup::Hierarchy;

    #[test]
    fn counters_are_read_by_key() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(oom, "oom_kill"), 2);
        assert_eq!(
            counter("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n", "max"),
            3
        );
        assert_eq!(counter("max 7\n", "max"), 7);
        assert_eq!(counter("", "max"), 0);
    }

    /// A fake v2 tree: the step's files are written, its counters read, the
    /// directory removed.
    #[test]
    fn a_v2_step_cgroup_in_a_fake_tree() {
        let root = tempfile::tempdir().unwrap();
        let place = Place {
            version: Version::V2,
            hierarchies: vec![Hierarchy {
                dir: root.path().to_path_buf(),
                controllers: vec![Controller::Memory, Controller::Pids, Controller::Cpu],
            }],
            missing: Vec::new(),
        };
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(50),
            cpu_quota: Some(50_000),
            ..Limits::default()
        };
        // Without limits nothing is written; the kernel would populate the files.
        let cg = StepCgroup::create(&place, "rbuild-1-2-3", &Limits::default()).unwrap();
        let dir = root.path().join("rbuild-1-2-3");
        for f in ["memory.max", "pids.max", "cpu.max", "cgroup.procs"] {
            std::fs::write(dir.join(f), "max\n").unwrap();
        }
        configure(Version::V2, &cg.dirs[0], &limits).unwrap();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "67108864");
        assert!(
            !dir.join("memory.swap.max").exists(),
            "optional, absent: skipped"
        );
        assert_eq!(read("pids.max"), "50");
        assert_eq!(read("cpu.max"), "50000 100000");
        std::fs::write(dir.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        std::fs::write(dir.join("pids.events"), "max 4\n").unwrap();
        assert_eq!(
            cg.usage(),
            Usage {
                oom_kills: 1,
                pids_refused: 4
            }
        );
        let entry = cg.entry().unwrap();
        assert_eq!(entry.writes.len(), 1);
        assert!(entry.writes[0].0.ends_with("cgroup.procs"));
        assert!(entry.clone_into().is_some(), "v2 creates init inside");
        drop(entry);
        for f in std::fs::read_dir(&dir).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        cg.remove().unwrap();
        assert!(!dir.exists());
    }

    /// On v2 the device controller is the eBPF program, attached to the new
    /// directory: a fake tree is no cgroupfs, so the attach is refused (`EBADF`, or
    /// `EPERM` without `CAP_BPF`), naming the directory, and nothing is left.
    #[test]
    fn a_v2_step_cgroup_gets_the_device_program_attached() {
        let root = tempfile::tempdir().unwrap();
        let place = Place {
            version: Version::V2,
            hierarchies: vec![Hierarchy {
                dir: root.path().to_path_buf(),
                controllers: vec![Controller::Pids, Controller::Devices],
            }],
            missing: Vec::new(),
        };
        let err = StepCgroup::create(&place, "rbuild-1-2-3", &Limits::default()).unwrap_err();
        assert_eq!(err.path, root.path().join("rbuild-1-2-3"), "{err:?}");
        assert!(
            matches!(err.error.raw_os_error(), Some(libc::EBADF | libc::EPERM)),
            "{err:?}"
        );
        assert!(!root.path().join("rbuild-1-2-3").exists());
    }

    #[test]
    fn a_failed_creation_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let place = Place {
            version: Version::V1,
            hierarchies: vec![
                Hierarchy {
                    dir: root.path().join("pids"),
                    controllers: vec![Controller::Pids],
                },
                Hierarchy {
                    dir: root.path().join("cpuset"),
                    controllers: vec![Controller::Cpuset],
                },
            ],
            missing: Vec::new(),
        };
        std::fs::create_dir_all(root.path().join("pids")).unwrap();
        std::fs::create_dir_all(root.path().join("cpuset")).unwrap();
        // No parent cpuset.cpus to copy: the cpuset part fails.
        let err = StepCgroup::create(&place, "rbuild-1-2-3", &Limits::default()).unwrap_err();
        assert!(err.path.ends_with("cpuset/cpuset.cpus"), "{err:?}");
        assert!(!root.path().join("pids/rbuild-1-2-3").exists());
        assert!(!root.path().join("cpuset/rbuild-1-2-3").exists());
    }
}
