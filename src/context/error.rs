//! Errors of the build-context module. Every I/O error carries the path it is about;
//! pattern errors carry the path being matched and which pattern list failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::parser::ignore;

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// Which pattern list of a [`Filter`](super::Filter) an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternList {
    /// The allow-list (`include`).
    Include,
    /// The `.dockerignore` list (`exclude`).
    Exclude,
}

impl fmt::Display for PatternList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatternList::Include => "include",
            PatternList::Exclude => "exclude",
        })
    }
}

/// What went wrong while filtering, walking or opening the build context.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory could not be read.
    #[error("cannot read directory `{}`", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry's metadata could not be read.
    #[error("cannot stat `{}`", path.display())]
    Metadata {
        /// The entry.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A context file could not be opened.
    #[error("cannot open context file `{}`", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A pattern list could not be compiled.
    #[error("invalid {list} patterns")]
    Patterns {
        /// Which list.
        list: PatternList,
        /// What is wrong with it.
        source: ignore::Error,
    },
    /// Matching a path failed (a pattern that BuildKit also rejects at match time).
    #[error("cannot match `{path}` against the {list} patterns")]
    Match {
        /// The context-relative path being matched.
        path: String,
        /// Which list.
        list: PatternList,
        /// The pattern error.
        source: ignore::Error,
    },
    /// The path is filtered out of the context.
    #[error("`{path}` is excluded from the build context")]
    Excluded {
        /// The context-relative path.
        path: String,
    },
    /// The path is absolute in a way that cannot be made relative, or climbs out (`..`).
    #[error("`{path}` is not a path inside the build context")]
    OutsideContext {
        /// The path as given.
        path: String,
    },
    /// A component of the path is a symlink; context files are opened without following
    /// symlinks, as the walk reports them.
    #[error("`{}` is a symlink", path.display())]
    Symlink {
        /// The symlink.
        path: PathBuf,
    },
    /// An ignore file exists but could not be read.
    #[error("cannot read ignore file `{}`", path.display())]
    ReadIgnoreFile {
        /// The ignore file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An ignore file in the context is a symlink that leads out of it.
    #[error("ignore file `{}` is a symlink out of the context: refusing to read it", path.display())]
    IgnoreFileOutside {
        /// The ignore file.
        path: PathBuf,
    },
    /// An ignore file holds an invalid pattern.
    #[error("invalid ignore file `{}`", path.display())]
    IgnoreFile {
        /// The ignore file.
        path: PathBuf,
        /// What is wrong with it.
        source: ignore::Error,
    },
}

impl Error {
    /// Whether the error means "no such file in the (filtered) context": the path is
    /// excluded or does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Excluded { .. } => true,
            Error::Open { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_object() {
        let e = Error::ReadIgnoreFile {
            path: "/ctx/.dockerignore".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            e.to_string(),
            "cannot read ignore file `/ctx/.dockerignore`"
        );
        assert!(Error::Excluded { path: "a".into() }.is_not_found());
        assert!(!Error::OutsideContext { path: "..".into() }.is_not_found());
    }
}
