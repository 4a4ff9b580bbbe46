//! Whether a `RUN` of a stage's platform can run on this machine: natively (same
//! architecture), or through a QEMU user-mode emulator the host registered with
//! `binfmt_misc` (the kernel then runs foreign binaries through it; with the `F` flag
//! the emulator never needs to be in the step's root). rbuild registers nothing
//! host-wide; without a registration a foreign `RUN` fails before it starts, saying
//! what to install or how to cross-compile instead.

use std::path::Path;

use crate::plan::Platform;

/// Where the host's `binfmt_misc` registrations are.
const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// Why a `RUN` of a foreign platform cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "RUN for {wanted} on this {host} machine needs QEMU user emulation, and no binfmt_misc \
     registration for {emulator} exists: install qemu-user-static and binfmt-support \
     (apt-get install qemu-user-static binfmt-support registers the emulators), or build \
     the stage on the build platform (FROM --platform=$BUILDPLATFORM) and cross-compile \
     for $TARGETARCH"
)]
pub struct NoEmulator {
    pub wanted: String,
    pub host: String,
    pub emulator: String,
}

/// How a `RUN` of `platform` runs here: `Ok(None)` natively, `Ok(Some(name))` through
/// the host's registered emulator `name` (`qemu-aarch64`).
pub fn check(platform: &Platform) -> Result<Option<String>, NoEmulator> {
    let host = Platform::host();
    if platform.os == host.os && platform.architecture == host.architecture {
        return Ok(None);
    }
    let emulator = format!("qemu-{}", qemu_arch(&platform.architecture));
    if registered(Path::new(BINFMT_MISC), &emulator) {
        return Ok(Some(emulator));
    }
    Err(NoEmulator {
        wanted: platform.to_string(),
        host: host.to_string(),
        emulator,
    })
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
        assert_eq!(check(&Platform::host()), Ok(None));
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
    fn the_error_names_the_emulator_and_what_to_install() {
        let err = NoEmulator {
            wanted: "linux/arm64".into(),
            host: "linux/amd64".into(),
            emulator: qemu_arch("arm64").to_owned(),
        };
        let text = err.to_string();
        assert!(
            text.contains("aarch64") && text.contains("qemu-user-static"),
            "{text}"
        );
        assert!(text.contains("--platform=$BUILDPLATFORM"), "{text}");
    }
}
