//! The sandbox's filesystem: the mount plan inside the new root, the [`Sys`] seam it
//! runs through, and the mount-point stubs it creates and later removes.
//!
//! [`plan`] turns a spec into a list of [`Step`]s (pure, unit-tested); [`apply`] runs
//! them against a [`Sys`] after `pivot_root` (so every absolute path is inside the
//! step's root and symlinks cannot lead out of it); [`Stubs::cleanup`] undoes the
//! stubs once the command and all its processes are gone. `linux.rs` holds the real
//! [`Sys`] and the steps before `pivot_root`.
//!
//! Invariants:
//! - no device node the step makes or the image ships can be opened: the root and
//!   every mount below it are `nodev` (from [`enter`], [`ROOT_FLAGS`]), `/dev` is a
//!   `nodev` tmpfs, and only Docker's default nodes ([`DEVICES`]) are mounts of their
//!   own that allow devices (runc's device cgroup has the same effect; we have no
//!   cgroup); `mknod` itself still succeeds, as under Docker (`CAP_MKNOD`);
//! - every bind into the step (`RUN --mount` sources, the `/etc` files, read-only
//!   `/proc` paths) is `nosuid,nodev` (and read-only where asked) on every mount of
//!   its tree, not only at the top (`mount_setattr` with `AT_RECURSIVE`, kernel 5.12);
//! - `/proc`, `/dev` and `/sys` must be real directories (or missing): a symlink
//!   there is refused, so procfs and its masks cannot be redirected;
//! - any other mount target is resolved symlink by symlink inside the root, and the
//!   mount goes on the resolved path; missing components are created as stubs;
//! - a stub is removed only if it is still empty, and a parent's times are restored
//!   only if nothing but the stubs changed it.

mod linux;
mod stubs;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use rustix::mount::MountFlags;

pub(super) use linux::{enter, LinuxSys};
#[cfg(test)]
use stubs::resolve;
pub(crate) use stubs::Stubs;

use super::error::SetupOp;
use super::{Mount, SandboxSpec};

/// runc's and Docker's masked paths: a file gets `/dev/null`, a directory an empty
/// read-only tmpfs.
pub(crate) const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// runc's and Docker's read-only paths.
pub(crate) const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Flags of the step's root and every mount below it: `nodev`, but not `nosuid`
/// (Docker keeps setuid binaries of images working, `sudo` and the like).
pub(crate) const ROOT_FLAGS: MountFlags = MountFlags::NODEV;

/// A host file or directory bound into the step (a `RUN --mount` source), as
/// [`enter`] clones it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindSource {
    /// Host path.
    pub path: PathBuf,
    /// Whether the step may not write through it.
    pub readonly: bool,
}

impl BindSource {
    /// The flags every mount of the bound tree gets: `nosuid,nodev`, and read-only
    /// when asked.
    pub(crate) fn flags(&self) -> MountFlags {
        let flags = MountFlags::NOSUID | MountFlags::NODEV;
        if self.readonly {
            flags | MountFlags::RDONLY
        } else {
            flags
        }
    }
}

/// The device nodes of `/dev`: name, major, minor (all `0666`, root-owned). Each is
/// bound onto itself and only those mounts allow devices (`/dev` itself is `nodev`).
const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The symlinks of `/dev`: link target, link path.
const DEV_LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
];

/// Where the generated `/etc` files are written before being bind-mounted (on the
/// `/dev` tmpfs; removed again once mounted).
const STAGE: &str = "/dev/.rbuild-etc";

/// A timestamp: seconds and nanoseconds.
pub(crate) type Ts = (i64, i64);

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

/// The metadata [`apply`] and [`Stubs`] look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub kind: Kind,
    pub size: u64,
    pub atime: Ts,
    pub mtime: Ts,
}

/// The system calls of the filesystem setup; paths are absolute inside the root.
pub(crate) trait Sys {
    /// Metadata of `path`, not following a final symlink; `None` if missing.
    fn lstat(&self, path: &str) -> io::Result<Option<Meta>>;
    /// Metadata of `path`, following symlinks; `None` if missing.
    fn stat(&self, path: &str) -> io::Result<Option<Meta>>;
    /// The target of the symlink `path`.
    fn readlink(&self, path: &str) -> io::Result<String>;
    /// Sets access and modification times (of a directory).
    fn set_times(&self, path: &str, atime: Ts, mtime: Ts) -> io::Result<()>;
    /// `mkdir(path, mode)` (mode before umask; the helper's umask is 0).
    fn mkdir(&self, path: &str, mode: u32) -> io::Result<()>;
    /// Creates an empty file (`O_CREAT|O_EXCL`, mode 0644).
    fn create_file(&self, path: &str) -> io::Result<()>;
    /// Creates or replaces a file (mode 0644) with `contents`.
    fn write_file(&self, path: &str, contents: &[u8]) -> io::Result<()>;
    /// `mount(source, target, fstype, flags, data)`.
    fn mount(
        &self,
        source: &str,
        target: &str,
        fstype: &str,
        flags: MountFlags,
        data: &str,
    ) -> io::Result<()>;
    /// Recursive bind mount.
    fn bind(&self, source: &str, target: &str) -> io::Result<()>;
    /// Adds `flags` (of `RDONLY`, `NOSUID`, `NODEV`, `NOEXEC`) to the mount at
    /// `target` and to every mount below it.
    fn restrict(&self, target: &str, flags: MountFlags) -> io::Result<()>;
    /// Clears `nodev` on the one mount at `target` (a device node bound onto itself).
    fn allow_devices(&self, target: &str) -> io::Result<()>;
    /// Attaches the `tree`-th cloned bind source at `target`.
    fn attach(&self, tree: usize, target: &str) -> io::Result<()>;
    /// A `0666` character device.
    fn mknod(&self, path: &str, major: u32, minor: u32) -> io::Result<()>;
    /// `symlink(target, link)`.
    fn symlink(&self, target: &str, link: &str) -> io::Result<()>;
    /// Lazy unmount (`MNT_DETACH`).
    fn unmount(&self, target: &str) -> io::Result<()>;
    /// `rmdir` or `unlink`.
    fn remove(&self, path: &str, dir: bool) -> io::Result<()>;
}

/// One step of the filesystem setup after `pivot_root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Make sure a mount point exists: `strict` ones must be real directories.
    Target {
        path: String,
        dir: bool,
        strict: bool,
    },
    /// Mount a filesystem on a target.
    Mount {
        fstype: &'static str,
        target: String,
        flags: MountFlags,
        data: String,
    },
    Mkdir {
        path: String,
        mode: u32,
    },
    Mknod {
        path: String,
        major: u32,
        minor: u32,
    },
    Symlink {
        target: &'static str,
        link: &'static str,
    },
    WriteFile {
        path: String,
        contents: Vec<u8>,
    },
    /// Recursive bind of a path inside the root onto a target.
    Bind {
        source: String,
        target: String,
    },
    /// Add `flags` to a mount and every mount below it.
    Restrict {
        target: String,
        flags: MountFlags,
    },
    /// Let the one mount at `target` (a node of [`DEVICES`]) open devices.
    AllowDevices {
        target: String,
    },
    /// Attach the `tree`-th cloned host bind source.
    Attach {
        tree: usize,
        target: String,
    },
    /// Hide a path if it exists (see [`MASKED_PATHS`]).
    Mask {
        path: &'static str,
    },
    /// Make a path read-only if it exists (see [`READONLY_PATHS`]).
    ReadOnlyPath {
        path: &'static str,
    },
    /// Remove a staging file or directory.
    Remove {
        path: String,
        dir: bool,
    },
}

/// The steps for `spec`; `bind_is_dir[i]` tells whether the `i`-th bind mount's source
/// is a directory.
pub(crate) fn plan(spec: &SandboxSpec, bind_is_dir: &[bool]) -> Vec<Step> {
    use MountFlags as F;
    let nsd = F::NOSUID | F::NODEV | F::NOEXEC;
    let target = |path: &str, dir: bool, strict: bool| Step::Target {
        path: path.to_owned(),
        dir,
        strict,
    };
    let mount = |fstype, target: &str, flags, data: &str| Step::Mount {
        fstype,
        target: target.to_owned(),
        flags,
        data: data.to_owned(),
    };
    let mkdir = |path: &str, mode| Step::Mkdir {
        path: path.to_owned(),
        mode,
    };
    let shm = format!("mode=1777,size={}", spec.limits.shm_size);
    let mut s = vec![
        target("/proc", true, true),
        mount("proc", "/proc", nsd, ""),
        target("/dev", true, true),
        mount(
            "tmpfs",
            "/dev",
            F::NOSUID | F::NODEV | F::STRICTATIME,
            "mode=755,size=65536k",
        ),
    ];
    for (name, major, minor) in DEVICES {
        let path = format!("/dev/{name}");
        s.push(Step::Mknod {
            path: path.clone(),
            major,
            minor,
        });
        s.push(Step::Bind {
            source: path.clone(),
            target: path.clone(),
        });
        s.push(Step::AllowDevices { target: path });
    }
    for (target, link) in DEV_LINKS {
        s.push(Step::Symlink { target, link });
    }
    s.extend([
        mkdir("/dev/pts", 0o755),
        mount(
            "devpts",
            "/dev/pts",
            F::NOSUID | F::NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
        ),
        mkdir("/dev/shm", 0o1777),
        mount("tmpfs", "/dev/shm", nsd, &shm),
        mkdir("/dev/mqueue", 0o755),
        mount("mqueue", "/dev/mqueue", nsd, ""),
        target("/sys", true, true),
        mount("sysfs", "/sys", nsd | F::RDONLY, ""),
        mkdir(STAGE, 0o755),
    ]);
    let hostname = format!("{}\n", spec.hostname);
    let files = [
        ("hosts", &spec.hosts),
        ("resolv.conf", &spec.resolv_conf),
        ("hostname", &hostname),
    ];
    for (name, contents) in files {
        let (staged, dest) = (format!("{STAGE}/{name}"), format!("/etc/{name}"));
        s.push(Step::WriteFile {
            path: staged.clone(),
            contents: contents.as_bytes().to_vec(),
        });
        s.push(target(&dest, false, false));
        s.push(Step::Bind {
            source: staged.clone(),
            target: dest.clone(),
        });
        s.push(Step::Restrict {
            target: dest,
            flags: nsd | F::RDONLY,
        });
        s.push(Step::Remove {
            path: staged,
            dir: false,
        });
    }
    s.push(Step::Remove {
        path: STAGE.to_owned(),
        dir: true,
    });
    let mut tree = 0;
    for m in &spec.mounts {
        match m {
            Mount::Bind { target: dest, .. } => {
                let is_dir = bind_is_dir.get(tree).copied().unwrap_or(true);
                s.push(target(dest, is_dir, false));
                // Read-only, nosuid and nodev were set on the whole cloned tree
                // before it was attached (see `enter`).
                s.push(Step::Attach {
                    tree,
                    target: dest.clone(),
                });
                tree += 1;
            }
            Mount::Tmpfs { target: dest, size } => {
                s.push(target(dest, true, false));
                let data = size.map(|n| format!("size={n}")).unwrap_or_default();
                s.push(mount("tmpfs", dest, F::NOSUID | F::NODEV, &data));
            }
        }
    }
    s.extend(MASKED_PATHS.map(|path| Step::Mask { path }));
    s.extend(READONLY_PATHS.map(|path| Step::ReadOnlyPath { path }));
    s
}

/// A failed step: which operation on which path.
#[derive(Debug)]
pub(crate) struct Failure {
    pub op: SetupOp,
    pub path: String,
    pub error: io::Error,
}

fn fail(op: SetupOp, path: &str) -> impl FnOnce(io::Error) -> Failure + '_ {
    move |error| Failure {
        op,
        path: path.to_owned(),
        error,
    }
}

/// Runs `steps`, recording the stubs it creates in `stubs`.
pub(crate) fn apply(steps: &[Step], sys: &dyn Sys, stubs: &mut Stubs) -> Result<(), Failure> {
    use MountFlags as F;
    let mut resolved: HashMap<&str, String> = HashMap::new();
    let at = |resolved: &HashMap<&str, String>, path: &str| {
        resolved
            .get(path)
            .cloned()
            .unwrap_or_else(|| path.to_owned())
    };
    for step in steps {
        match step {
            Step::Target { path, dir, strict } => {
                let real = stubs.ensure(sys, path, *dir, *strict)?;
                resolved.insert(path, real);
            }
            Step::Mount {
                fstype,
                target,
                flags,
                data,
            } => {
                let t = at(&resolved, target);
                sys.mount(fstype, &t, fstype, *flags, data)
                    .map_err(fail(SetupOp::Mount, &t))?;
            }
            Step::Mkdir { path, mode } => {
                sys.mkdir(path, *mode).map_err(fail(SetupOp::Mkdir, path))?
            }
            Step::Mknod { path, major, minor } => sys
                .mknod(path, *major, *minor)
                .map_err(fail(SetupOp::Mknod, path))?,
            Step::Symlink { target, link } => sys
                .symlink(target, link)
                .map_err(fail(SetupOp::Symlink, link))?,
            Step::WriteFile { path, contents } => sys
                .write_file(path, contents)
                .map_err(fail(SetupOp::WriteFile, path))?,
            Step::Bind { source, target } => {
                let t = at(&resolved, target);
                sys.bind(source, &t).map_err(fail(SetupOp::Bind, &t))?;
            }
            Step::Restrict { target, flags } => {
                let t = at(&resolved, target);
                sys.restrict(&t, *flags)
                    .map_err(fail(SetupOp::SetAttrs, &t))?;
            }
            Step::AllowDevices { target } => sys
                .allow_devices(target)
                .map_err(fail(SetupOp::SetAttrs, target))?,
            Step::Attach { tree, target } => {
                let t = at(&resolved, target);
                sys.attach(*tree, &t).map_err(fail(SetupOp::Attach, &t))?;
            }
            Step::Mask { path } => mask(sys, path)?,
            Step::ReadOnlyPath { path } => {
                if sys
                    .lstat(path)
                    .map_err(fail(SetupOp::Stat, path))?
                    .is_some()
                {
                    sys.bind(path, path).map_err(fail(SetupOp::Bind, path))?;
                    let flags = F::NOSUID | F::NODEV | F::NOEXEC | F::RDONLY;
                    sys.restrict(path, flags)
                        .map_err(fail(SetupOp::SetAttrs, path))?;
                }
            }
            Step::Remove { path, dir } => sys
                .remove(path, *dir)
                .map_err(fail(SetupOp::Remove, path))?,
        }
    }
    Ok(())
}

/// Masks `path`: `/dev/null` over a file, an empty read-only tmpfs over a directory.
fn mask(sys: &dyn Sys, path: &str) -> Result<(), Failure> {
    use MountFlags as F;
    match sys.lstat(path).map_err(fail(SetupOp::Stat, path))? {
        None => Ok(()),
        Some(m) if m.kind == Kind::Dir => sys
            .mount(
                "tmpfs",
                path,
                "tmpfs",
                F::RDONLY | F::NOSUID | F::NODEV | F::NOEXEC,
                "",
            )
            .map_err(fail(SetupOp::Mount, path)),
        // As runc: a plain bind (a `nodev` remount would make the node unusable).
        Some(_) => sys
            .bind("/dev/null", path)
            .map_err(fail(SetupOp::Bind, path)),
    }
}
