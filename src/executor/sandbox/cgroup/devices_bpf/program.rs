//! The eBPF device program of an allowlist, plus (for tests) an interpreter of the
//! instructions it uses.
//!
//! Program shape (all jumps forward; each rule's failed check skips to the next rule):
//!
//! ```text
//!     r2 = *(u32 *)(r1 + 0)        access_type
//!     w3 = w2
//!     w2 &= 0xffff                 device type (BPF_DEVCG_DEV_*)
//!     w3 >>= 16                    access (BPF_DEVCG_ACC_*)
//!     r4 = *(u32 *)(r1 + 4)        major
//!     r5 = *(u32 *)(r1 + 8)        minor
//! rule:
//!     if r2 != TYPE goto next
//!     if r3 & ~ACCESS goto next    (an access the rule does not grant)
//!     [if r4 != MAJOR goto next]   (absent for a wildcard)
//!     [if r5 != MINOR goto next]
//!     r0 = 1 ; exit                allowed
//! next: ...
//!     r0 = 0 ; exit                denied: no rule matched
//! ```

use super::super::devices::{Kind, Rule};

pub(in crate::executor::sandbox) use crate::executor::sandbox::sys::Insn;

/// `BPF_LDX | BPF_MEM | BPF_W` (`BPF_W` is 0): `dst = *(u32 *)(src + off)`.
pub(super) const LDX_MEM_W: u8 = 0x01 | 0x60;
/// `BPF_ALU | BPF_MOV | BPF_X`: `wdst = wsrc` (32 bits, upper half cleared).
pub(super) const ALU_MOV_X: u8 = 0x04 | 0xb0 | 0x08;
/// `BPF_ALU | BPF_AND | BPF_K`: `wdst &= imm`.
pub(super) const ALU_AND_K: u8 = 0x04 | 0x50;
/// `BPF_ALU | BPF_RSH | BPF_K`: `wdst >>= imm`.
pub(super) const ALU_RSH_K: u8 = 0x04 | 0x70;
/// `BPF_ALU64 | BPF_MOV | BPF_K`: `dst = imm`.
pub(super) const ALU64_MOV_K: u8 = 0x07 | 0xb0;
/// `BPF_JMP | BPF_JNE | BPF_K`: `if dst != imm goto +off` (64-bit, `imm` sign-extended).
pub(super) const JMP_JNE_K: u8 = 0x05 | 0x50;
/// `BPF_JMP | BPF_JSET | BPF_K`: `if dst & imm goto +off`.
pub(super) const JMP_JSET_K: u8 = 0x05 | 0x40;
/// `BPF_JMP | BPF_EXIT`: return `r0`.
pub(super) const JMP_EXIT: u8 = 0x05 | 0x90;

/// The registers used: `r0` the verdict, `r1` the context, `r2`–`r5` its fields.
pub(super) const R0: u8 = 0;
pub(super) const R1: u8 = 1;
pub(super) const R2: u8 = 2;
pub(super) const R3: u8 = 3;
pub(super) const R4: u8 = 4;
pub(super) const R5: u8 = 5;

/// Offsets in `struct bpf_cgroup_dev_ctx`.
pub(super) const OFF_ACCESS_TYPE: i16 = 0;
pub(super) const OFF_MAJOR: i16 = 4;
pub(super) const OFF_MINOR: i16 = 8;

/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`: the low 16 bits of `access_type`.
pub(super) const DEV_BLOCK: u32 = 1;
pub(super) const DEV_CHAR: u32 = 2;

/// What the program returns.
pub(super) const ALLOWED: i32 = 1;
pub(super) const DENIED: i32 = 0;

/// An allowlist the program cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(in crate::executor::sandbox) enum ProgramError {
    /// A device number beyond an eBPF immediate (compared as a sign-extended `i32`);
    /// Linux's are far below (12-bit majors, 20-bit minors).
    #[error("device rule {rule}: {number} is out of range")]
    Number { rule: String, number: u32 },
}

/// Packs the registers: `dst` in the low nibble on a little-endian machine (the
/// bit-field order of `struct bpf_insn`), in the high one on a big-endian machine.
fn regs(dst: u8, src: u8) -> u8 {
    if cfg!(target_endian = "little") {
        (src << 4) | (dst & 0x0f)
    } else {
        (dst << 4) | (src & 0x0f)
    }
}

/// `(dst, src)` of packed registers.
#[cfg(test)]
pub(super) fn unpack(regs: u8) -> (u8, u8) {
    if cfg!(target_endian = "little") {
        (regs & 0x0f, regs >> 4)
    } else {
        (regs >> 4, regs & 0x0f)
    }
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: regs(dst, src),
        off,
        imm,
    }
}

/// Loads the context into `r2` (type), `r3` (access), `r4` (major), `r5` (minor).
fn prologue() -> [Insn; 6] {
    [
        insn(LDX_MEM_W, R2, R1, OFF_ACCESS_TYPE, 0),
        insn(ALU_MOV_X, R3, R2, 0, 0),
        insn(ALU_AND_K, R2, 0, 0, 0xffff),
        insn(ALU_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, OFF_MAJOR, 0),
        insn(LDX_MEM_W, R5, R1, OFF_MINOR, 0),
    ]
}

/// `r0 = verdict; exit`.
fn verdict(verdict: i32) -> [Insn; 2] {
    [
        insn(ALU64_MOV_K, R0, 0, 0, verdict),
        insn(JMP_EXIT, 0, 0, 0, 0),
    ]
}

/// A device number as an immediate.
fn immediate(rule: &Rule, number: u32) -> Result<i32, ProgramError> {
    i32::try_from(number).map_err(|_| ProgramError::Number {
        rule: rule.to_string(),
        number,
    })
}

/// The checks of one rule, then its `allowed` exit; a failed check jumps past it.
fn rule_code(rule: &Rule) -> Result<Vec<Insn>, ProgramError> {
    let kind = match rule.kind {
        Kind::Block => DEV_BLOCK,
        Kind::Char => DEV_CHAR,
    };
    // `(register, immediate, jump code)`: the jump is taken when the rule fails.
    let mut checks = vec![
        (R2, kind as i32, JMP_JNE_K),
        // Every bit the rule does not grant, also those of future accesses.
        (R3, !rule.access.bits() as i32, JMP_JSET_K),
    ];
    if let Some(major) = rule.major {
        checks.push((R4, immediate(rule, major)?, JMP_JNE_K));
    }
    if let Some(minor) = rule.minor {
        checks.push((R5, immediate(rule, minor)?, JMP_JNE_K));
    }
    let len = checks.len() + 2;
    let mut out: Vec<Insn> = checks
        .iter()
        .enumerate()
        .map(|(i, &(reg, imm, code))| insn(code, reg, 0, (len - i - 1) as i16, imm))
        .collect();
    out.extend(verdict(ALLOWED));
    Ok(out)
}

/// The program allowing exactly `rules` (deny by default).
pub(in crate::executor::sandbox) fn program(rules: &[Rule]) -> Result<Vec<Insn>, ProgramError> {
    let mut out = prologue().to_vec();
    for rule in rules {
        out.extend(rule_code(rule)?);
    }
    out.extend(verdict(DENIED));
    Ok(out)
}

/// Runs `prog` on a `bpf_cgroup_dev_ctx` as the kernel would; returns `r0`.
#[cfg(test)]
pub(super) fn run(prog: &[Insn], access_type: u32, major: u32, minor: u32) -> u64 {
    let ctx = [access_type, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let ins = prog[pc];
        pc += 1;
        let (dst, src) = unpack(ins.regs);
        let (d, s) = (usize::from(dst), usize::from(src));
        // Sign-extended, as the kernel widens an immediate.
        let imm = ins.imm as i64 as u64;
        let jump = |taken: bool| if taken { ins.off as usize } else { 0 };
        match ins.code {
            LDX_MEM_W => {
                assert_eq!(s, usize::from(R1), "loads are from the context");
                r[d] = u64::from(ctx[(ins.off / 4) as usize]);
            }
            ALU_MOV_X => r[d] = r[s] & 0xffff_ffff,
            ALU_AND_K => r[d] = (r[d] & imm) & 0xffff_ffff,
            ALU_RSH_K => r[d] = (r[d] & 0xffff_ffff) >> imm,
            ALU64_MOV_K => r[d] = imm,
            JMP_JNE_K => pc += jump(r[d] != imm),
            JMP_JSET_K => pc += jump(r[d] & imm != 0),
            JMP_EXIT => return r[0],
            other => panic!("unexpected eBPF opcode {other:#x}"),
        }
    }
}
