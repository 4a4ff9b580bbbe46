//! The build context: a directory walked deterministically through stacked filters that
//! honour `.dockerignore` (the part of BuildKit that tonistiigi/fsutil implements).
//!
//! Owns: the filtered walk ([`BuildContext::walk`]), opening files through the same
//! view ([`BuildContext::open`]) and choosing the ignore file ([`dockerignore_for`]).
//! Does not own: pattern syntax and matching ([`crate::parser::ignore`]), copying or
//! archiving the entries (later stages consume [`Entry`] values).
//!
//! Invariants:
//! * entries come depth-first, names sorted bytewise within each directory;
//! * a directory that is itself filtered out is emitted (once, just before) when
//!   something below it passes, so every emitted entry's parents were emitted first;
//! * a directory is not read when no path below it could pass, so unreadable excluded
//!   directories are no error;
//! * symlinks are entries of their own and are never followed; each entry carries the
//!   `lstat` metadata read during the walk, so nothing needs to stat it again.
//!
//! ```no_run
//! use rbuild::context::{dockerignore_for, BuildContext, Filter};
//! use std::path::Path;
//!
//! let root = Path::new("app");
//! let mut filter = Filter::new();
//! if let Some(file) = dockerignore_for(root, &root.join("Dockerfile"))? {
//!     filter = filter.with_exclude(file.matcher().clone());
//! }
//! for entry in BuildContext::new(root).with_filter(filter).entries()? {
//!     println!("{:?} {}", entry.kind(), entry.path_str());
//! }
//! # Ok::<(), rbuild::context::Error>(())
//! ```

mod error;
mod filter;
mod ignore_file;
mod open;
mod readahead;
pub mod source;
mod stat;
mod walk;

#[cfg(test)]
mod proptests;

use std::fs::FileType;
use std::path::Path;

pub use error::{Error, PatternList, Result};
pub use filter::Filter;
pub use ignore_file::{dockerignore_for, read_ignore_file, root_dockerignore, IgnoreFile};
pub use open::{check_unchanged, open_beneath, open_unchanged};
pub use stat::{Kind, Stat};
pub use walk::BuildContext;

/// What kind of filesystem object an entry is (from `lstat`: symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else: device, FIFO, socket.
    Other,
}

impl EntryKind {
    fn of(file_type: FileType) -> Self {
        if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        }
    }
}

/// One object of the build context, as the walk found it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The exact path when it is not `path_str` (a name that is not UTF-8): most
    /// entries keep one copy of their path, not two.
    exact: Option<Box<Path>>,
    path_str: String,
    kind: EntryKind,
    metadata: Stat,
    /// Number of components of the path (children of the root have depth 1).
    depth: usize,
}

impl Entry {
    /// The path relative to the context root.
    pub fn path(&self) -> &Path {
        self.exact
            .as_deref()
            .unwrap_or_else(|| Path::new(&self.path_str))
    }

    /// The relative path with `/` separators, as the patterns saw it (names that are not
    /// UTF-8 are converted lossily here; [`path`](Self::path) is exact).
    pub fn path_str(&self) -> &str {
        &self.path_str
    }

    /// The kind of object.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// Whether the entry is a directory (not a symlink to one).
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }

    /// The `lstat` metadata read during the walk.
    pub fn metadata(&self) -> &Stat {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_kinds_come_from_lstat() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        let kind = |p: &Path| EntryKind::of(std::fs::symlink_metadata(p).unwrap().file_type());
        assert_eq!(kind(dir.path()), EntryKind::Dir);
        assert_eq!(kind(&link), EntryKind::Symlink);
    }
}
