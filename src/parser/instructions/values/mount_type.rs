//! The words of `RUN --mount`: its five types and the sharing modes of a cache. Both
//! the mount parser and the error messages use them, so they sit below both.

use std::fmt;

/// The five mount types of `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MountType {
    /// A read-only view of the context, a stage or an image (the default type).
    #[default]
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A fresh tmpfs.
    Tmpfs,
    /// A build secret, as a file and/or an environment variable.
    Secret,
    /// An ssh-agent socket.
    Ssh,
}

impl MountType {
    /// Every spelling, for "did you mean" hints.
    pub(super) const NAMES: [&'static str; 5] = ["bind", "cache", "tmpfs", "secret", "ssh"];

    /// The Dockerfile spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }

    /// The type `name` spells, in any case.
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_lowercase().as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return None,
        })
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sharing {
    /// Concurrent writers share the directory (the default).
    #[default]
    Shared,
    /// Each concurrent writer gets its own directory.
    Private,
    /// Writers wait for each other.
    Locked,
}

impl Sharing {
    /// Every spelling, for "did you mean" hints.
    pub(super) const NAMES: [&'static str; 3] = ["shared", "private", "locked"];

    /// The Dockerfile spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        }
    }

    /// The mode `name` spells, in any case.
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_lowercase().as_str() {
            "shared" => Sharing::Shared,
            "private" => Sharing::Private,
            "locked" => Sharing::Locked,
            _ => return None,
        })
    }
}
