//! `--platform` on a multi-platform base (Debian's busybox-static for amd64 and arm64
//! in one index, [`crate::multiarch`]): the index resolved to the platform asked for,
//! variants normalized as containerd does, a platform the base lacks refused naming
//! those it has, the platform build arguments as BuildKit defines them.

use std::path::Path;

use crate::multiarch::push_busybox_multi;
use crate::pushpull::skopeo;
use crate::registry::{available, Registry};
use crate::support::{can_mount, have, run_ok, TestContext};

/// ELF `e_machine` values.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// The machine a binary is for, from its ELF header.
fn elf_machine(file: &Path) -> u16 {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is no ELF file", file.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// The host's ELF machine.
fn host_machine() -> u16 {
    if cfg!(target_arch = "aarch64") {
        EM_AARCH64
    } else {
        EM_X86_64
    }
}

/// A registry holding the multi-arch base; `None` (skip) without the tools.
pub fn multi_base() -> Option<(Registry, String)> {
    if !available(&["skopeo", "dpkg-deb", "apt-get"]) {
        return None;
    }
    let reg = Registry::plain();
    let base = push_busybox_multi(&reg)?;
    Some((reg, base))
}

/// The `architecture`, `os` and `variant` of image `name`'s config.
fn config_platform(t: &TestContext, name: &str) -> (String, String, String) {
    let (json, _) = run_ok(&t.root(), &["inspect", name], &[]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("inspect JSON");
    let field = |k: &str| v["config"][k].as_str().unwrap_or_default().to_owned();
    (field("architecture"), field("os"), field("variant"))
}

#[test]
fn from_an_index_takes_the_platform_asked_for() {
    let Some((_reg, base)) = multi_base() else {
        return;
    };
    let t = TestContext::new(&format!("FROM {base}\nCOPY a /a\n"), &[("a", "a\n")]);
    let cases = [
        (None, host_machine()),
        (Some("linux/arm64"), EM_AARCH64),
        (Some("linux/arm64/v8"), EM_AARCH64),
        (Some("LINUX/AARCH64"), EM_AARCH64),
        (Some("linux/amd64"), EM_X86_64),
    ];
    for (i, (platform, machine)) in cases.into_iter().enumerate() {
        let out = t.path(&format!("out{i}"));
        let tag = format!("app:{i}");
        let dest = format!("type=local,dest={}", out.display());
        let mut args = vec!["-t", &tag, "-o", &dest];
        if let Some(p) = platform {
            args.extend(["--platform", p]);
        }
        t.build(&args);
        assert_eq!(
            elf_machine(&out.join("bin/busybox")),
            machine,
            "{platform:?}"
        );
        let arch = if machine == EM_AARCH64 {
            "arm64"
        } else {
            "amd64"
        };
        let (architecture, os, _) = config_platform(&t, &tag);
        assert_eq!((architecture.as_str(), os.as_str()), (arch, "linux"));
    }
}

#[test]
fn the_platform_comes_from_the_environment_when_the_flag_is_not_given() {
    let Some((_reg, base)) = multi_base() else {
        return;
    };
    let t = TestContext::new(&format!("FROM {base}\nCOPY a /a\n"), &[("a", "a\n")]);
    let ctx = t.context();
    let ctx = ctx.to_str().expect("UTF-8 path");
    let build = |tag: &str, env: &[(&str, &str)], flag: &[&str]| {
        let mut args = vec!["build", "-q", "-t", tag];
        args.extend_from_slice(flag);
        args.push(ctx);
        run_ok(&t.root(), &args, env);
        config_platform(&t, tag).0
    };
    let docker = [("DOCKER_DEFAULT_PLATFORM", "linux/arm64")];
    assert_eq!(build("d:1", &docker, &[]), "arm64");
    let both = [
        ("RBUILD_PLATFORM", "linux/amd64"),
        ("DOCKER_DEFAULT_PLATFORM", "linux/arm64"),
    ];
    assert_eq!(build("r:1", &both, &[]), "amd64");
    assert_eq!(
        build("f:1", &docker, &["--platform", "linux/amd64"]),
        "amd64"
    );
}

#[test]
fn a_platform_the_index_lacks_is_an_error_naming_those_it_has() {
    let Some((_reg, base)) = multi_base() else {
        return;
    };
    let t = TestContext::new(&format!("FROM {base}\n"), &[]);
    let err = t.build_fails(&["--platform", "linux/arm/v7"]);
    assert!(err.contains("linux/arm/v7"), "{err}");
    assert!(
        err.contains("linux/amd64") && err.contains("linux/arm64/v8"),
        "{err}"
    );
    let err = t.build_fails(&["--platform", "linux/arm64/"]);
    assert!(err.contains("--platform"), "{err}");
}

#[test]
fn platform_args_are_buildkits_and_the_build_stage_runs_natively() {
    if !can_mount() {
        return;
    }
    let Some((_reg, base)) = multi_base() else {
        return;
    };
    let dockerfile = format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\n\
         ARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDARCH\n\
         RUN echo \"$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDARCH|$(uname -m)\" > /args\n\
         FROM scratch\nCOPY --from=build /args /args\n"
    );
    let t = TestContext::new(&dockerfile, &[]);
    let host_arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let host_uname = if host_arch == "arm64" {
        "aarch64"
    } else {
        "x86_64"
    };
    for (i, asked, target, arch, variant) in [
        (0, "linux/arm64/v8", "linux/arm64", "arm64", ""),
        (1, "linux/amd64", "linux/amd64", "amd64", ""),
    ] {
        let out = t.path(&format!("out{i}"));
        let dest = format!("type=local,dest={}", out.display());
        let ctx = t.context();
        let built = t.rbuild(&[
            "build",
            "--progress",
            "plain",
            "--platform",
            asked,
            "-o",
            &dest,
            ctx.to_str().expect("UTF-8 path"),
        ]);
        let stderr = String::from_utf8_lossy(&built.stderr);
        assert!(built.status.success(), "{stderr}");
        assert!(
            !stderr.contains("emulation"),
            "no RUN is emulated: {stderr}"
        );
        let args = std::fs::read_to_string(out.join("args")).expect("/args");
        let build = format!("linux/{host_arch}");
        assert_eq!(
            args.trim(),
            format!("{target}|linux|{arch}|{variant}|{build}|{host_arch}|{host_uname}")
        );
    }
}

/// `/out` of the cross-compiled image for `platform` pulled back from `reference` with
/// skopeo and unpacked with umoci; its busybox's ELF machine.
fn pulled_back(t: &TestContext, reference: &str, arch: &str) -> (String, u16) {
    let rootfs = unpacked(t, reference, arch);
    let text = std::fs::read_to_string(rootfs.join("out")).expect("/out");
    (
        text.trim().to_owned(),
        elf_machine(&rootfs.join("bin/busybox")),
    )
}

/// The root filesystem of `reference`'s image for `arch`, pulled with skopeo from the
/// registry and unpacked with umoci.
pub fn unpacked(t: &TestContext, reference: &str, arch: &str) -> std::path::PathBuf {
    let layout = t.path(&format!("pulled-{arch}"));
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--override-arch",
        arch,
        &format!("docker://{reference}"),
        &format!("oci:{}:img", layout.display()),
    ]);
    let bundle = t.path(&format!("bundle-{arch}"));
    let out = std::process::Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:img", layout.display()))
        .arg(&bundle)
        .output()
        .expect("umoci");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.join("rootfs")
}

#[test]
fn two_platforms_cross_compiled_make_one_index_pushed_after_its_manifests() {
    if !can_mount() || !have("umoci") || !have("podman") {
        return;
    }
    let Some((reg, base)) = multi_base() else {
        return;
    };
    let t = TestContext::new(
        &format!(
            "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETARCH\n\
             RUN echo \"$TARGETARCH $(uname -m)\" > /out\n\
             FROM {base}\nCOPY --from=build /out /out\n"
        ),
        &[],
    );
    let app = format!("{}/app:1", reg.host());
    let local = t.path("local");
    let meta = t.path("meta.json");
    let before = binfmt_entries();
    let out = t.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        &app,
        "--push",
        "-o",
        &format!("type=local,dest={}", local.display()),
        "--metadata-file",
        meta.to_str().expect("UTF-8 path"),
    ]);
    // The registry holds an index of two manifests, the metadata file names it.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{app}"),
    ]);
    let index: serde_json::Value = serde_json::from_str(&raw).expect("index JSON");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| format!("{}/{}", m["platform"]["os"], m["platform"]["architecture"]))
        .collect();
    assert_eq!(platforms, ["\"linux\"/\"amd64\"", "\"linux\"/\"arm64\""]);
    let digest = crate::registry::digest(raw.as_bytes());
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).expect("metadata")).expect("JSON");
    assert_eq!(meta["containerimage.digest"], digest.as_str());
    assert!(out.ends_with(&digest), "{out}");
    // The build stage ran natively for each target; each image has its platform's base.
    let host = if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else {
        "x86_64"
    };
    for (arch, machine) in [("amd64", EM_X86_64), ("arm64", EM_AARCH64)] {
        let (text, busybox) = pulled_back(&t, &app, arch);
        assert_eq!(text, format!("{arch} {host}"));
        assert_eq!(busybox, machine, "{arch}");
        let dir = local.join(format!("linux_{arch}"));
        assert_eq!(
            std::fs::read_to_string(dir.join("out"))
                .expect("local /out")
                .trim(),
            text
        );
    }
    // Podman takes the arm64 image from the index.
    let podman_dir = t.path("podman");
    crate::support::podman(
        &podman_dir,
        &[
            "pull",
            "-q",
            "--tls-verify=false",
            "--platform",
            "linux/arm64",
            &app,
        ],
    );
    let arch = crate::support::podman(
        &podman_dir,
        &["image", "inspect", "--format", "{{.Architecture}}", &app],
    );
    assert_eq!(arch.trim(), "arm64");
    assert_eq!(
        binfmt_entries(),
        before,
        "binfmt_misc registrations changed"
    );
    // The store names the index; inspect shows it.
    let (json, _) = run_ok(&t.root(), &["inspect", &app], &[]);
    assert!(json.contains("arm64") && json.contains("amd64"), "{json}");
}

#[test]
fn several_platforms_write_an_oci_index() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a\n")]);
    let two = "linux/amd64,linux/arm64/v8";
    // The OCI layout holds the index, tagged, over both platforms' manifests.
    let layout = t.path("layout");
    let dest = format!("type=oci,tar=false,dest={}", layout.display());
    t.build(&["--platform", two, "-t", "multi:1", "-o", &dest]);
    let read = |rel: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(layout.join(rel)).expect(rel)).expect("JSON")
    };
    let top = &read("index.json")["manifests"][0];
    assert_eq!(top["mediaType"], "application/vnd.oci.image.index.v1+json");
    let digest = top["digest"].as_str().expect("digest");
    let index = read(&format!(
        "blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    ));
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    if have("skopeo") {
        for arch in ["amd64", "arm64"] {
            let raw = skopeo(&[
                "inspect",
                "--config",
                "--raw",
                "--override-arch",
                arch,
                &format!("oci:{}", layout.display()),
            ]);
            assert!(
                raw.contains(&format!("\"architecture\":\"{arch}\"")),
                "{raw}"
            );
        }
    }
}

/// The host's `binfmt_misc` registrations (empty when it is not mounted).
pub fn binfmt_entries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/sys/fs/binfmt_misc")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_foreign_run_is_emulated_through_a_registration_of_its_own() {
    let Some((_reg, base)) = emulated_base() else {
        return;
    };
    let t = TestContext::new(&format!("FROM {base}\nRUN uname -m > /arch\n"), &[]);
    let before = binfmt_entries();
    let dest = format!("type=local,dest={}", t.path("out").display());
    let log = t.build_log(&["--platform", "linux/arm64", "-o", &dest]);
    assert!(
        log.contains("QEMU user emulation (qemu-aarch64, for this step only)"),
        "{log}"
    );
    let arch = std::fs::read_to_string(t.path("out/arch")).expect("/arch");
    assert_eq!(arch.trim(), "aarch64");
    assert_eq!(
        binfmt_entries(),
        before,
        "binfmt_misc registrations changed"
    );
}

/// [`multi_base`] where an arm64 RUN is emulated through rbuild's own registration:
/// an amd64 host that can mount, with [`private_binfmt`].
pub fn emulated_base() -> Option<(Registry, String)> {
    if !can_mount() || cfg!(target_arch = "aarch64") || !private_binfmt() {
        return None;
    }
    multi_base()
}

/// Whether rbuild can register QEMU for its own steps here: Debian's qemu-user-static
/// and Linux 6.7 or later (a `binfmt_misc` per user namespace).
pub fn private_binfmt() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().ok());
    let version = (parts.next().flatten(), parts.next().flatten());
    let kernel = matches!(version, (Some(major), Some(minor)) if (major, minor) >= (6, 7));
    let qemu = Path::new("/usr/lib/binfmt.d/qemu-aarch64.conf").exists();
    if !(kernel && qemu) {
        eprintln!("skipping: needs Linux 6.7+ and qemu-user-static");
    }
    kernel && qemu
}
