//! The device allowlist of a cgroup v2 step cgroup: cgroup v2 has no `devices`
//! controller, so, as runc does (`libcontainer/cgroups/devices`), an eBPF program of
//! type `BPF_PROG_TYPE_CGROUP_DEVICE` compiled from the allowlist (`devices.rs`) is
//! attached to the step's cgroup. The kernel runs it on every `mknod` and every open
//! of a device node by a process of the cgroup (also on a hybrid host, for the
//! process's cgroup on the unified hierarchy), and refuses with `EPERM` what it
//! returns 0 for.
//!
//! - `program.rs` compiles the list: deny by default, one block of checks per rule.
//! - [`attach`] loads it (`BPF_PROG_LOAD`; on failure again with the verifier's log,
//!   which goes into the error) and attaches it (`BPF_PROG_ATTACH`, attach type
//!   `BPF_CGROUP_DEVICE`) with `BPF_F_ALLOW_MULTI`: the programs of the ancestors
//!   (a container engine's around rbuild) still run, and all must allow. The
//!   program's descriptor is closed right after: the attachment holds the program,
//!   and it goes away with the cgroup directory.
//!
//! Both need `CAP_BPF` (or `CAP_SYS_ADMIN`); without it, or with a kernel without
//! eBPF, the build's probe (`delegate.rs`) lists the device program as missing, and
//! `nodev` mounts stay the protection.

mod program;
#[cfg(test)]
mod tests;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::devices;
use crate::executor::sandbox::sys;

pub(in crate::executor::sandbox) use program::Insn;
use program::{program, ProgramError};

/// `BPF_PROG_TYPE_CGROUP_DEVICE`.
pub(in crate::executor::sandbox) const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE`, the attach type.
pub(in crate::executor::sandbox) const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: more programs may be attached below, and those above run too.
const F_ALLOW_MULTI: u32 = 2;
/// The program's license (the kernel wants one; no GPL-only helper is called).
const LICENSE: &CStr = c"Apache-2.0";
/// The program's name, as `bpftool prog` shows it.
const NAME: &[u8] = b"rbuild_devices";
/// The verifier log's size on a failed load (its messages for this program are short).
const LOG_SIZE: usize = 64 * 1024;
/// The verifier log's lines kept in the error.
const LOG_LINES: usize = 20;

/// The device program cannot be made or attached.
#[derive(Debug, thiserror::Error)]
pub(in crate::executor::sandbox) enum DeviceProgramError {
    /// The allowlist cannot be compiled.
    #[error("the device allowlist cannot be compiled: {0}")]
    Program(#[from] ProgramError),
    /// `BPF_PROG_LOAD` failed; the verifier's log, if it wrote one.
    #[error("the kernel refuses the device eBPF program: {error}{}", verifier(log))]
    Load { error: io::Error, log: String },
    /// `BPF_PROG_ATTACH` failed.
    #[error("cannot attach the device eBPF program: {0}")]
    Attach(io::Error),
}

/// `; verifier: LOG` (nothing without a log).
fn verifier(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("; verifier: {log}")
    }
}

impl From<DeviceProgramError> for io::Error {
    /// The kernel's error (its errno kept, as the sandbox helper reports only that);
    /// a compilation error as `InvalidData`.
    fn from(e: DeviceProgramError) -> io::Error {
        match e {
            DeviceProgramError::Load { error, .. } | DeviceProgramError::Attach(error) => error,
            DeviceProgramError::Program(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Attaches the allowlist's program to the cgroup v2 directory `cgroup` (open, not
/// `O_PATH`).
pub(in crate::executor::sandbox) fn attach(
    cgroup: BorrowedFd<'_>,
) -> Result<(), DeviceProgramError> {
    let prog = load(&program(&devices::ALLOW)?)?;
    sys::bpf_prog_attach(cgroup, prog.as_fd(), ATTACH_CGROUP_DEVICE, F_ALLOW_MULTI)
        .map_err(DeviceProgramError::Attach)
}

/// Loads `insns` as a device program; on failure loads it again with the verifier's
/// log, for the error.
fn load(insns: &[Insn]) -> Result<OwnedFd, DeviceProgramError> {
    let name = program_name();
    let error = match sys::bpf_prog_load(PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, &name, &mut []) {
        Ok(fd) => return Ok(fd),
        Err(error) => error,
    };
    let mut log = vec![0u8; LOG_SIZE];
    match sys::bpf_prog_load(PROG_TYPE_CGROUP_DEVICE, insns, LICENSE, &name, &mut log) {
        Ok(fd) => Ok(fd),
        Err(_) => Err(DeviceProgramError::Load {
            error,
            log: log_text(&log),
        }),
    }
}

/// [`NAME`], NUL-padded to the kernel's `BPF_OBJ_NAME_LEN`.
fn program_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    name[..NAME.len()].copy_from_slice(NAME);
    name
}

/// The last [`LOG_LINES`] lines of the verifier's log (up to its NUL), joined: the
/// reason is at the end.
fn log_text(log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(LOG_LINES)..].join(" | ")
}

/// How many device programs are attached to the cgroup v2 directory `cgroup` itself.
#[cfg(test)]
pub(in crate::executor::sandbox) fn attached(cgroup: BorrowedFd<'_>) -> io::Result<u32> {
    sys::bpf_prog_query(cgroup, ATTACH_CGROUP_DEVICE)
}
