//! The overlay mount of one build step, as an RAII guard.
//!
//! Invariants:
//! - mounted with `index=off,metacopy=off,redirect_dir=off`, so the upperdir is a
//!   self-contained diff (no copy-up of metadata only, no redirects to lower paths);
//! - the upperdir and workdir are fresh: created if missing, refused if not empty;
//! - any number of lowerdirs up to overlayfs' limit of 500: with the new mount API each
//!   is one `lowerdir+` (Linux >= 6.8), else `mount(2)` gets descriptor numbers (see
//!   `sys.rs`), so the one-page option limit is never reached;
//! - zero lowerdirs (`FROM scratch`) need no overlay: the upperdir itself is
//!   bind-mounted, so every change lands in it and it is still the step's diff;
//! - dropping the guard unmounts, lazily (`MNT_DETACH`) if the mount is busy.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::sys;
use crate::fs_error::FsError;

/// overlayfs' maximum number of lower layers (`OVL_MAX_STACK`).
pub const MAX_LOWERDIRS: usize = 500;

/// What to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlaySpec {
    /// Read-only layers, top first (the first one wins).
    pub lowerdirs: Vec<PathBuf>,
    /// Receives the step's changes; must be empty or missing.
    pub upperdir: PathBuf,
    /// overlayfs' scratch directory, on the same filesystem as `upperdir`; must be empty
    /// or missing.
    pub workdir: PathBuf,
}

/// Which mount interface to use (tests force each one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountApi {
    /// The new API when the kernel has it, else `mount(2)`.
    Auto,
    /// Only `mount(2)` (what kernels before 6.8 get; forced by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Legacy,
}

/// A mounted overlay; unmounted when dropped.
#[derive(Debug)]
pub struct OverlayMount {
    target: PathBuf,
    upperdir: PathBuf,
    mounted: bool,
}

impl OverlayMount {
    /// Mounts `spec` on the existing directory `target`.
    pub fn mount(spec: &OverlaySpec, target: &Path) -> Result<Self> {
        Self::mount_with(spec, target, MountApi::Auto)
    }

    pub(crate) fn mount_with(spec: &OverlaySpec, target: &Path, api: MountApi) -> Result<Self> {
        let options = |reason: String| Error::MountOptions {
            target: target.to_path_buf(),
            reason,
        };
        if spec.lowerdirs.len() > MAX_LOWERDIRS {
            return Err(options(format!(
                "{} lowerdirs, overlayfs allows at most {MAX_LOWERDIRS}",
                spec.lowerdirs.len()
            )));
        }
        for dir in [&spec.upperdir, &spec.workdir] {
            fresh_dir(dir)?;
        }
        for lower in &spec.lowerdirs {
            if !fs::metadata(lower)
                .map_err(Error::fs("stat lowerdir", lower))?
                .is_dir()
            {
                return Err(options(format!(
                    "lowerdir `{}` is not a directory",
                    lower.display()
                )));
            }
        }
        let mount_err = |source| Error::Mount {
            target: target.to_path_buf(),
            source,
        };
        if spec.lowerdirs.is_empty() {
            sys::bind_mount(&spec.upperdir, target).map_err(mount_err)?;
        } else {
            let lowers: Vec<&Path> = spec.lowerdirs.iter().map(PathBuf::as_path).collect();
            let new_api = match api {
                MountApi::Auto => {
                    sys::mount_overlay_new_api(&lowers, &spec.upperdir, &spec.workdir, target)
                        .map_err(mount_err)?
                }
                MountApi::Legacy => sys::NewApi::Unsupported,
            };
            if let sys::NewApi::Unsupported = new_api {
                sys::mount_overlay_legacy(&lowers, &spec.upperdir, &spec.workdir, target).map_err(
                    |e| {
                        if e.kind() == io::ErrorKind::InvalidInput {
                            options(e.to_string())
                        } else {
                            mount_err(e)
                        }
                    },
                )?;
            }
        }
        Ok(OverlayMount {
            target: target.to_path_buf(),
            upperdir: spec.upperdir.clone(),
            mounted: true,
        })
    }

    /// Where the merged view is mounted.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The upperdir: after unmounting, the step's diff
    /// (see [`super::Changes::Upperdir`]).
    pub fn upperdir(&self) -> &Path {
        &self.upperdir
    }

    /// Unmounts now; if the mount is busy it is detached lazily and this still succeeds.
    pub fn unmount(mut self) -> Result<()> {
        self.mounted = false;
        unmount(&self.target)
    }
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        if self.mounted {
            // Errors cannot be reported from drop; `unmount` is the checked path.
            let _ = unmount(&self.target);
        }
    }
}

fn unmount(target: &Path) -> Result<()> {
    match sys::unmount(target, false) {
        Ok(()) => Ok(()),
        Err(_) => sys::unmount(target, true).map_err(|source| Error::Unmount {
            target: target.to_path_buf(),
            source,
        }),
    }
}

/// Creates `dir` if missing and checks that it is empty.
fn fresh_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(Error::fs("create", dir))?;
    let mut entries = fs::read_dir(dir).map_err(Error::fs("read directory", dir))?;
    if entries.next().is_some() {
        return Err(Error::MountOptions {
            target: dir.to_path_buf(),
            reason: format!("`{}` must be empty", dir.display()),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "overlay_tests.rs"]
mod tests;
