//! Executor errors: each names the file, path or step it is about.

use std::io;
use std::path::{Path, PathBuf};

use crate::fs_error::FsError;

/// Why a build step failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{op} `{}`", path.display())]
    Fs {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A RUN of a foreign platform, and no emulator registered for it.
    #[error(transparent)]
    NoEmulator(#[from] super::emulation::NoEmulator),
    /// The default network needs `pasta`, and it is not installed.
    #[error("RUN steps need `pasta` for their default network (a network namespace of their own): install it (apt-get install passt), or build with --network host (the host's network) or --network none")]
    NoPasta,
    /// `RBUILD_NETWORK_BACKEND` names no backend, or one not usable here.
    #[error("{0}")]
    NetworkBackend(String),
    /// A file's owner does not exist in a rootless build's user namespace.
    #[error("cannot give `{}` the owner {uid}:{gid}: {}", path.display(), crate::userns::UNMAPPED_OWNER)]
    UnmappedOwner { path: PathBuf, uid: u32, gid: u32 },
    /// The default network needs a default route for `pasta` to copy, and rbuild's
    /// network namespace has none (a container without a network).
    #[error("RUN steps need a default route in rbuild's network namespace for their default network (`pasta` copies it), and there is none{}: build with --network none (no network) or --network host", crate::userns::hints::Runtime::detect().map_or("", |_| " (a container without a network?)"))]
    NoRoute,
    /// Rootless, `pasta` cannot open `/dev/net/tun`.
    #[error("RUN steps of a rootless build need to open /dev/net/tun for their default network (`pasta`), and this user cannot: {}", crate::userns::hints::hint(crate::userns::hints::Missing::Tun))]
    TunDenied,
    #[error("COPY source `{source_path}` not found in {origin}")]
    SourceNotFound { source_path: String, origin: String },
    #[error("COPY source `{source_path}` is outside the build context")]
    OutsideContext { source_path: String },
    #[error("When using COPY with more than one source file, the destination must be a directory and end with a /")]
    DestNotDir,
    #[error("cannot copy directory `{source_path}` onto file `{dest}`")]
    DirOntoFile { source_path: String, dest: String },
    #[error("invalid COPY source pattern {pattern:?}: {reason}")]
    BadPattern { pattern: String, reason: String },
    #[error("invalid --chmod value {value:?}: expected an octal mode such as 0644")]
    BadChmod { value: String },
    #[error(transparent)]
    User(#[from] super::users::UserError),
    #[error(transparent)]
    Context(#[from] crate::context::Error),
    /// An ADD git repository that cannot be resolved or fetched.
    #[error(transparent)]
    Git(#[from] crate::context::source::git::GitError),
    #[error(transparent)]
    Layers(#[from] crate::layers::Error),
    /// A layer blob that cannot be applied (a base image's, a cached step's, or one
    /// exported with `-o type=local|tar`): names the blob, the cause names the entry.
    #[error("cannot apply layer {digest}")]
    ApplyLayer {
        digest: crate::digest::Digest,
        #[source]
        source: crate::layers::Error,
    },
    /// An archive ADD extracts that cannot be applied: names the file.
    #[error("cannot extract archive `{}`", path.display())]
    Extract {
        path: PathBuf,
        #[source]
        source: crate::layers::Error,
    },
    #[error("image {reference} is invalid: {reason}")]
    BadImage { reference: String, reason: String },
    /// A layer blob's bytes do not have its digest (damaged on disk).
    #[error("layer blob {digest} is corrupt: its {size} bytes hash to {actual} (`rbuild store check --repair` removes it)")]
    CorruptBlob {
        digest: crate::digest::Digest,
        actual: crate::digest::Digest,
        size: u64,
    },
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Publish(#[from] crate::publish::Error),
    /// A registry call outside the pull of a base (a lazy layer's fetch).
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("process \"{command}\" did not complete successfully: exit code: {code}{}", render_tail(.tail))]
    RunFailed {
        command: String,
        code: i32,
        tail: Vec<String>,
    },
    /// A step exited non-zero after hitting its memory or process limit.
    #[error("{limit}: process \"{command}\" did not complete successfully: exit code: {code}{}", render_tail(.tail))]
    LimitHit {
        /// What was hit, with the flag and value.
        limit: String,
        command: String,
        code: i32,
        tail: Vec<String>,
    },
    /// A limit flag was given, and its cgroup controller cannot be used here.
    #[error("{flag} needs a cgroup, and none can be used here: {reason}")]
    LimitUnavailable { flag: &'static str, reason: String },
    #[error("invalid --mount {value}: {reason}")]
    BadMount { value: String, reason: String },
    #[error("mount source {source_path:?} not found in {origin}")]
    MountSource { source_path: String, origin: String },
    #[error("mount source {source_path:?} leads out of the build context (through a symlink): a bind mount shows only what is in the context")]
    MountSourceOutside { source_path: String },
    #[error("secret {id:?}: {reason}")]
    Secret { id: String, reason: String },
    #[error("ssh agent {id:?}: {reason}")]
    Ssh { id: String, reason: String },
    #[error(transparent)]
    Sandbox(#[from] super::sandbox::Error),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("interrupted")]
    Interrupted,
    #[error("internal error: {what} (please report this as a bug)")]
    Internal { what: &'static str },
    #[error("checksum mismatch for {url}: expected {expected}, got {actual}")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("cannot download {url}: {reason}")]
    Download { url: String, reason: String },
    /// A build cache of `--cache-from` or `--cache-to` cannot be read or written.
    #[error("cache {cache}: {reason}")]
    RemoteCache { cache: String, reason: String },
    /// A named context (`--build-context`) cannot be made ready.
    #[error("cannot fetch build context {name}: {source}")]
    Named {
        name: String,
        #[source]
        source: Box<ExecError>,
    },
}

impl FsError for ExecError {
    fn from_io(op: &'static str, path: PathBuf, source: io::Error) -> Self {
        ExecError::Fs { op, path, source }
    }
}

fn render_tail(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = tail.iter().map(|l| format!("\n  > {l}")).collect();
    format!("\nlast output:{}", lines.concat())
}

impl ExecError {
    /// An I/O error on `path` during `op`: [`FsError::fs`], here so that the executor's
    /// many call sites need not import the trait.
    /// The failure of giving `path` the owner `uid:gid`: `EINVAL` means an id the
    /// user namespace does not map ([`ExecError::UnmappedOwner`]).
    pub fn chown(path: &Path, uid: u32, gid: u32) -> impl FnOnce(io::Error) -> ExecError + '_ {
        move |e| match e.raw_os_error() {
            Some(libc::EINVAL) => ExecError::UnmappedOwner {
                path: path.to_owned(),
                uid,
                gid,
            },
            _ => ExecError::fs("cannot change owner of", path)(e),
        }
    }

    pub fn fs(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> ExecError {
        <Self as FsError>::fs(op, path)
    }

    /// The same failure worded for a `RUN --mount` source read from the context rather
    /// than a COPY source.
    pub fn for_mount(self) -> ExecError {
        match self {
            ExecError::SourceNotFound { source_path, .. } => ExecError::MountSource {
                source_path,
                origin: "the build context".into(),
            },
            ExecError::OutsideContext { source_path } => {
                ExecError::MountSourceOutside { source_path }
            }
            e => e,
        }
    }
}

/// A build failure, with where it happened in the Dockerfile when it has a place.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read Dockerfile `{}`", path.display())]
    ReadDockerfile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Already rendered: `Dockerfile:LINE:COL: what`, the line and a caret.
    #[error("{rendered}")]
    Parse { rendered: String },
    /// The plan error is shown in the message itself (not as a cause, which the CLI
    /// would print a second time).
    #[error("{location}: {error}")]
    Plan {
        location: String,
        error: Box<crate::plan::PlanError>,
    },
    #[error("{location}: {}{source}", instruction.as_ref().map(|i| format!("{i}: ")).unwrap_or_default())]
    Step {
        location: String,
        instruction: Option<String>,
        #[source]
        source: Box<ExecError>,
    },
    #[error(transparent)]
    Exec(Box<ExecError>),
}

impl From<ExecError> for BuildError {
    fn from(e: ExecError) -> Self {
        BuildError::Exec(Box::new(e))
    }
}

impl BuildError {
    /// A step failure at `span` of the build's Dockerfile.
    pub fn step(
        options: &super::BuildOptions,
        span: crate::parser::Span,
        instruction: Option<String>,
        source: ExecError,
    ) -> Self {
        // A multi-line instruction is shown with its range (`Dockerfile:2-3`).
        let lines = if span.end_line > span.line {
            format!("{}-{}", span.line, span.end_line)
        } else {
            span.line.to_string()
        };
        let location = format!("{}:{lines}", options.dockerfile.display());
        BuildError::Step {
            location,
            instruction,
            source: Box::new(source),
        }
    }
}

/// Result of executor operations.
pub type Result<T, E = ExecError> = std::result::Result<T, E>;
