//! Where a build's result goes: `-o` local and tar exports of an image built on one
//! from the store, OCI and Docker archives read by skopeo and podman, `--iidfile`,
//! `--metadata-file` and JSON progress (with ONBUILD triggers of the base).

use std::process::Command;

use crate::build::multi;
use crate::support::{can_mount, have, rbuild_in, TestContext};

#[test]
fn builds_from_an_image_in_the_store_and_exports() {
    if !can_mount() {
        return;
    }
    let base = multi();
    base.build(&["-t", "base:1"]);
    let t = TestContext::new(
        "FROM base:1\nCOPY extra.txt /extra.txt\n",
        &[("extra.txt", "x\n")],
    );
    let ctx = t.context().to_string_lossy().into_owned();
    let out_dir = t.path("out");
    let local = format!("type=local,dest={}", out_dir.display());
    let tarball = t.path("rootfs.tar");
    let tar = format!("type=tar,dest={}", tarball.display());
    let out = rbuild_in(
        &base.root(),
        &[
            "build",
            "--progress",
            "quiet",
            "-o",
            &local,
            "-o",
            &tar,
            &ctx,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("extra.txt")).unwrap(),
        "x\n"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("data/a.txt")).unwrap(),
        "a\n"
    );
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&tarball)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("extra.txt") && listing.contains("data/a.txt"),
        "{listing}"
    );
}

#[test]
fn exports_are_read_by_skopeo_and_podman() {
    if !can_mount() || !have("skopeo") || !have("podman") {
        return;
    }
    let t = multi();
    let oci = t.path("image-oci.tar");
    let docker = t.path("image-docker.tar");
    let oci_spec = format!("type=oci,dest={}", oci.display());
    let docker_spec = format!("type=docker,dest={}", docker.display());
    t.build(&["-t", "exported:1", "-o", &oci_spec, "-o", &docker_spec]);
    let inspect = Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci-archive:{}", oci.display()))
        .output()
        .unwrap();
    assert!(
        inspect.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["config"]["WorkingDir"], "/app");
    let podman_root = t.path("podman");
    let load = Command::new("podman")
        .arg("--root")
        .arg(&podman_root)
        .arg("--runroot")
        .arg(t.path("podman-run"))
        .args(["--storage-driver", "vfs", "load", "-i"])
        .arg(&docker)
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "podman load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let stdout = String::from_utf8_lossy(&load.stdout);
    assert!(stdout.contains("exported:1"), "{stdout}");
}

#[test]
fn onbuild_triggers_iidfile_metadata_and_json_progress() {
    if !can_mount() {
        return;
    }
    let base = TestContext::new(
        "FROM scratch\nONBUILD COPY trigger.txt /triggered.txt\nLABEL base=1\n",
        &[],
    );
    base.build(&["-t", "onbuild-base:1"]);
    let t = TestContext::new(
        "FROM onbuild-base:1\nENV X=1\n",
        &[("trigger.txt", "fired\n")],
    );
    let iid = t.path("iid");
    let meta = t.path("meta.json");
    let out_dir = t.path("out");
    let ctx = t.context().to_string_lossy().into_owned();
    let args = [
        "build",
        "--progress",
        "json",
        "--iidfile",
        &iid.to_string_lossy(),
        "--metadata-file",
        &meta.to_string_lossy(),
        "-o",
        &format!("type=local,dest={}", out_dir.display()),
        &ctx,
    ];
    let out = rbuild_in(&base.root(), &args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("triggered.txt")).unwrap(),
        "fired\n",
        "the trigger ran"
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
    let manifest = crate::support::manifest_digest(&base.root(), &id);
    assert_eq!(meta["containerimage.digest"], manifest.as_str());
    let iid = std::fs::read_to_string(iid).unwrap();
    assert_eq!(meta["containerimage.config.digest"], iid.as_str());
    assert_eq!(iid, id, "the build prints the image ID");
    let mut commits = Vec::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(event["event"].is_string(), "{line}");
        if event["event"] == "step_finished" {
            commits.push((event["id"]["step"].clone(), event["commit"].clone()));
        }
    }
    // The FROM has no commit time; the trigger's COPY has one, within its elapsed.
    assert_eq!(commits.len(), 2, "{commits:?}");
    assert!(commits[0].1.is_null(), "{commits:?}");
    assert!(commits[1].1.is_u64(), "{commits:?}");
}
