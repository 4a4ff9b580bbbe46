//! The cgroup of a RUN step: where it lives, the limits written into it, what it
//! counted, and its removal, also after `kill -9` of rbuild.
//!
//! # Where
//!
//! Below the process's own cgroup in each hierarchy (`/proc/self/cgroup` mapped onto
//! the cgroupfs mounts of `/proc/self/mountinfo`), named
//! `rbuild-<pid namespace inode>-<rbuild pid>-<helper pid>`:
//!
//! - **cgroup v1 / hybrid** (a hierarchy per controller under `/sys/fs/cgroup/<ctrl>`,
//!   the `unified` cgroup2 mount of a hybrid host carrying no controller): one
//!   directory in each of the `memory`, `pids`, `cpu`, `cpuset` and `devices`
//!   hierarchies that are mounted, e.g. `memory:/a/b` gives
//!   `/sys/fs/cgroup/memory/a/b/rbuild-…`. `cpuset.cpus`/`cpuset.mems` are copied
//!   from the parent (a v1 cpuset starts empty), and `devices` gets runc's default
//!   allowlist (`devices.rs`) on top of the sandbox's `/dev` tmpfs.
//! - **cgroup v2** (unified): one directory, with `memory pids cpu cpuset` enabled in
//!   the parent's `cgroup.subtree_control`. The no-internal-process rule forbids that
//!   when the own cgroup holds processes (and is not the root); the step's cgroup then
//!   goes beside it, below its parent, which already hands these controllers down
//!   (limits set on the own cgroup itself then do not bound the step; those of every
//!   ancestor still do). Devices: v2 has no `devices` controller; as runc does, an
//!   eBPF program (`BPF_PROG_TYPE_CGROUP_DEVICE`) compiled from the same allowlist
//!   (`devices_bpf/`) is attached to the step's cgroup, with `BPF_F_ALLOW_MULTI` so
//!   that the programs of enclosing cgroups still apply. Where it cannot be attached
//!   (no `CAP_BPF`, eBPF disabled) the build's probe lists it in [`Place::missing`]
//!   and the steps run without it. On a hybrid host the step gets the v1 `devices`
//!   cgroup, and nothing on the `unified` hierarchy.
//!
//! Under every version the step's `/dev` is a tmpfs holding only `null zero full
//! random urandom tty` and the `pts` instance, and every mount is `nodev` (only those
//! nodes are bound without it): the device cgroup or program is a second wall.
//!
//! # Who does what
//!
//! - The build (caller), once, at its first RUN ([`detect`]): finds the hierarchies,
//!   makes the v2 delegation, proves with a probe directory that cgroups can be
//!   created (permission, read-only cgroupfs) and, on v2, that the device program can
//!   be attached to one, and removes stale step cgroups
//!   (`stale.rs`) whose helper is dead (a helper killed with SIGKILL cannot clean up).
//!   What cannot be used is listed with the reason in [`Place::missing`].
//! - The helper ([`StepCgroup`]), per step: creates the directories, writes the
//!   limits and attaches the device program (v2) before forking init; init starts inside (v2: `clone3` into the cgroup) or
//!   moves itself in before anything else (v1: `0` written to the `tasks` files the
//!   helper opened; see `step.rs` for why not `cgroup.procs`), so the command and
//!   everything it starts are inside while the helper stays outside.
//!   After init is reaped the helper reads the counters ([`Usage`]: OOM kills, forks
//!   refused at `pids.max`) and removes the directories.
//! - After `kill -9` of rbuild the helper sees its socket close and gets its
//!   parent-death signal (`SIGTERM`, caught; as are `SIGINT` and `SIGHUP`): it kills
//!   init (the pid namespace dies with it), waits for it and removes the cgroup.
//!   Only a helper killed outright leaves an (empty) cgroup, collected by the next
//!   build.

mod delegate;
mod devices;
pub(super) mod devices_bpf;
mod discover;
pub(crate) mod stale;
mod step;
mod v1;
mod v2;
mod write;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use step::{CgroupFailure, Entry, StepCgroup};

/// The controllers a step's cgroup uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Controller {
    /// `--memory`, `--memory-swap`; OOM kills.
    Memory,
    /// `--pids-limit`; forks refused.
    Pids,
    /// `--cpus`, `--cpu-quota`, `--cpu-period`.
    Cpu,
    /// `--cpuset-cpus`.
    Cpuset,
    /// The device allowlist: the v1 `devices` controller, an eBPF program on v2.
    Devices,
}

impl Controller {
    /// Every controller, in the order the files are written.
    pub const ALL: [Controller; 5] = [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Cpuset,
        Controller::Devices,
    ];

    /// The kernel's name.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Devices => "devices",
        }
    }
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The cgroup version of the hierarchies used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// One hierarchy per controller (legacy or hybrid hosts).
    V1,
    /// The unified hierarchy.
    V2,
}

/// A directory step cgroups are created in, and the controllers they get there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    /// The parent of the step cgroups (the own cgroup, or beside it on v2).
    pub dir: PathBuf,
    /// The controllers of [`Controller::ALL`] this hierarchy carries.
    pub controllers: Vec<Controller>,
}

/// Where step cgroups go on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// v1 (several hierarchies) or v2 (one).
    pub version: Version,
    /// The usable hierarchies; empty when no cgroup can be used.
    pub hierarchies: Vec<Hierarchy>,
    /// Controllers that cannot be used, each with the reason.
    pub missing: Vec<(Controller, String)>,
}

impl Place {
    /// Whether step cgroups get `controller`.
    pub fn has(&self, controller: Controller) -> bool {
        self.hierarchies
            .iter()
            .any(|h| h.controllers.contains(&controller))
    }

    /// Why `controller` cannot be used ("" if it can).
    pub fn why_not(&self, controller: Controller) -> String {
        self.missing
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, why)| why.clone())
            .unwrap_or_default()
    }

    /// Whether no cgroup at all can be made.
    pub fn is_empty(&self) -> bool {
        self.hierarchies.is_empty()
    }
}

/// What a step's cgroup counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Processes the OOM killer killed (`oom_kill`).
    pub oom_kills: u64,
    /// Forks refused at `pids.max` (`pids.events` `max`).
    pub pids_refused: u64,
}

/// This host's [`Place`]: hierarchies found, v2 delegation made, creation proven by a
/// probe, stale step cgroups of dead helpers removed. For the build, once.
pub fn detect() -> Place {
    let mut place = match discover::current() {
        Ok(place) => place,
        Err(reason) => {
            return Place {
                version: Version::V1,
                hierarchies: Vec::new(),
                missing: Controller::ALL.map(|c| (c, reason.clone())).to_vec(),
            }
        }
    };
    delegate::prepare(&mut place);
    stale::collect(&place);
    place
}

/// The own cgroup on the cgroup2 mount (the `unified` one of a hybrid host), for tests
/// of the v2 path on any host.
#[cfg(test)]
pub(crate) fn own_v2_dir() -> Option<PathBuf> {
    let memberships =
        discover::parse_memberships(&std::fs::read_to_string("/proc/self/cgroup").ok()?);
    let mounts = discover::parse_mounts(&std::fs::read_to_string("/proc/self/mountinfo").ok()?);
    discover::v2_dir(&memberships, &mounts)
        .ok()
        .map(|(dir, _)| dir)
}

/// The [`Place`] a v2 host would get at the own cgroup on the cgroup2 mount (the
/// `unified` one of a hybrid host), no controller handed down: probed, with
/// [`Controller::Devices`] if the device program can be attached there. For tests of
/// the v2 path on any host.
#[cfg(test)]
pub(crate) fn own_v2_place() -> Option<Place> {
    let mut place = discover::v2_place(own_v2_dir()?, Vec::new());
    delegate::prepare(&mut place);
    Some(place)
}

/// How many device programs are attached to the cgroup v2 directory `dir` itself.
#[cfg(test)]
pub(crate) fn device_programs(dir: &std::path::Path) -> std::io::Result<u32> {
    use std::os::fd::AsFd;
    devices_bpf::attached(std::fs::File::open(dir)?.as_fd())
}
