//! Docker's default seccomp profile: the data (`default.json`, moby's schema), its
//! evaluation for our capability set, architecture and kernel, and the BPF program
//! that results (`bpf.rs`).
//!
//! The data follows moby's `profiles/seccomp/default.json` of mid-2025: the file as of
//! moby commit `00f3d189e420d485e42d15fe494f96d272284e0e` with moby/moby#46762 (Docker
//! 25.0: `io_uring_setup`, `io_uring_enter` and `io_uring_register` are no longer
//! allowed, so they get the default `EPERM`; io_uring runs operations that seccomp
//! never sees), #47341 (syscalls of kernels 5.17 to 6.7), #50077 (kernels 6.8 to 6.13)
//! and #50097 (`lsm_*` only with `CAP_SYS_ADMIN`) applied; the provenance note at the
//! top of `default.json` says the same.
//!
//! Evaluation follows moby's `profiles/seccomp/seccomp_linux.go`: a rule applies when
//! its `includes` hold (every listed capability is in the bounding set, the native
//! architecture is listed, the kernel is at least `minKernel`) and its `excludes` do
//! not (no listed capability present, native architecture not listed). `arches` are
//! matched against the *native* architecture (Go's names: `amd64`, `arm64`), also for
//! the rules compiled into the 32-bit sub-architecture section, exactly as moby does.
//! Syscall names are resolved per section with the `syscalls` crate; names a section's
//! architecture does not have are skipped, as libseccomp does.
//!
//! Sections: x86_64 native plus i386 (`int 0x80`); aarch64 native. Any other
//! architecture in `seccomp_data.arch` kills the process. x32 syscalls (x86_64 numbers
//! with bit 30 set) get the default action (`EPERM`), where Docker allows them.

mod bpf;

use serde::Deserialize;

pub(super) use bpf::SockFilter;
use bpf::{Action, ArgCmp, Cmp, Rule, Section};

use super::caps;
use super::error::{Error, Result};

/// The shipped profile.
const DEFAULT_PROFILE: &str = include_str!("default.json");

/// A profile in moby's JSON schema (the fields rbuild uses).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    syscalls: Vec<ProfileRule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileRule {
    names: Vec<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<ProfileArg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileArg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// What the rules are evaluated against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Host {
    /// Go's name of the native architecture (`amd64`, `arm64`).
    pub goarch: &'static str,
    /// Kernel `(major, minor)`.
    pub kernel: (u32, u32),
}

impl Host {
    /// This machine.
    pub(super) fn current() -> Host {
        let uname = rustix::system::uname();
        let release = uname.release().to_string_lossy();
        Host {
            goarch: native_goarch(),
            kernel: parse_kernel(&release).unwrap_or((0, 0)),
        }
    }
}

/// Go's name for the architecture this binary runs on.
fn native_goarch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        std::env::consts::ARCH
    }
}

/// `(major, minor)` of a kernel release such as `6.1.0-18-amd64`.
fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The BPF program of Docker's default profile for a command whose bounding set is
/// Docker's default capability set.
pub(super) fn default_filter(host: Host) -> Result<Vec<SockFilter>> {
    compile_profile(DEFAULT_PROFILE, host, caps::in_default_set)
}

/// Compiles a profile in moby's schema for `host` and the capabilities `has_cap` says
/// are in the bounding set.
fn compile_profile(
    json: &str,
    host: Host,
    has_cap: impl Fn(&str) -> bool,
) -> Result<Vec<SockFilter>> {
    let bad = |problem: String| Error::Seccomp { problem };
    let profile: Profile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    let default = action(&profile.default_action, profile.default_errno_ret, None)?;
    let mut sections = Vec::new();
    for arch in native_sections() {
        let mut rules = Vec::new();
        for rule in &profile.syscalls {
            if !applies(rule, host, &has_cap)? {
                continue;
            }
            let act = action(&rule.action, rule.errno_ret, profile.default_errno_ret)?;
            let args = rule.args.iter().map(arg_cmp).collect::<Result<Vec<_>>>()?;
            for name in &rule.names {
                if let Some(nr) = (arch.resolve)(name) {
                    rules.push(Rule {
                        nr,
                        args: args.clone(),
                        action: act,
                    });
                }
            }
        }
        sections.push(Section {
            audit_arch: arch.audit_arch,
            x32_guard: arch.x32_guard,
            rules,
        });
    }
    bpf::compile(&sections, default).map_err(bad)
}

/// Whether a profile rule is part of the filter on `host`.
fn applies(rule: &ProfileRule, host: Host, has_cap: &impl Fn(&str) -> bool) -> Result<bool> {
    let inc = &rule.includes;
    if !inc.caps.iter().all(|c| has_cap(c)) {
        return Ok(false);
    }
    if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == host.goarch) {
        return Ok(false);
    }
    if let Some(min) = &inc.min_kernel {
        let min = parse_kernel(min).ok_or_else(|| Error::Seccomp {
            problem: format!("bad minKernel {min:?}"),
        })?;
        if host.kernel < min {
            return Ok(false);
        }
    }
    let exc = &rule.excludes;
    if exc.caps.iter().any(|c| has_cap(c)) || exc.arches.iter().any(|a| a == host.goarch) {
        return Ok(false);
    }
    Ok(true)
}

/// A profile action name as a BPF return action.
fn action(name: &str, errno: Option<u32>, default_errno: Option<u32>) -> Result<Action> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.or(default_errno).unwrap_or(1) as u16),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        other => {
            return Err(Error::Seccomp {
                problem: format!("unsupported action {other}"),
            })
        }
    })
}

/// A profile argument condition as a comparison.
fn arg_cmp(arg: &ProfileArg) -> Result<ArgCmp> {
    if arg.index > 5 {
        return Err(Error::Seccomp {
            problem: format!("argument index {} out of range", arg.index),
        });
    }
    let cmp = match arg.op.as_str() {
        "SCMP_CMP_EQ" => Cmp::Eq(arg.value),
        "SCMP_CMP_NE" => Cmp::Ne(arg.value),
        // libseccomp: `value` is the mask, `valueTwo` the datum.
        "SCMP_CMP_MASKED_EQ" => Cmp::MaskedEq {
            mask: arg.value,
            value: arg.value_two,
        },
        other => {
            return Err(Error::Seccomp {
                problem: format!("unsupported comparison {other}"),
            })
        }
    };
    Ok(ArgCmp {
        index: arg.index,
        cmp,
    })
}

/// One architecture section of the filter on this machine.
struct ArchSection {
    audit_arch: u32,
    x32_guard: bool,
    resolve: fn(&str) -> Option<u32>,
}

/// `AUDIT_ARCH_*` values (`linux/audit.h`).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

#[cfg(target_arch = "x86_64")]
fn native_sections() -> Vec<ArchSection> {
    fn x86_64(name: &str) -> Option<u32> {
        name.parse::<syscalls::x86_64::Sysno>()
            .ok()
            .map(|s| s.id() as u32)
    }
    fn i386(name: &str) -> Option<u32> {
        name.parse::<syscalls::x86::Sysno>()
            .ok()
            .map(|s| s.id() as u32)
    }
    vec![
        ArchSection {
            audit_arch: AUDIT_ARCH_X86_64,
            x32_guard: true,
            resolve: x86_64,
        },
        ArchSection {
            audit_arch: AUDIT_ARCH_I386,
            x32_guard: false,
            resolve: i386,
        },
    ]
}

#[cfg(target_arch = "aarch64")]
fn native_sections() -> Vec<ArchSection> {
    fn aarch64(name: &str) -> Option<u32> {
        name.parse::<syscalls::aarch64::Sysno>()
            .ok()
            .map(|s| s.id() as u32)
    }
    vec![ArchSection {
        audit_arch: AUDIT_ARCH_AARCH64,
        x32_guard: false,
        resolve: aarch64,
    }]
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn native_sections() -> Vec<ArchSection> {
    Vec::new()
}

#[cfg(test)]
mod tests;
