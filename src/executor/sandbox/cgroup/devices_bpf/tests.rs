//! The allowlist's program run through the interpreter: what it allows and denies,
//! checked against the rules read directly; its shape; the error texts.

use super::super::devices::{Access, Kind, Rule, ALLOW};
use super::program::{self, run, unpack, Insn, ProgramError, JMP_EXIT, R0};
use super::*;

mod kernel;

const BLOCK: u32 = 1;
const CHAR: u32 = 2;
const M: u32 = 1;
const R: u32 = 2;
const W: u32 = 4;

/// The verdict for a device (`type` and `access` as the kernel passes them).
fn verdict(prog: &[Insn], kind: u32, major: u32, minor: u32, access: u32) -> bool {
    match run(prog, (access << 16) | kind, major, minor) {
        1 => true,
        0 => false,
        other => panic!("r0 = {other}"),
    }
}

fn allowlist() -> Vec<Insn> {
    program::program(&ALLOW).unwrap()
}

#[test]
fn the_sandbox_devices_are_allowed() {
    let prog = allowlist();
    for (major, minor) in [(1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 2)] {
        for access in [R, W, R | W, M, R | W | M] {
            assert!(
                verdict(&prog, CHAR, major, minor, access),
                "c {major}:{minor} {access}"
            );
        }
    }
    // /dev/pts/*: every minor of 136.
    assert!(verdict(&prog, CHAR, 136, 0, R | W));
    assert!(verdict(&prog, CHAR, 136, (1 << 20) - 1, R | W));
}

#[test]
fn other_devices_can_be_made_but_not_opened() {
    let prog = allowlist();
    let others = [
        (BLOCK, 7, 0),   // loop0
        (BLOCK, 8, 0),   // sda
        (CHAR, 1, 1),    // mem
        (CHAR, 1, 11),   // kmsg
        (CHAR, 4, 0),    // tty0
        (CHAR, 5, 1),    // console
        (CHAR, 10, 229), // fuse
        (CHAR, 137, 0),  // beside the pts major
        (BLOCK, 1, 3),   // null's numbers, as a block device
    ];
    for (kind, major, minor) in others {
        for access in [R, W, R | W, R | M] {
            assert!(
                !verdict(&prog, kind, major, minor, access),
                "{kind} {major}:{minor} {access}"
            );
        }
        assert!(
            verdict(&prog, kind, major, minor, M),
            "mknod {major}:{minor}"
        );
    }
}

#[test]
fn unknown_types_and_accesses_are_denied() {
    let prog = allowlist();
    assert!(!verdict(&prog, 3, 1, 3, R));
    assert!(!verdict(&prog, 0, 1, 3, M));
    assert!(!verdict(&prog, CHAR, 1, 3, 8));
    assert!(!verdict(&prog, CHAR, 1, 3, R | 8));
    assert!(!verdict(&prog, CHAR, 7, 0, M | 0x100));
}

/// What the rules say, read directly: some rule of the type, numbers and accesses.
fn reference(kind: u32, major: u32, minor: u32, access: u32) -> bool {
    ALLOW.iter().any(|rule| {
        let rule_kind = match rule.kind {
            Kind::Block => BLOCK,
            Kind::Char => CHAR,
        };
        rule_kind == kind
            && rule.major.is_none_or(|m| m == major)
            && rule.minor.is_none_or(|m| m == minor)
            && access & !rule.access.bits() == 0
    })
}

#[test]
fn the_program_agrees_with_the_rules_everywhere_on_a_grid() {
    let prog = allowlist();
    let numbers = [0, 1, 2, 3, 5, 7, 8, 9, 11, 136, 137, 1 << 20, u32::MAX];
    for kind in 0..4 {
        for access in 0..16 {
            for major in numbers {
                for minor in numbers {
                    assert_eq!(
                        verdict(&prog, kind, major, minor, access),
                        reference(kind, major, minor, access),
                        "{kind} {major}:{minor} {access:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_shape_is_what_the_verifier_wants() {
    let prog = allowlist();
    assert!(prog.len() < 100, "{} instructions", prog.len());
    // Every path ends in an exit with r0 set; jumps go forward and stay inside.
    for (i, ins) in prog.iter().enumerate() {
        if ins.code & 0x07 == 0x05 && ins.code != JMP_EXIT {
            let target = i as i64 + 1 + i64::from(ins.off);
            assert!(ins.off >= 0 && (target as usize) < prog.len(), "insn {i}");
        }
    }
    let last = prog[prog.len() - 1];
    assert_eq!(last.code, JMP_EXIT);
    assert_eq!(unpack(prog[prog.len() - 2].regs).0, R0);
    // No rule: everything denied.
    let empty = program::program(&[]).unwrap();
    assert!(!verdict(&empty, CHAR, 1, 3, R));
    assert!(!verdict(&empty, CHAR, 1, 3, M));
}

#[test]
fn numbers_beyond_an_immediate_are_refused() {
    let rule = Rule {
        kind: Kind::Char,
        major: Some(1 << 31),
        minor: None,
        access: Access::RWM,
    };
    assert_eq!(
        program::program(&[rule]),
        Err(ProgramError::Number {
            rule: "c 2147483648:* rwm".into(),
            number: 1 << 31
        })
    );
}

#[test]
fn errors_keep_the_errno_and_the_verifier_s_last_lines() {
    let mut log = b"0: (61) r2 = *(u32 *)(r1 +0)\n\nR0 !read_ok\n".to_vec();
    log.extend([0; 8]);
    let text = log_text(&log);
    assert_eq!(text, "0: (61) r2 = *(u32 *)(r1 +0) | R0 !read_ok");
    let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert!(log_text(long.as_bytes()).starts_with("line 80 |"));
    let e = DeviceProgramError::Load {
        error: io::Error::from_raw_os_error(libc::EACCES),
        log: text,
    };
    assert!(e
        .to_string()
        .ends_with("; verifier: 0: (61) r2 = *(u32 *)(r1 +0) | R0 !read_ok"));
    assert_eq!(io::Error::from(e).raw_os_error(), Some(libc::EACCES));
    let e = DeviceProgramError::Attach(io::Error::from_raw_os_error(libc::EPERM));
    assert_eq!(io::Error::from(e).raw_os_error(), Some(libc::EPERM));
}
