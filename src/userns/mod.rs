//! Rootless: an ordinary user's rbuild runs as root of a user namespace of its own.
//!
//! # Process model
//!
//! ```text
//! rbuild (uid U, single-threaded: main, right after the helper dispatch)
//!   ──spawn /proc/self/exe, same argv, env _RBUILD_USERNS=fd:N──> child
//!   child:  unshare(CLONE_NEWUSER), says "unshared" on the socket, waits
//!   parent: newuidmap/newgidmap CHILD 0 U 1 1 SUB COUNT (or, without subordinate
//!           ids, writes the single-id maps itself), says "mapped"
//!   child:  is uid 0 with every capability in its namespace: runs the normal CLI
//!   parent: forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT that a process sent (the
//!           terminal's reach the child directly), exits with the child's code
//! ```
//!
//! The child has `PDEATHSIG` `SIGTERM` (an interrupt: the build stops and cleans
//! up), so `kill -9` of the parent ends it too; its mounts live in its own mount
//! namespace (see `cli::build`), which dies with it.
//!
//! In the namespace, id 0 is the user and ids 1..=COUNT are the subordinate ranges of
//! `/etc/subuid` and `/etc/subgid` ([`subids`]), one after the other: files the build writes as
//! 0, 1000, … are stored under those ids on disk and recorded in layers as 0, 1000, …,
//! so a rootless build gives the layers a root build gives. Without a range (or
//! without `newuidmap`), only 0 is mapped: every file then belongs to root, and the
//! first file owned by another id fails the step ([`Mapping::Single`]).
//!
//! The environment is kept, so the store (`$XDG_DATA_HOME/rbuild`) and the
//! credentials (`~/.docker/config.json`) are the real user's: [`active`] tells the CLI
//! that uid 0 here is not root.

mod child;
pub mod hints;
mod parent;
pub mod subids;

use std::path::PathBuf;

pub use child::enter_if_child;
pub use parent::run_child;

/// The environment variable that marks the child: `fd:N` (the socket to the parent)
/// until it is mapped, then `1`.
const MARK: &str = "_RBUILD_USERNS";

/// What a file owner the namespace does not map means (`chown` to it fails with
/// `EINVAL`: a rootless build without subordinate ids, or too few), and the remedy.
pub const UNMAPPED_OWNER: &str = "the id is not mapped in this rootless build: ids \
    other than 0 come from the user's subordinate ids (/etc/subuid, /etc/subgid), and \
    there are none or too few (as root: `usermod --add-subuids 100000-165535 \
    --add-subgids 100000-165535 USER`), or build as root";

/// Whether this process runs in the user namespace of a rootless rbuild (then uid 0
/// is the user, whose store and credentials are used).
pub fn active() -> bool {
    std::env::var_os(MARK).is_some()
}

/// Whether this process is in a user namespace other than the initial one (whose
/// `uid_map` maps every id to itself): a rootless rbuild's, or a container's. There
/// `trusted.*` xattrs and `mknod` are out of reach. Read once per process.
pub fn in_user_namespace() -> bool {
    static IN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IN.get_or_init(|| match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => !is_identity_map(&map),
        Err(_) => false,
    })
}

/// Whether `map` (the text of a `uid_map`) is the initial namespace's.
fn is_identity_map(map: &str) -> bool {
    map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
}

/// How the namespace maps ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// 0 -> the user, 1..=count -> the subordinate ranges one after the other
    /// (`newuidmap`/`newgidmap`).
    Full {
        /// The subordinate uids (at least one range).
        uids: Vec<subids::Range>,
        /// The subordinate gids (at least one range).
        gids: Vec<subids::Range>,
    },
    /// 0 -> the user only.
    Single {
        /// Why the subordinate ids cannot be used (for the note).
        reason: String,
    },
}

/// The user the namespace maps to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The real uid.
    pub uid: u32,
    /// The real gid.
    pub gid: u32,
    /// The user's name, if `/etc/passwd` has one.
    pub name: Option<String>,
    /// The mapping.
    pub mapping: Mapping,
}

/// Where the mapping tools are looked for, in order.
const MAP_TOOL_DIRS: [&str; 3] = ["/usr/bin", "/usr/sbin", "/bin"];

/// The path of `newuidmap` or `newgidmap`.
fn map_tool(name: &str) -> Option<PathBuf> {
    MAP_TOOL_DIRS
        .iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

impl Plan {
    /// The plan for the calling user: full when both files grant a range and the
    /// mapping tools are installed, single otherwise.
    pub fn for_current_user() -> Plan {
        let uid = rustix::process::getuid().as_raw();
        let gid = rustix::process::getgid().as_raw();
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let name = subids::user_name(&read("/etc/passwd"), uid);
        let uids = subids::ranges(&read("/etc/subuid"), name.as_deref(), uid);
        let gids = subids::ranges(&read("/etc/subgid"), name.as_deref(), uid);
        let mapping = match (uids.is_empty(), gids.is_empty()) {
            _ if map_tool("newuidmap").is_none() || map_tool("newgidmap").is_none() => {
                Mapping::Single {
                    reason:
                        "newuidmap/newgidmap are not installed (Debian: apt-get install uidmap)"
                            .to_owned(),
                }
            }
            (false, false) => Mapping::Full { uids, gids },
            (true, _) => Mapping::Single {
                reason: "/etc/subuid grants this user no subordinate uids".to_owned(),
            },
            (_, true) => Mapping::Single {
                reason: "/etc/subgid grants this user no subordinate gids".to_owned(),
            },
        };
        Plan {
            uid,
            gid,
            name,
            mapping,
        }
    }
}

/// Why a rootless start failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation of the set-up failed.
    #[error("cannot {op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A privilege the set-up needs was refused ([`hints`] says what grants it).
    #[error("cannot {op} ({source}): {hint}")]
    Refused {
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
        /// What grants the privilege, here.
        hint: String,
    },
    /// `newuidmap` or `newgidmap` refused the mapping.
    #[error("`{command}` failed ({status}): {stderr}{hint}")]
    MapTool {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        stderr: String,
        /// `: ` and what grants the privilege, when it was refused; or nothing.
        hint: String,
    },
    /// The other side of the set-up went away or said something unexpected.
    #[error("the user namespace set-up was interrupted: {0}")]
    Handshake(String),
}

/// An [`Error::Sys`] maker for `map_err`.
fn sys(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let op = op.into();
    move |source| Error::Sys { op, source }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_whole_range_mapped_to_itself_is_the_initial_namespace() {
        assert!(super::is_identity_map("         0          0 4294967295\n"));
        assert!(!super::is_identity_map("0 2345 1\n1 100000 65536\n"));
        assert!(!super::is_identity_map("0 0 1\n"));
    }
}
