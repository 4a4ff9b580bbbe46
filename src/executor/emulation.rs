//! Whether a `RUN` of a stage's platform can run on this machine, and how: natively
//! (same architecture); through a QEMU user-mode emulator registered for the step
//! alone, in the `binfmt_misc` instance of its own user namespace (Linux 6.7+, the
//! registration line of Debian's `qemu-user-static`, see the sandbox's `binfmt.rs`):
//! preferred, as it depends on nothing host-wide; else through the host's registration.
//! With the `F` flag the emulator never needs to be in the step's root. rbuild
//! registers nothing host-wide; without either way a foreign `RUN` fails before it
//! starts, saying what to install or how to cross-compile instead.

use std::path::Path;

use crate::plan::Platform;

/// Where the host's `binfmt_misc` registrations are.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// Where `qemu-user-static` ships its registrations (systemd's `binfmt.d` format:
/// `:qemu-aarch64:M::magic:mask:interpreter:flags`).
const BINFMT_D: &str = "/usr/lib/binfmt.d";

/// The first kernel with a `binfmt_misc` instance per user namespace.
const PRIVATE_BINFMT_KERNEL: (u32, u32) = (6, 7);

/// Why a `RUN` of a foreign platform cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "RUN for {wanted} on this {host} machine needs QEMU user emulation ({emulator}), and \
     there is no way to run it here: {why}. Install qemu-user-static (apt-get install \
     qemu-user-static; rbuild registers it for its own steps only, on Linux 6.7 or later; \
     on older kernels also binfmt-support, which registers it host-wide), or build the \
     stage on the build platform (FROM --platform=$BUILDPLATFORM) and cross-compile for \
     $TARGETARCH"
)]
pub struct NoEmulator {
    pub wanted: String,
    pub host: String,
    pub emulator: String,
    pub why: String,
}

/// How a `RUN` runs here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emulation {
    /// Natively.
    Native,
    /// Through the emulator `name`, registered with `registration` (a `binfmt.d`
    /// line with the `F` flag) for the step alone.
    Private { name: String, registration: String },
    /// Through the host's registration of `name`.
    Host(String),
}

/// How a `RUN` of `platform` runs here.
pub fn check(platform: &Platform) -> Result<Emulation, NoEmulator> {
    let host = Platform::host();
    if platform.os == host.os && platform.architecture == host.architecture {
        return Ok(Emulation::Native);
    }
    let name = format!("qemu-{}", qemu_arch(&platform.architecture));
    let conf = Path::new(BINFMT_D).join(format!("{name}.conf"));
    let registration = std::fs::read_to_string(&conf)
        .ok()
        .and_then(|text| registration_line(&text, &name));
    let kernel_ok = kernel_release().is_some_and(|r| r >= PRIVATE_BINFMT_KERNEL);
    if let (Some(registration), true) = (&registration, kernel_ok) {
        let registration = registration.clone();
        return Ok(Emulation::Private { name, registration });
    }
    if registered(Path::new(BINFMT_MISC), &name) {
        return Ok(Emulation::Host(name));
    }
    let why = match registration {
        None => format!("{} is missing (or its interpreter)", conf.display()),
        Some(_) => "this kernel is older than 6.7 and the host has no registration".to_owned(),
    };
    Err(NoEmulator {
        wanted: platform.to_string(),
        host: host.to_string(),
        emulator: name,
        why,
    })
}

/// The registration of `name` in a `binfmt.d` file, with the `F` flag added (the
/// interpreter opened at registration), if its interpreter exists.
fn registration_line(text: &str, name: &str) -> Option<String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!(":{name}:")))?;
    let fields: Vec<&str> = line.split(':').collect();
    // "", name, type, offset, magic, mask, interpreter, flags
    let [_, _, _, _, _, _, interpreter, flags] = fields[..] else {
        return None;
    };
    if !Path::new(interpreter).is_file() {
        return None;
    }
    Some(match flags.contains('F') {
        true => line.to_owned(),
        false => format!("{line}F"),
    })
}

/// The running kernel's `(major, minor)`.
fn kernel_release() -> Option<(u32, u32)> {
    parse_release(&std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?)
}

/// `6.18.44-fc` -> `(6, 18)`.
fn parse_release(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// QEMU's name of a Go architecture.
fn qemu_arch(architecture: &str) -> &str {
    match architecture {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        "386" => "i386",
        "ppc64le" => "ppc64le",
        "mips64le" => "mips64el",
        other => other,
    }
}

/// Whether `dir` (a `binfmt_misc` mount) has `name` registered and enabled (the
/// files of a registration start with `enabled` or `disabled`).
fn registered(dir: &Path, name: &str) -> bool {
    let enabled = |text: String| text.lines().next() == Some("enabled");
    let global = std::fs::read_to_string(dir.join("status")).is_ok_and(enabled);
    global && std::fs::read_to_string(dir.join(name)).is_ok_and(enabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_platform_runs_natively() {
        assert_eq!(check(&Platform::host()), Ok(Emulation::Native));
    }

    #[test]
    fn a_registration_counts_only_when_it_and_binfmt_misc_are_enabled() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        assert!(!registered(dir.path(), "qemu-aarch64"));
        write("status", "enabled\n");
        write(
            "qemu-aarch64",
            "disabled\ninterpreter /usr/bin/qemu-aarch64-static\n",
        );
        assert!(!registered(dir.path(), "qemu-aarch64"));
        write(
            "qemu-aarch64",
            "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n",
        );
        assert!(registered(dir.path(), "qemu-aarch64"));
        write("status", "disabled\n");
        assert!(!registered(dir.path(), "qemu-aarch64"));
    }

    #[test]
    fn the_private_registration_is_the_packages_line_with_the_fix_binary_flag() {
        let interpreter = tempfile::NamedTempFile::new().unwrap();
        let at = interpreter.path().display();
        let text = format!("# comment\n:qemu-aarch64:M::\\x7fELF:\\xff\\xff:{at}:OP\n");
        assert_eq!(
            registration_line(&text, "qemu-aarch64"),
            Some(format!(":qemu-aarch64:M::\\x7fELF:\\xff\\xff:{at}:OPF"))
        );
        let fixed = text.replace(":OP", ":OPF");
        assert_eq!(
            registration_line(&fixed, "qemu-aarch64"),
            Some(format!(":qemu-aarch64:M::\\x7fELF:\\xff\\xff:{at}:OPF"))
        );
        assert_eq!(registration_line(&text, "qemu-arm"), None);
        let gone = text.replace(&at.to_string(), "/nonexistent/qemu");
        assert_eq!(registration_line(&gone, "qemu-aarch64"), None);
    }

    #[test]
    fn kernel_releases_parse_to_major_and_minor() {
        assert_eq!(parse_release("6.18.44-fc-v1272\n"), Some((6, 18)));
        assert_eq!(parse_release("6.7-rc1"), Some((6, 7)));
        assert!(parse_release("5.10.0").unwrap() < PRIVATE_BINFMT_KERNEL);
        assert_eq!(parse_release("garbage"), None);
    }

    #[test]
    fn the_error_names_the_emulator_and_what_to_install() {
        let err = NoEmulator {
            wanted: "linux/arm64".into(),
            host: "linux/amd64".into(),
            emulator: qemu_arch("arm64").to_owned(),
            why: "x".into(),
        };
        let text = err.to_string();
        assert!(
            text.contains("aarch64") && text.contains("qemu-user-static"),
            "{text}"
        );
        assert!(text.contains("--platform=$BUILDPLATFORM"), "{text}");
    }
}
