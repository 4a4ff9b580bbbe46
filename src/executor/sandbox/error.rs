//! Sandbox errors. Failures inside the helper travel up the report socket as
//! `(operation, path, errno)` and become [`Error::Setup`] or [`Error::Exec`] here.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus as ProcessStatus;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a sandboxed command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is unusable as given.
    #[error("invalid sandbox spec: `{field}` {problem}")]
    InvalidSpec {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The spec could not be encoded for the helper.
    #[error("cannot encode the sandbox spec")]
    Encode {
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The helper process could not be started.
    #[error("cannot start the sandbox helper `{}`", helper.display())]
    Spawn {
        /// The executable (normally `/proc/self/exe`).
        helper: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Talking to the helper (spec, output or reports) failed.
    #[error("cannot {what} the sandbox helper")]
    Io {
        /// `write the spec to`, `read the output of`, ...
        what: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A step of the sandbox setup failed inside the helper.
    #[error("sandbox setup failed: cannot {op} `{path}`{}", setup_hint(*op, path, source))]
    Setup {
        /// Which step.
        op: SetupOp,
        /// The path it was about, as seen inside the sandbox ("" if none).
        path: String,
        /// The errno it failed with.
        #[source]
        source: io::Error,
    },
    /// The command itself could not be executed (not found, not executable, ...).
    #[error("cannot execute {argv:?}")]
    Exec {
        /// The command's argv.
        argv: Vec<String>,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The shipped (or given) seccomp profile could not be turned into a filter.
    #[error("seccomp profile: {problem}")]
    Seccomp {
        /// What is wrong with it.
        problem: String,
    },
    /// The step ran longer than its timeout and was killed with everything it started.
    #[error("the step timed out after {timeout:?} and was killed")]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The build was cancelled while the step ran; it was killed with everything it
    /// started.
    #[error("interrupted: the step was stopped")]
    Cancelled,
    /// The helper ended without saying how the command ended (a bug, or it was killed
    /// from outside).
    #[error("the sandbox helper ended without a report ({status})")]
    HelperDied {
        /// The helper's own exit status.
        status: ProcessStatus,
    },
    /// The helper sent something that is not a report.
    #[error("unreadable report from the sandbox helper: {line:?}")]
    Protocol {
        /// The offending line.
        line: String,
    },
}

/// For a setup step refused (`EPERM`) in a user namespace (rootless, or a container's):
/// `: ` and what grants it ([`crate::userns::hints`]); nothing otherwise.
fn setup_hint(op: SetupOp, path: &str, error: &io::Error) -> String {
    use crate::userns::hints::{hint, Missing};
    if error.raw_os_error() != Some(libc::EPERM) || !crate::userns::in_user_namespace() {
        return String::new();
    }
    match (op, path) {
        (SetupOp::SetHostname, _) => format!(": {}", hint(Missing::HostName)),
        (SetupOp::Mount, "/proc") => format!(": {}", hint(Missing::Procfs)),
        _ => String::new(),
    }
}

/// Result of sandbox operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A step of the helper's setup, named in [`Error::Setup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SetupOp {
    /// Read the spec from the caller.
    ReadSpec,
    /// Create the step's cgroup or write its limits.
    Cgroup,
    /// Move init into the step's cgroup.
    JoinCgroup,
    /// Set a resource limit (`--ulimit`) of the command.
    Rlimit,
    /// Build the seccomp filter or other per-run data.
    Prepare,
    /// Create the namespaces.
    Unshare,
    /// Fork init or the command.
    Fork,
    /// Make the mount tree private.
    MakePrivate,
    /// Clone a bind-mount source.
    CloneTree,
    /// Enter the new root.
    PivotRoot,
    /// Mount a filesystem.
    Mount,
    /// Bind-mount a file or directory.
    Bind,
    /// Set mount flags (read-only, `nosuid`, `nodev`, `noexec`) with `mount_setattr`.
    SetAttrs,
    /// Attach a cloned bind source.
    Attach,
    /// Look at a path.
    Stat,
    /// Refuse a mount target that is a symlink or of the wrong type.
    CheckTarget,
    /// Create a directory.
    Mkdir,
    /// Create a file.
    CreateFile,
    /// Write a file.
    WriteFile,
    /// Create a device node.
    Mknod,
    /// Create a symlink.
    Symlink,
    /// Remove a staging file or directory.
    Remove,
    /// Set the host name.
    SetHostname,
    /// Bring the loopback interface up.
    LoopbackUp,
    /// Start the private network's `pasta`, or wait for it.
    Network,
    /// Change to the working directory.
    Chdir,
    /// Open `/dev/null` as stdin.
    Stdin,
    /// Drop capabilities from the bounding set.
    DropBounding,
    /// Set the supplementary groups.
    SetGroups,
    /// Set the group id.
    SetGid,
    /// Set the user id.
    SetUid,
    /// Set effective/permitted/inheritable/ambient capabilities.
    SetCaps,
    /// Set `no_new_privs`.
    NoNewPrivs,
    /// Load the seccomp filter.
    Seccomp,
    /// Execute the command.
    Exec,
    /// Create the step's own user namespace (for its `binfmt_misc` instance).
    UserNamespace,
    /// Register the step's emulator in its own `binfmt_misc` instance.
    Binfmt,
}

impl fmt::Display for SetupOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SetupOp::ReadSpec => "read the spec",
            SetupOp::Cgroup => "set up the cgroup",
            SetupOp::JoinCgroup => "join the cgroup",
            SetupOp::Rlimit => "set the resource limit",
            SetupOp::Prepare => "prepare",
            SetupOp::Unshare => "create namespaces for",
            SetupOp::Fork => "fork",
            SetupOp::MakePrivate => "make private",
            SetupOp::CloneTree => "clone the bind source",
            SetupOp::PivotRoot => "pivot_root into",
            SetupOp::Mount => "mount",
            SetupOp::Bind => "bind-mount",
            SetupOp::SetAttrs => "set the mount flags (ro, nosuid, nodev) of",
            SetupOp::Attach => "attach the bind mount at",
            SetupOp::Stat => "stat",
            SetupOp::CheckTarget => "use as a mount point",
            SetupOp::Mkdir => "create directory",
            SetupOp::CreateFile => "create file",
            SetupOp::WriteFile => "write",
            SetupOp::Mknod => "create device",
            SetupOp::Symlink => "create symlink",
            SetupOp::Remove => "remove",
            SetupOp::SetHostname => "set the host name to",
            SetupOp::LoopbackUp => "bring up",
            SetupOp::Network => "set up the step's network with",
            SetupOp::Chdir => "change to the working directory",
            SetupOp::Stdin => "open",
            SetupOp::DropBounding => "drop bounding capabilities",
            SetupOp::SetGroups => "set supplementary groups",
            SetupOp::SetGid => "set gid",
            SetupOp::SetUid => "set uid",
            SetupOp::SetCaps => "set capabilities",
            SetupOp::NoNewPrivs => "set no_new_privs",
            SetupOp::Seccomp => "load the seccomp filter",
            SetupOp::Exec => "execute",
            SetupOp::UserNamespace => "create the step's user namespace (identity map) for",
            SetupOp::Binfmt => "register the QEMU emulator in a private binfmt_misc with",
        };
        f.write_str(s)
    }
}
