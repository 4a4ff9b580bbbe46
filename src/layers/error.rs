//! The one error type of `layers/`.
//!
//! Every variant names the object it is about: a host path for filesystem work, a tar
//! entry name for applying, a mount target for overlay work. There is no catch-all
//! variant and no bare `io::Error` conversion: the caller always knows *which* path or
//! entry failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::fs_error::FsError;

/// Result of a `layers` operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while diffing, writing, applying or mounting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation on a host path failed.
    #[error("cannot {op} `{}`", path.display())]
    Fs {
        /// The operation, e.g. `read directory`.
        op: &'static str,
        /// The host path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// A regular file changed size while its content was being copied into the tar.
    #[error("file `{}` changed while it was archived (expected {expected} bytes, got {actual})", path.display())]
    FileChanged {
        /// The host path.
        path: PathBuf,
        /// The size recorded in the tar header.
        expected: u64,
        /// The number of bytes that could be read.
        actual: u64,
    },

    /// A value does not fit the tar format even with PAX records (device numbers).
    #[error("cannot encode {field} of `{}` in a tar header", path.display())]
    Unencodable {
        /// The header field.
        field: &'static str,
        /// The host path.
        path: PathBuf,
    },

    /// Writing the layer blob (compressor or sink) failed.
    #[error("cannot write layer blob")]
    WriteBlob {
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// Reading or decompressing the layer stream failed.
    #[error("cannot read layer stream")]
    ReadLayer {
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// A tar entry could not be applied.
    #[error("cannot {op} for layer entry `{entry}`")]
    Apply {
        /// The entry name as it appears in the tar.
        entry: String,
        /// The operation, e.g. `create file`.
        op: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// A tar entry's owner does not exist in a rootless build's user namespace.
    #[error(
        "cannot give layer entry `{entry}` the owner {uid}:{gid}: {}",
        crate::userns::UNMAPPED_OWNER
    )]
    UnmappedOwner {
        /// The entry name as it appears in the tar.
        entry: String,
        /// The owner.
        uid: u32,
        /// The group.
        gid: u32,
    },

    /// A tar entry was refused because applying it could write outside the target.
    #[error("refusing layer entry `{entry}`: {reason}")]
    UnsafeEntry {
        /// The entry name as it appears in the tar.
        entry: String,
        /// Why it is unsafe.
        reason: UnsafeReason,
    },

    /// A tar header refused before what it announces is read: more metadata than any
    /// reader keeps, or a size no tar reader of Docker's would accept.
    #[error("refusing layer tar header `{entry}`: {problem}")]
    BadHeader {
        /// The header's name (for a meta header, its own name, e.g. `PaxHeaders.0/f`).
        entry: String,
        /// What is wrong with it.
        problem: HeaderProblem,
    },

    /// A path whose name starts with `.wh.`, which a layer cannot carry: readers take it
    /// for a whiteout (an added `.wh.x` would delete `x`, a deleted one is skipped).
    #[error(
        "{} `{}`: a name starting with .wh. cannot be stored in a layer (OCI whiteout prefix)",
        if *.deleted { "deleted" } else { "created" },
        path.display()
    )]
    WhiteoutPrefix {
        /// The path, absolute in the layer's root (`/x/.wh.foo`).
        path: PathBuf,
        /// Whether the change is a deletion of that path.
        deleted: bool,
    },

    /// A tar entry of a type rbuild does not apply (e.g. GNU sparse files).
    #[error("unsupported tar entry type {kind:?} for layer entry `{entry}`")]
    UnsupportedEntry {
        /// The entry name.
        entry: String,
        /// The raw type flag.
        kind: char,
    },

    /// A hardlink entry names a target that does not exist in the target directory.
    #[error("hardlink `{entry}` points to `{target}`, which does not exist")]
    MissingLinkTarget {
        /// The entry name.
        entry: String,
        /// The link target as written in the tar.
        target: String,
    },

    /// Resolving a path inside a root met too many symlinks.
    #[error("too many levels of symbolic links resolving `{}` in `{}`", path.display(), root.display())]
    SymlinkLoop {
        /// The root the path is resolved in.
        root: PathBuf,
        /// The path being resolved.
        path: PathBuf,
    },

    /// Mounting an overlay failed.
    #[error("cannot mount overlay on `{}`", target.display())]
    Mount {
        /// The mount point.
        target: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// The overlay mount options cannot be expressed (too long or a path with `:`/`,`).
    #[error("cannot mount overlay on `{}`: {reason}", target.display())]
    MountOptions {
        /// The mount point.
        target: PathBuf,
        /// What is wrong with the options.
        reason: String,
    },

    /// Unmounting failed.
    #[error("cannot unmount `{}`", target.display())]
    Unmount {
        /// The mount point.
        target: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// The build was cancelled (Ctrl-C) while a tree was being copied.
    #[error("interrupted")]
    Cancelled,

    /// A helper thread died; this is a bug in rbuild.
    #[error("internal error in layers: {what} (please report this bug)")]
    Internal {
        /// What broke.
        what: &'static str,
    },
}

/// Why a tar entry is refused by the applier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeReason {
    /// A `..` component climbs above the target root.
    EscapesRoot,
    /// A parent component is a symlink already in the target.
    ThroughSymlink,
    /// A parent component exists but is not a directory.
    ParentNotDirectory,
    /// A hardlink target climbs above the target root.
    LinkEscapesRoot,
    /// The entry names the root itself with a non-directory type.
    ReplacesRoot,
    /// A whiteout (`.wh.NAME`) whose NAME is empty, `.` or `..`: it names no single
    /// entry of its directory (containerd: "invalid whiteout name").
    BadWhiteout,
}

/// Why a tar header is refused by the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// A PAX (`x`, `g`) or GNU long-name (`L`, `K`) entry over the 1 MiB cap.
    MetaTooLarge {
        /// The type flag.
        kind: char,
        /// The size it announces.
        size: u64,
    },
    /// An entry size over `i64::MAX`.
    SizeTooLarge {
        /// The size it announces.
        size: u64,
    },
}

impl fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderProblem::MetaTooLarge { kind, size } => write!(
                f,
                "its `{kind}` metadata entry is {size} bytes, over the 1 MiB limit \
                 (Go's archive/tar, which Docker and containerd use, has the same)"
            ),
            HeaderProblem::SizeTooLarge { size } => {
                write!(
                    f,
                    "its size {size} is over the largest tar size, 2^63-1 bytes"
                )
            }
        }
    }
}

impl fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnsafeReason::EscapesRoot => "its path climbs above the target root",
            UnsafeReason::ThroughSymlink => "a parent directory is a symlink",
            UnsafeReason::ParentNotDirectory => "a parent path is not a directory",
            UnsafeReason::LinkEscapesRoot => "its hardlink target is outside the target root",
            UnsafeReason::ReplacesRoot => "it would replace the target root",
            UnsafeReason::BadWhiteout => {
                "invalid whiteout name: it must name one entry of its directory, not ``, `.` or `..`"
            }
        })
    }
}

impl FsError for Error {
    fn from_io(op: &'static str, path: PathBuf, source: io::Error) -> Self {
        Error::Fs { op, path, source }
    }
}

impl Error {
    /// `Apply` error constructor for `map_err`.
    /// The failure of giving layer entry `entry` the owner `uid:gid`: `EINVAL` means
    /// an id the user namespace does not map ([`Error::UnmappedOwner`]).
    pub(crate) fn chown(
        entry: &str,
        uid: u32,
        gid: u32,
    ) -> impl FnOnce(rustix::io::Errno) -> Error + '_ {
        move |errno| match errno {
            rustix::io::Errno::INVAL => Error::UnmappedOwner {
                entry: entry.to_owned(),
                uid,
                gid,
            },
            other => Error::apply("set owner", entry)(other.into()),
        }
    }

    pub(crate) fn apply<'a>(
        op: &'static str,
        entry: &'a str,
    ) -> impl FnOnce(io::Error) -> Error + 'a {
        move |source| Error::Apply {
            entry: entry.to_owned(),
            op,
            source,
        }
    }
}
