//! A step's mount scratch: a directory in the store's work dir for what backs the
//! mounts (context copies, `rw` uppers, the secrets tmpfs, ssh sockets), and what keeps
//! them alive until the step ends, undone in reverse order.

use std::path::{Path, PathBuf};

use super::super::error::ExecError;
use super::super::step_root::RootView;
use super::ssh;
use crate::layers::OverlayMount;
use crate::store::FileLock;

/// Size of the tmpfs that holds a step's secret files.
const SECRETS_TMPFS_SIZE: &str = "16m";

/// What keeps a mount's backing alive until the step ends (held only to be dropped).
#[allow(dead_code)]
pub(super) enum Keeper {
    /// A read-only view of a stage or image.
    View(RootView),
    /// The overlay of an `rw` bind.
    Overlay(OverlayMount),
    /// A cache lock (`locked` or `private` sharing).
    Lock(FileLock),
    /// The shared lock that marks a cache directory in use.
    InUse(super::cache::InUse),
    /// The tmpfs of the step's secrets.
    Tmpfs(PathBuf),
    /// An ssh agent proxy.
    Agent(ssh::AgentProxy),
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if let Keeper::Tmpfs(path) = self {
            let _ = rustix::mount::unmount(path.as_path(), rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// The step's scratch directory and what it keeps alive, undone in reverse order.
pub(super) struct Scratch {
    keepers: Vec<Keeper>,
    /// Short directories in the system temp dir for sockets (see `socket_path`).
    short: Vec<tempfile::TempDir>,
    dir: tempfile::TempDir,
    next: usize,
}

impl Scratch {
    pub(super) fn new(work: &Path) -> Result<Scratch, ExecError> {
        let dir = tempfile::Builder::new()
            .prefix("mounts-")
            .tempdir_in(work)
            .map_err(ExecError::fs("cannot create a directory in", work))?;
        Ok(Scratch {
            keepers: Vec::new(),
            short: Vec::new(),
            dir,
            next: 0,
        })
    }

    /// A new, empty directory named after `what`.
    pub(super) fn fresh(&mut self, what: &str) -> Result<PathBuf, ExecError> {
        self.next += 1;
        let path = self.dir.path().join(format!("{what}-{}", self.next));
        std::fs::create_dir(&path).map_err(ExecError::fs("cannot create", &path))?;
        Ok(path)
    }

    pub(super) fn keep(&mut self, keeper: Keeper) {
        self.keepers.push(keeper);
    }

    pub(super) fn keep_overlay(&mut self, mount: OverlayMount) {
        self.keep(Keeper::Overlay(mount));
    }

    /// The tmpfs (mode 0700, mounted on first use) that holds secret files.
    pub(super) fn secrets_dir(&mut self) -> Result<PathBuf, ExecError> {
        let path = self.dir.path().join("secrets");
        if self
            .keepers
            .iter()
            .any(|k| matches!(k, Keeper::Tmpfs(p) if *p == path))
        {
            return Ok(path);
        }
        std::fs::create_dir(&path).map_err(ExecError::fs("cannot create", &path))?;
        use rustix::mount::{mount, MountFlags};
        let data = format!("mode=0700,size={SECRETS_TMPFS_SIZE}");
        mount(
            "rbuild-secrets",
            &path,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            Some(std::ffi::CString::new(data).unwrap_or_default().as_c_str()),
        )
        .map_err(|e| ExecError::fs("cannot mount a tmpfs for secrets at", &path)(e.into()))?;
        self.keep(Keeper::Tmpfs(path.clone()));
        Ok(path)
    }

    /// A path for the `index`-th ssh socket, short enough for `sun_path` (108 bytes).
    pub(super) fn socket_path(&mut self, index: usize) -> Result<PathBuf, ExecError> {
        let path = self.dir.path().join(format!("ssh-{index}.sock"));
        if path.as_os_str().len() < 100 {
            return Ok(path);
        }
        let short = tempfile::Builder::new()
            .prefix("rbuild-ssh-")
            .tempdir()
            .map_err(ExecError::fs(
                "cannot create a directory in",
                &std::env::temp_dir(),
            ))?;
        let path = short.path().join("agent.sock");
        self.short.push(short);
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        while let Some(keeper) = self.keepers.pop() {
            drop(keeper);
        }
    }
}
