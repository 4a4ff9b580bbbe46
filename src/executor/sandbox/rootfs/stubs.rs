//! Mount-point stubs: creating what a mount target lacks, and removing it again with
//! the parent directories' times restored; plus the in-root symlink resolution the
//! targets go through.

use std::io;

use super::{fail, Failure, Kind, Meta, Sys, Ts};
use crate::executor::sandbox::error::SetupOp;

/// A path created only to be mounted on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stub {
    path: String,
    dir: bool,
    /// The final component of a target: something is mounted on it.
    mount_point: bool,
    /// Left in place after the step (see [`KEPT_DIRS`]).
    keep: bool,
}

/// Directories the runtime makes in a root that lacks them and that stay in the step's
/// layer, as they do under BuildKit with runc (`/dev`, `/proc`, `/sys` for the system
/// mounts, `/etc` for `hosts` and `resolv.conf`): a `RUN` in a `FROM scratch` stage
/// leaves these four empty directories, and so a non-empty layer.
const KEPT_DIRS: &[&str] = &["/dev", "/proc", "/sys", "/etc"];

/// An existing directory a stub was created in, and its times around that.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parent {
    path: String,
    before: (Ts, Ts),
    after_mtime: Ts,
}

/// The stubs [`super::apply`] created, in creation order.
#[derive(Debug, Default)]
pub(crate) struct Stubs {
    created: Vec<Stub>,
    parents: Vec<Parent>,
}

impl Stubs {
    /// Makes sure the mount point `path` exists, creating stubs for what is missing;
    /// returns the path with symlinks resolved.
    pub(super) fn ensure(
        &mut self,
        sys: &dyn Sys,
        path: &str,
        dir: bool,
        strict: bool,
    ) -> Result<String, Failure> {
        let path = if strict {
            match sys.lstat(path).map_err(fail(SetupOp::Stat, path))? {
                Some(m) if m.kind == Kind::Dir => return Ok(path.to_owned()),
                Some(_) => {
                    return Err(fail(SetupOp::CheckTarget, path)(
                        io::Error::from_raw_os_error(libc::ENOTDIR),
                    ))
                }
                None => path.to_owned(),
            }
        } else {
            resolve(sys, path).map_err(fail(SetupOp::Stat, path))?
        };
        if let Some(m) = sys.stat(&path).map_err(fail(SetupOp::Stat, &path))? {
            let ok = (m.kind == Kind::Dir) == dir;
            let errno = if dir { libc::ENOTDIR } else { libc::EISDIR };
            return if ok {
                Ok(path)
            } else {
                Err(fail(SetupOp::CheckTarget, &path)(
                    io::Error::from_raw_os_error(errno),
                ))
            };
        }
        self.create_missing(sys, &path, dir)?;
        Ok(path)
    }

    /// Creates each missing component of `path` as a stub: directories, and the last
    /// one a file unless `dir`.
    fn create_missing(&mut self, sys: &dyn Sys, path: &str, dir: bool) -> Result<(), Failure> {
        let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut current = String::new();
        for (i, part) in parts.iter().enumerate() {
            let parent = if current.is_empty() {
                "/".to_owned()
            } else {
                current.clone()
            };
            current = format!("{current}/{part}");
            if sys
                .lstat(&current)
                .map_err(fail(SetupOp::Stat, &current))?
                .is_some()
            {
                continue;
            }
            let last = i + 1 == parts.len();
            let make_dir = !last || dir;
            self.note_parent_before(sys, &parent)?;
            if make_dir {
                sys.mkdir(&current, 0o755)
                    .map_err(fail(SetupOp::Mkdir, &current))?;
            } else {
                sys.create_file(&current)
                    .map_err(fail(SetupOp::CreateFile, &current))?;
            }
            self.note_parent_after(sys, &parent)?;
            self.created.push(Stub {
                keep: make_dir && KEPT_DIRS.contains(&current.as_str()),
                path: current.clone(),
                dir: make_dir,
                mount_point: last,
            });
        }
        Ok(())
    }

    /// Records the times of a pre-existing `parent` before the first stub in it.
    fn note_parent_before(&mut self, sys: &dyn Sys, parent: &str) -> Result<(), Failure> {
        let is_stub = self.created.iter().any(|s| s.path == parent);
        if is_stub || self.parents.iter().any(|p| p.path == parent) {
            return Ok(());
        }
        let m = self.meta(sys, parent)?;
        self.parents.push(Parent {
            path: parent.to_owned(),
            before: (m.atime, m.mtime),
            after_mtime: m.mtime,
        });
        Ok(())
    }

    /// Records the modification time of `parent` after a stub was created in it.
    fn note_parent_after(&mut self, sys: &dyn Sys, parent: &str) -> Result<(), Failure> {
        if !self.parents.iter().any(|p| p.path == parent) {
            return Ok(());
        }
        let mtime = self.meta(sys, parent)?.mtime;
        for p in self.parents.iter_mut().filter(|p| p.path == parent) {
            p.after_mtime = mtime;
        }
        Ok(())
    }

    fn meta(&self, sys: &dyn Sys, path: &str) -> Result<Meta, Failure> {
        sys.stat(path)
            .map_err(fail(SetupOp::Stat, path))?
            .ok_or_else(|| fail(SetupOp::Stat, path)(io::Error::from_raw_os_error(libc::ENOENT)))
    }

    /// Unmounts and removes the stubs (best effort: a stub that is no longer empty, or
    /// cannot be removed, stays) and restores the times of their parents where only
    /// the stubs had changed them. Call once no process of the step is left.
    pub(crate) fn cleanup(&self, sys: &dyn Sys) {
        let kept_in = |p: &Parent| {
            self.created
                .iter()
                .any(|s| s.keep && parent_of(&s.path) == p.path)
        };
        let untouched: Vec<&Parent> = self
            .parents
            .iter()
            .filter(|p| !kept_in(p))
            .filter(|p| matches!(sys.stat(&p.path), Ok(Some(m)) if m.mtime == p.after_mtime))
            .collect();
        for stub in self.created.iter().rev().filter(|s| s.mount_point) {
            let _ = sys.unmount(&stub.path);
        }
        for stub in self.created.iter().rev() {
            let empty_file =
                matches!(sys.lstat(&stub.path), Ok(Some(m)) if m.kind == Kind::File && m.size == 0);
            if !stub.keep && (stub.dir || empty_file) {
                let _ = sys.remove(&stub.path, stub.dir);
            }
        }
        for p in untouched {
            let _ = sys.set_times(&p.path, p.before.0, p.before.1);
        }
    }
}

/// The parent directory of an absolute path (`/` for a top-level entry).
fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Resolves the symlinks of `path` component by component inside the root (absolute
/// link targets restart at the root, `..` never goes above it); components from the
/// first missing one on are kept as they are.
pub(crate) fn resolve(sys: &dyn Sys, path: &str) -> io::Result<String> {
    let mut todo: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut out: Vec<String> = Vec::new();
    let (mut links, mut missing) = (0, false);
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                out.pop();
                continue;
            }
            _ => {}
        }
        let candidate = format!(
            "/{}",
            out.iter()
                .chain([&part])
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join("/")
        );
        if missing {
            out.push(part);
            continue;
        }
        match sys.lstat(&candidate)? {
            None => {
                missing = true;
                out.push(part);
            }
            Some(m) if m.kind == Kind::Symlink => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = sys.readlink(&candidate)?;
                if target.starts_with('/') {
                    out.clear();
                }
                todo.extend(target.split('/').rev().map(str::to_owned));
            }
            Some(_) => out.push(part),
        }
    }
    Ok(format!("/{}", out.join("/")))
}
