//! The shipped profile compiled for this machine and run through the BPF interpreter:
//! what Docker's default profile allows, refuses, and how.

use super::bpf::{self, Action, ArgCmp, Cmp, Rule, Section};
use super::*;

const ALLOW: u32 = 0x7fff_0000;
const EPERM: u32 = 0x0005_0001;
const ENOSYS: u32 = 0x0005_0026;
const KILL_PROCESS: u32 = 0x8000_0000;

fn host() -> Host {
    Host {
        goarch: native_goarch(),
        kernel: (6, 1),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use super::*;

    const X86_64: u32 = AUDIT_ARCH_X86_64;
    const I386: u32 = AUDIT_ARCH_I386;

    fn nr(name: &str) -> u32 {
        name.parse::<syscalls::x86_64::Sysno>().unwrap().id() as u32
    }

    fn call(prog: &[SockFilter], name: &str, args: [u64; 6]) -> u32 {
        bpf::run(prog, nr(name), X86_64, args)
    }

    #[test]
    fn default_profile_allows_the_common_and_refuses_the_privileged() {
        let prog = default_filter(host()).unwrap();
        assert!(prog.len() < 4096, "{} instructions", prog.len());
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "exit_group",
            "mmap",
            "arch_prctl",
        ] {
            assert_eq!(call(&prog, name, [0; 6]), ALLOW, "{name}");
        }
        // Allowed because Docker's default set has CAP_SYS_CHROOT; ptrace by minKernel.
        assert_eq!(call(&prog, "chroot", [0; 6]), ALLOW);
        assert_eq!(call(&prog, "ptrace", [0; 6]), ALLOW);
        // CAP_SYS_ADMIN and friends are not in the set.
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "bpf",
            "sethostname",
            "reboot",
            "init_module",
            "kexec_load",
            "open_by_handle_at",
            "keyctl",
            "add_key",
            "userfaultfd",
        ] {
            assert_eq!(call(&prog, name, [0; 6]), EPERM, "{name}");
        }
    }

    #[test]
    fn io_uring_is_refused_as_in_moby_since_docker_25() {
        // moby/moby#46762: io_uring bypasses seccomp's view of the syscalls it runs.
        let prog = default_filter(host()).unwrap();
        for name in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
            assert_eq!(call(&prog, name, [0; 6]), EPERM, "{name}");
        }
        let i386 = |name: &str| name.parse::<syscalls::x86::Sysno>().unwrap().id() as u32;
        assert_eq!(bpf::run(&prog, i386("io_uring_setup"), I386, [0; 6]), EPERM);
    }

    #[test]
    fn syscalls_of_kernels_up_to_6_13_follow_moby() {
        let prog = default_filter(host()).unwrap();
        for name in [
            "getxattrat",
            "setxattrat",
            "listxattrat",
            "removexattrat",
            "statmount",
            "listmount",
            "mseal",
            "uretprobe",
            "cachestat",
            "fchmodat2",
            "futex_wait",
        ] {
            assert_eq!(call(&prog, name, [0; 6]), ALLOW, "{name}");
        }
        // moby/moby#50097: only with CAP_SYS_ADMIN, which Docker's set lacks.
        for name in ["lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules"] {
            assert_eq!(call(&prog, name, [0; 6]), EPERM, "{name}");
        }
    }

    #[test]
    fn argument_conditions_follow_the_profile() {
        let prog = default_filter(host()).unwrap();
        const SIGCHLD: u64 = 17;
        const CLONE_NEWNS: u64 = 0x0002_0000;
        const CLONE_NEWUSER: u64 = 0x1000_0000;
        assert_eq!(call(&prog, "clone", [SIGCHLD, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            call(&prog, "clone", [0x003d_0f00, 0, 0, 0, 0, 0]),
            ALLOW,
            "thread flags"
        );
        assert_eq!(
            call(&prog, "clone", [SIGCHLD | CLONE_NEWNS, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(call(&prog, "clone", [CLONE_NEWUSER, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            call(&prog, "clone3", [0; 6]),
            ENOSYS,
            "glibc falls back to clone"
        );
        const AF_INET: u64 = 2;
        const AF_VSOCK: u64 = 40;
        assert_eq!(call(&prog, "socket", [AF_INET, 1, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(&prog, "socket", [AF_VSOCK, 1, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            call(&prog, "socket", [AF_VSOCK | 1 << 32, 1, 0, 0, 0, 0]),
            ALLOW,
            "64-bit compare"
        );
        for persona in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
            assert_eq!(
                call(&prog, "personality", [persona, 0, 0, 0, 0, 0]),
                ALLOW,
                "{persona:#x}"
            );
        }
        assert_eq!(
            call(&prog, "personality", [0x0040_0000, 0, 0, 0, 0, 0]),
            EPERM,
            "READ_IMPLIES_EXEC"
        );
    }

    #[test]
    fn sub_architectures_and_unknown_ones() {
        let prog = default_filter(host()).unwrap();
        let i386 = |name: &str| name.parse::<syscalls::x86::Sysno>().unwrap().id() as u32;
        assert_eq!(bpf::run(&prog, i386("read"), I386, [0; 6]), ALLOW);
        assert_eq!(bpf::run(&prog, i386("socketcall"), I386, [0; 6]), ALLOW);
        assert_eq!(bpf::run(&prog, i386("mount"), I386, [0; 6]), EPERM);
        // x32 numbers are refused with the default errno.
        assert_eq!(bpf::run(&prog, 0x4000_0000, X86_64, [0; 6]), EPERM);
        // Any other architecture is killed.
        assert_eq!(bpf::run(&prog, 0, 0xC000_00B7, [0; 6]), KILL_PROCESS);
    }

    #[test]
    fn min_kernel_and_caps_select_rules() {
        let old = Host {
            goarch: "amd64",
            kernel: (4, 4),
        };
        let prog = default_filter(old).unwrap();
        assert_eq!(call(&prog, "ptrace", [0; 6]), EPERM, "minKernel 4.8");
        let admin = compile_profile(DEFAULT_PROFILE, host(), |c| c == "CAP_SYS_ADMIN").unwrap();
        assert_eq!(call(&admin, "mount", [0; 6]), ALLOW);
        assert_eq!(call(&admin, "clone", [0x0002_0000, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call(&admin, "clone3", [0; 6]), ALLOW);
        assert_eq!(
            call(&admin, "chroot", [0; 6]),
            EPERM,
            "no CAP_SYS_CHROOT in this set"
        );
    }
}

#[test]
fn first_matching_rule_wins_and_conditions_fall_through() {
    let rules = vec![
        Rule {
            nr: 7,
            args: vec![ArgCmp {
                index: 1,
                cmp: Cmp::Eq(5),
            }],
            action: Action::Errno(9),
        },
        Rule {
            nr: 7,
            args: vec![ArgCmp {
                index: 0,
                cmp: Cmp::MaskedEq {
                    mask: 0xff00,
                    value: 0x1200,
                },
            }],
            action: Action::Allow,
        },
        Rule {
            nr: 3,
            args: vec![],
            action: Action::Log,
        },
        Rule {
            nr: 3,
            args: vec![],
            action: Action::Allow,
        },
    ];
    let section = Section {
        audit_arch: 42,
        x32_guard: false,
        rules,
    };
    let prog = bpf::compile(&[section], Action::Errno(1)).unwrap();
    assert_eq!(bpf::run(&prog, 7, 42, [0, 5, 0, 0, 0, 0]), 0x0005_0009);
    assert_eq!(bpf::run(&prog, 7, 42, [0x12ab, 4, 0, 0, 0, 0]), ALLOW);
    assert_eq!(bpf::run(&prog, 7, 42, [0x13ab, 4, 0, 0, 0, 0]), EPERM);
    assert_eq!(
        bpf::run(&prog, 3, 42, [0; 6]),
        0x7ffc_0000,
        "first of two unconditional rules"
    );
    assert_eq!(bpf::run(&prog, 4, 42, [0; 6]), EPERM);
    assert_eq!(bpf::run(&prog, 7, 43, [0; 6]), KILL_PROCESS);
}

#[test]
fn bad_profiles_are_errors() {
    let bad_op = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_GT"}]}]}"#;
    assert!(matches!(
        compile_profile(bad_op, host(), |_| false),
        Err(Error::Seccomp { .. })
    ));
    let bad_action = r#"{"defaultAction":"SCMP_ACT_NOTIFY","syscalls":[]}"#;
    assert!(compile_profile(bad_action, host(), |_| false).is_err());
    assert!(compile_profile("{", host(), |_| false).is_err());
    assert_eq!(parse_kernel("6.1.0-18-amd64"), Some((6, 1)));
    assert_eq!(parse_kernel("4.8"), Some((4, 8)));
}

#[test]
fn every_allowed_name_of_the_profile_is_known_somewhere() {
    // A typo in default.json would silently drop a syscall; every name must exist on
    // at least one architecture the `syscalls` crate knows here, or be one of the
    // names of architectures not compiled in.
    let profile: Profile = serde_json::from_str(DEFAULT_PROFILE).unwrap();
    let foreign = [
        "_llseek",
        "_newselect",
        "arm_fadvise64_64",
        "arm_sync_file_range",
        "breakpoint",
        "cacheflush",
        "set_tls",
        "sync_file_range2",
        "swapcontext",
        "s390_pci_mmio_read",
        "s390_pci_mmio_write",
        "s390_runtime_instr",
        "riscv_flush_icache",
        "riscv_hwprobe",
        "fstatat64",
        "recv",
        "send",
        "sigprocmask",
        "sigreturn",
        "ugetrlimit",
        "waitpid",
        "epoll_ctl_old",
        "epoll_wait_old",
        "stime",
        "ipc",
        "socketcall",
        "mmap2",
        "fadvise64_64",
        "fcntl64",
        "fstat64",
        "fstatfs64",
        "ftruncate64",
        "lstat64",
        "stat64",
        "statfs64",
        "truncate64",
        "sendfile64",
        "time",
        "utime",
    ];
    let known = |n: &str| native_sections().iter().any(|s| (s.resolve)(n).is_some());
    for rule in &profile.syscalls {
        for name in &rule.names {
            let is_32 =
                name.ends_with("32") || name.ends_with("_time64") || name.ends_with("64_time64");
            assert!(
                known(name) || is_32 || foreign.contains(&name.as_str()),
                "unknown syscall {name}"
            );
        }
    }
}
