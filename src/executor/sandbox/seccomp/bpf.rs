//! A small seccomp-BPF compiler: per-architecture sections of `(syscall, argument
//! conditions, action)` rules into a classic BPF program, plus (for tests) an
//! interpreter that runs such a program on a `seccomp_data`.
//!
//! Program shape (all jumps forward, as the kernel requires):
//!
//! ```text
//!     ld  arch
//!     jeq AUDIT_ARCH_A, 0, 1 ; ja section_a      (one pair per section)
//!     ret KILL_PROCESS                            (unknown architecture)
//! section_a:
//!     ld  nr
//!     [jge 0x40000000 -> ret default]             (x86_64: refuse the x32 ABI)
//!     jeq nr_1, 0, len(block_1) ; block_1         (one block per syscall, by number)
//!     ...
//!     ret default
//! block:  rule_1 ; rule_2 ; ... ; ret default     (first rule whose conditions hold wins)
//! rule:   condition ; ... ; ret action            (a failed condition jumps to the next rule)
//! ```
//!
//! A 64-bit argument comparison checks both 32-bit halves of `seccomp_data.args[i]`.
//! Syscalls are scanned linearly, as libseccomp does without its binary-tree option.

use std::collections::BTreeMap;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::executor::sandbox) struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `BPF_LD | BPF_W | BPF_ABS` (`BPF_LD` and `BPF_W` are 0).
const BPF_LD_W_ABS: u16 = 0x20;
/// `BPF_ALU | BPF_AND | BPF_K`.
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
/// `BPF_JMP | BPF_JA`.
const BPF_JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
/// `BPF_JMP | BPF_JGE | BPF_K`.
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
/// `BPF_RET | BPF_K`.
const BPF_RET_K: u16 = 0x06;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;
/// `__X32_SYSCALL_BIT`.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// What a matching rule returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Allow,
    Errno(u16),
    KillThread,
    KillProcess,
    Trap,
    Log,
}

impl Action {
    /// The `SECCOMP_RET_*` value.
    pub(super) fn ret(self) -> u32 {
        match self {
            Action::Allow => 0x7fff_0000,
            Action::Errno(e) => 0x0005_0000 | u32::from(e),
            Action::KillThread => 0,
            Action::KillProcess => 0x8000_0000,
            Action::Trap => 0x0003_0000,
            Action::Log => 0x7ffc_0000,
        }
    }
}

/// A comparison of one 64-bit syscall argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cmp {
    Eq(u64),
    Ne(u64),
    MaskedEq { mask: u64, value: u64 },
}

/// A condition on argument `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ArgCmp {
    pub index: u8,
    pub cmp: Cmp,
}

/// One rule: for syscall `nr`, when all `args` conditions hold, return `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub nr: u32,
    pub args: Vec<ArgCmp>,
    pub action: Action,
}

/// The rules of one architecture.
#[derive(Debug, Clone)]
pub(super) struct Section {
    /// `AUDIT_ARCH_*` this section is for.
    pub audit_arch: u32,
    /// Return the default action for syscall numbers with the x32 bit set.
    pub x32_guard: bool,
    /// Rules in priority order (the first matching rule of a syscall wins).
    pub rules: Vec<Rule>,
}

/// A jump offset before the rule's length is known.
#[derive(Clone, Copy)]
enum J {
    Off(u8),
    /// To the first instruction after the current rule.
    Fail,
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// Offsets of the low and high 32-bit halves of argument `index`.
fn arg_halves(index: u8) -> (u32, u32) {
    let base = OFF_ARGS + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

/// The code of one condition: falls through when it holds, jumps to `Fail` otherwise.
fn condition(arg: ArgCmp, out: &mut Vec<(u16, u32, J, J)>) {
    let (lo_off, hi_off) = arg_halves(arg.index);
    let lo = |v: u64| v as u32;
    let hi = |v: u64| (v >> 32) as u32;
    match arg.cmp {
        Cmp::Eq(v) => {
            out.push((BPF_LD_W_ABS, lo_off, J::Off(0), J::Off(0)));
            out.push((BPF_JMP_JEQ_K, lo(v), J::Off(0), J::Fail));
            out.push((BPF_LD_W_ABS, hi_off, J::Off(0), J::Off(0)));
            out.push((BPF_JMP_JEQ_K, hi(v), J::Off(0), J::Fail));
        }
        Cmp::Ne(v) => {
            // Holds when either half differs.
            out.push((BPF_LD_W_ABS, lo_off, J::Off(0), J::Off(0)));
            out.push((BPF_JMP_JEQ_K, lo(v), J::Off(0), J::Off(2)));
            out.push((BPF_LD_W_ABS, hi_off, J::Off(0), J::Off(0)));
            out.push((BPF_JMP_JEQ_K, hi(v), J::Fail, J::Off(0)));
        }
        Cmp::MaskedEq { mask, value } => {
            out.push((BPF_LD_W_ABS, lo_off, J::Off(0), J::Off(0)));
            out.push((BPF_ALU_AND_K, lo(mask), J::Off(0), J::Off(0)));
            out.push((BPF_JMP_JEQ_K, lo(value & mask), J::Off(0), J::Fail));
            out.push((BPF_LD_W_ABS, hi_off, J::Off(0), J::Off(0)));
            out.push((BPF_ALU_AND_K, hi(mask), J::Off(0), J::Off(0)));
            out.push((BPF_JMP_JEQ_K, hi(value & mask), J::Off(0), J::Fail));
        }
    }
}

/// The code of one rule, `Fail` jumps resolved to the instruction after it.
fn rule_code(rule: &Rule) -> Result<Vec<SockFilter>, String> {
    let mut raw = Vec::new();
    for &arg in &rule.args {
        condition(arg, &mut raw);
    }
    raw.push((BPF_RET_K, rule.action.ret(), J::Off(0), J::Off(0)));
    let len = raw.len();
    let resolve = |j: J, i: usize| -> Result<u8, String> {
        match j {
            J::Off(o) => Ok(o),
            J::Fail => u8::try_from(len - (i + 1)).map_err(|_| "rule too long".to_owned()),
        }
    };
    raw.iter()
        .enumerate()
        .map(|(i, &(code, k, jt, jf))| Ok(jump(code, k, resolve(jt, i)?, resolve(jf, i)?)))
        .collect()
}

/// The code of one section.
fn section_code(section: &Section, default: Action) -> Result<Vec<SockFilter>, String> {
    let mut by_nr: BTreeMap<u32, Vec<&Rule>> = BTreeMap::new();
    for rule in &section.rules {
        by_nr.entry(rule.nr).or_default().push(rule);
    }
    let mut out = vec![stmt(BPF_LD_W_ABS, OFF_NR)];
    if section.x32_guard {
        out.push(jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1));
        out.push(stmt(BPF_RET_K, default.ret()));
    }
    for (nr, rules) in by_nr {
        let mut block = Vec::new();
        let mut falls_through = true;
        for rule in rules {
            block.extend(rule_code(rule)?);
            if rule.args.is_empty() {
                falls_through = false;
                break; // later rules of this syscall can never match
            }
        }
        if falls_through {
            block.push(stmt(BPF_RET_K, default.ret()));
        }
        let skip =
            u8::try_from(block.len()).map_err(|_| format!("syscall {nr}: too many rules"))?;
        out.push(jump(BPF_JMP_JEQ_K, nr, 0, skip));
        out.extend(block);
    }
    out.push(stmt(BPF_RET_K, default.ret()));
    Ok(out)
}

/// Compiles `sections` into one program; syscalls no rule matches get `default`.
pub(super) fn compile(sections: &[Section], default: Action) -> Result<Vec<SockFilter>, String> {
    if sections.is_empty() {
        return Err("no seccomp section for this architecture".to_owned());
    }
    let bodies = sections
        .iter()
        .map(|s| section_code(s, default))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = vec![stmt(BPF_LD_W_ABS, OFF_ARCH)];
    // Dispatch: 2 instructions per section, then the kill.
    let dispatch_end = 1 + 2 * sections.len() + 1;
    let mut start = dispatch_end;
    for (section, body) in sections.iter().zip(&bodies) {
        out.push(jump(BPF_JMP_JEQ_K, section.audit_arch, 0, 1));
        let ja_index = out.len();
        let offset = start - (ja_index + 1);
        out.push(stmt(BPF_JMP_JA, offset as u32));
        start += body.len();
    }
    out.push(stmt(BPF_RET_K, Action::KillProcess.ret()));
    for body in bodies {
        out.extend(body);
    }
    if out.len() > MAX_INSNS {
        return Err(format!(
            "filter has {} instructions (limit {MAX_INSNS})",
            out.len()
        ));
    }
    Ok(out)
}

/// Runs `prog` on a `seccomp_data` as the kernel would; returns the `SECCOMP_RET_*`.
#[cfg(test)]
pub(super) fn run(prog: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let mut data = Vec::with_capacity(64);
    data.extend(nr.to_ne_bytes());
    data.extend(arch.to_ne_bytes());
    data.extend(0u64.to_ne_bytes());
    for a in args {
        data.extend(a.to_ne_bytes());
    }
    let load = |off: u32| {
        let o = off as usize;
        u32::from_ne_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]])
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            BPF_LD_W_ABS => acc = load(ins.k),
            BPF_ALU_AND_K => acc &= ins.k,
            BPF_JMP_JA => pc += ins.k as usize,
            BPF_JMP_JEQ_K | BPF_JMP_JGE_K => {
                let taken = if ins.code == BPF_JMP_JEQ_K {
                    acc == ins.k
                } else {
                    acc >= ins.k
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
            BPF_RET_K => return ins.k,
            other => panic!("unexpected BPF opcode {other:#x}"),
        }
    }
}
