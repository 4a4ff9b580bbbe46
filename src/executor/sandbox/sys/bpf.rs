//! The `bpf(2)` calls of the cgroup v2 device program (`cgroup/devices_bpf/`): the
//! [`Insn`] its programs are made of, `BPF_PROG_LOAD`, `BPF_PROG_ATTACH` and (tests
//! only) `BPF_PROG_QUERY`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One eBPF instruction (`struct bpf_insn`), as `bpf(BPF_PROG_LOAD)` takes them (the
/// device program of `cgroup/devices_bpf/` is made of these).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::executor::sandbox) struct Insn {
    /// Class, operation and source.
    pub code: u8,
    /// The destination register (4 bits) and the source register (4 bits).
    pub regs: u8,
    /// The jump offset (in instructions, from the next one) or memory offset.
    pub off: i16,
    /// The immediate operand.
    pub imm: i32,
}

/// `bpf(BPF_PROG_LOAD)`: `insns` as a program of type `prog_type` (license
/// `license`, name `name`), the verifier's log written into `log` (no log if empty).
/// The program's descriptor (close-on-exec).
pub(in crate::executor::sandbox) fn bpf_prog_load(
    prog_type: u32,
    insns: &[Insn],
    license: &CStr,
    name: &[u8; 16],
    log: &mut [u8],
) -> io::Result<OwnedFd> {
    /// `union bpf_attr` for `BPF_PROG_LOAD`, up to `expected_attach_type`.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
    }
    const BPF_PROG_LOAD: libc::c_int = 5;
    let too_big = |_| io::Error::from_raw_os_error(libc::E2BIG);
    let attr = ProgLoad {
        prog_type,
        insn_cnt: u32::try_from(insns.len()).map_err(too_big)?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: u32::try_from(log.len()).map_err(too_big)?,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        kern_version: 0,
        prog_flags: 0,
        prog_name: *name,
        prog_ifindex: 0,
        expected_attach_type: 0,
    };
    // SAFETY: `ProgLoad` is `repr(C)` with the fields (and no padding) of the
    // `BPF_PROG_LOAD` member of `union bpf_attr` up to `expected_attach_type`, and its
    // size is passed; `Insn` is `repr(C)` as `struct bpf_insn`. The kernel reads
    // `insn_cnt` instructions from `insns` and the NUL-terminated `license`, both
    // alive for the call, and writes at most `log_size` bytes to `log_buf`, which is
    // exclusively borrowed (or 0 with `log_level` 0: no log).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoad,
            std::mem::size_of::<ProgLoad>(),
        )
    };
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is the new program descriptor, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `bpf(BPF_PROG_ATTACH)`: attaches program `prog` to `target` (a cgroup directory)
/// as `attach_type` with `flags`.
pub(in crate::executor::sandbox) fn bpf_prog_attach(
    target: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    /// `union bpf_attr` for `BPF_PROG_ATTACH`, up to `attach_flags`.
    #[repr(C)]
    struct ProgAttach {
        target_fd: u32,
        attach_bpf_fd: u32,
        attach_type: u32,
        attach_flags: u32,
    }
    const BPF_PROG_ATTACH: libc::c_int = 8;
    let attr = ProgAttach {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
    };
    // SAFETY: `ProgAttach` is `repr(C)` with the fields of the `BPF_PROG_ATTACH`
    // member of `union bpf_attr` up to `attach_flags`, and its size is passed; the
    // kernel only reads it. Both descriptors are borrowed, open for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const ProgAttach,
            std::mem::size_of::<ProgAttach>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `bpf(BPF_PROG_QUERY)`: how many programs of `attach_type` are attached to
/// `target` itself (tests only).
#[cfg(test)]
pub(in crate::executor::sandbox) fn bpf_prog_query(
    target: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<u32> {
    /// `union bpf_attr` for `BPF_PROG_QUERY`, up to `prog_cnt` (padding explicit).
    #[repr(C)]
    struct ProgQuery {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
        pad: u32,
    }
    const BPF_PROG_QUERY: libc::c_int = 16;
    let mut attr = ProgQuery {
        target_fd: target.as_raw_fd() as u32,
        attach_type,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: 0,
        prog_cnt: 0,
        pad: 0,
    };
    // SAFETY: `ProgQuery` is `repr(C)` with the fields of the `BPF_PROG_QUERY` member
    // of `union bpf_attr` up to `prog_cnt` (plus the padding after it), and its size
    // is passed; the kernel writes `attach_flags` and `prog_cnt` into it, exclusively
    // borrowed, and no ids (`prog_ids` is null).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            &mut attr as *mut ProgQuery,
            std::mem::size_of::<ProgQuery>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr.prog_cnt)
}
