//! Every `unsafe` block of the sandbox, each with its `// SAFETY:` argument, one file
//! per family of system calls:
//!
//! | file | owns |
//! |---|---|
//! | `process.rs` | `fork` (and `clone3` into a cgroup), `_exit`, `execve`, `kill`, a spawn that dies with the helper; (tests only) a `fork` of a child making raw system calls |
//! | `signals.rs` | signal dispositions, and the helper's stop-signal handler |
//! | `confine.rs` | the seccomp load, raw `prctl` (bounding set) and `close_range` |
//! | `namespace.rs` | the loopback `ioctl`, `mount_setattr` and `unshare` |
//! | `bpf.rs` | the `bpf` calls of the cgroup v2 device program, and its [`Insn`] |
//! | `test_hook.rs` | (tests only) the `.init_array` hook that dispatches the helper in the unit-test binary |
//!
//! The functions here are thin and return `io::Result`; callers attach the operation
//! and path. Safe `rustix` wrappers are used directly elsewhere.

mod bpf;
mod confine;
mod namespace;
mod process;
mod signals;
#[cfg(test)]
mod test_hook;

#[cfg(test)]
pub(super) use bpf::bpf_prog_query;
pub(super) use bpf::{bpf_prog_attach, bpf_prog_load, Insn};
pub(super) use confine::{cloexec_from, drop_bounding, install_seccomp};
pub(super) use namespace::{attr, loopback_up, mount_setattr, unshare, Reach};
pub(super) use process::{
    exit_now, fork, fork_into_cgroup, kill_all, spawn_tied, ExecArgs, Forked,
};
#[cfg(test)]
pub(super) use process::{fork_probe, Probe};
pub(super) use signals::{catch_stop_signals, default_stop_signals, reset_signals, stop_requested};
