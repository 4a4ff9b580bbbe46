//! The sandbox's filesystem: the mount plan inside the new root, the [`Sys`] seam it
//! runs through, and the mount-point stubs it creates and later removes.
//!
//! [`plan()`] (`plan.rs`) turns a spec into a list of [`Step`]s (pure, unit-tested);
//! [`apply`] runs them against a [`Sys`] after `pivot_root` (so every absolute path is
//! inside the step's root and symlinks cannot lead out of it); [`Stubs::cleanup`]
//! undoes the stubs once the command and all its processes are gone. `linux.rs` holds
//! the real [`Sys`] and the steps before `pivot_root`.
//!
//! Invariants:
//! - no device node the step makes or the image ships can be opened: the root and
//!   every mount below it are `nodev` (from [`enter`], [`ROOT_FLAGS`]), `/dev` is a
//!   `nodev` tmpfs, and only Docker's default nodes (`DEVICES` in `plan.rs`) are mounts
//!   of their own that allow devices; the step's cgroup adds runc's device allowlist
//!   on top where one can be used (v1 `devices`, the v2 eBPF program: see
//!   `cgroup/`); `mknod` itself still succeeds, as under Docker (`CAP_MKNOD`);
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
mod plan;
mod stubs;
#[cfg(test)]
mod tests;
mod userns;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use rustix::mount::MountFlags;

pub(super) use linux::{enter, LinuxSys};
#[cfg(test)]
use plan::STAGE;
pub(crate) use plan::{plan, Step};
#[cfg(test)]
use stubs::resolve;
pub(crate) use stubs::Stubs;

use super::error::SetupOp;

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
    // Mount targets as resolved inside the root, by the path the plan names them.
    let mut resolved: HashMap<&str, String> = HashMap::new();
    for step in steps {
        if let Step::Target { path, dir, strict } = step {
            let real = stubs.ensure(sys, path, *dir, *strict)?;
            resolved.insert(path, real);
            continue;
        }
        let at = |path: &str| {
            resolved
                .get(path)
                .cloned()
                .unwrap_or_else(|| path.to_owned())
        };
        apply_one(step, sys, at)?;
    }
    Ok(())
}

/// Runs one step other than [`Step::Target`]; `at` gives a target's resolved path.
fn apply_one(step: &Step, sys: &dyn Sys, at: impl Fn(&str) -> String) -> Result<(), Failure> {
    match step {
        Step::Target { .. } => Ok(()),
        Step::Mount {
            fstype,
            target,
            flags,
            data,
        } => {
            let t = at(target);
            sys.mount(fstype, &t, fstype, *flags, data)
                .map_err(fail(SetupOp::Mount, &t))
        }
        Step::Mkdir { path, mode } => sys.mkdir(path, *mode).map_err(fail(SetupOp::Mkdir, path)),
        Step::Mknod { path, major, minor } => sys
            .mknod(path, *major, *minor)
            .map_err(fail(SetupOp::Mknod, path)),
        Step::Symlink { target, link } => sys
            .symlink(target, link)
            .map_err(fail(SetupOp::Symlink, link)),
        Step::WriteFile { path, contents } => sys
            .write_file(path, contents)
            .map_err(fail(SetupOp::WriteFile, path)),
        Step::Bind { source, target } => {
            let t = at(target);
            sys.bind(source, &t).map_err(fail(SetupOp::Bind, &t))
        }
        Step::Restrict { target, flags } => {
            let t = at(target);
            sys.restrict(&t, *flags)
                .map_err(fail(SetupOp::SetAttrs, &t))
        }
        Step::AllowDevices { target } => sys
            .allow_devices(target)
            .map_err(fail(SetupOp::SetAttrs, target)),
        Step::Attach { tree, target } => {
            let t = at(target);
            sys.attach(*tree, &t).map_err(fail(SetupOp::Attach, &t))
        }
        Step::Mask { path } => mask(sys, path),
        Step::ReadOnlyPath { path } => read_only(sys, path),
        Step::Remove { path, dir } => sys.remove(path, *dir).map_err(fail(SetupOp::Remove, path)),
    }
}

/// Makes `path` read-only (`nosuid,nodev,noexec` too) if it exists.
fn read_only(sys: &dyn Sys, path: &str) -> Result<(), Failure> {
    use MountFlags as F;
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
