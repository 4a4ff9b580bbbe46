//! OCI annotations (`--annotation`, `-o annotation*.K=V`): in the stored and pushed
//! manifest, per output in exports, on descriptors in exported layouts, read back by
//! skopeo; a new annotation reuses every layer; what has no place in a
//! single-platform image is refused as BuildKit refuses it; a multi-platform build's
//! manifest, descriptor, index and index-descriptor annotations each where BuildKit
//! puts them.

use crate::pushpull::{sha256_of, skopeo};
use crate::registry::{available, Registry};
use crate::support::{can_mount, manifest_digest, rbuild_in, run_ok, tar_member, TestContext};

fn context() -> Option<TestContext> {
    if !can_mount() {
        return None;
    }
    Some(TestContext::new(
        "FROM scratch\nCOPY a /a\nCOPY b /b\n",
        &[("a", "a\n"), ("b", "b\n")],
    ))
}

/// The manifest of `image` in `root`, as JSON.
fn stored_manifest(root: &std::path::Path, image: &str) -> serde_json::Value {
    let (json, _) = run_ok(root, &["inspect", image], &[]);
    serde_json::from_str::<serde_json::Value>(&json).unwrap()["manifest"].clone()
}

/// The JSON file `member` of tar `file`.
fn member(file: &std::path::Path, member: &str) -> serde_json::Value {
    serde_json::from_str(&tar_member(file, member)).unwrap()
}

#[test]
fn annotations_go_where_buildkit_puts_them() {
    let Some(t) = context() else { return };
    let oci = t.path("image-oci.tar");
    let docker = t.path("image-docker.tar");
    let meta = t.path("meta.json");
    t.build(&[
        "-t",
        "notes:1",
        "--platform",
        "linux/amd64",
        "--annotation",
        "com.example.flag=1",
        "--annotation",
        "manifest[linux/amd64],manifest-descriptor:com.example.both=2",
        "--metadata-file",
        &meta.to_string_lossy(),
        "-o",
        &format!(
            "type=oci,dest={},annotation.com.example.oci=3",
            oci.display()
        ),
        "-o",
        &format!("type=docker,dest={}", docker.display()),
    ]);
    let root = t.root();
    let stored = stored_manifest(&root, "notes:1");
    let expected = serde_json::json!({"com.example.flag": "1", "com.example.both": "2"});
    assert_eq!(stored["annotations"], expected);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(
        meta["containerimage.descriptor"]["annotations"],
        serde_json::json!({"com.example.both": "2"})
    );
    // The docker archive: the stored manifest; its index.json entry has the descriptor's.
    let entry = &member(&docker, "index.json")["manifests"][0];
    assert_eq!(entry["digest"], manifest_digest(&root, "notes:1").as_str());
    assert_eq!(entry["annotations"]["com.example.both"], "2");
    assert_eq!(
        entry["annotations"]["io.containerd.image.name"],
        "docker.io/library/notes:1"
    );
    // The OCI archive: a manifest of its own with the output's annotation too.
    let entry = &member(&oci, "index.json")["manifests"][0];
    assert_ne!(entry["digest"], manifest_digest(&root, "notes:1").as_str());
    assert_eq!(entry["annotations"]["com.example.both"], "2");
    let raw = skopeo(&[
        "inspect",
        "--raw",
        &format!("oci-archive:{}:1", oci.display()),
    ]);
    let exported: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(exported["annotations"]["com.example.oci"], "3");
    assert_eq!(exported["annotations"]["com.example.flag"], "1");
    assert_eq!(exported["layers"], stored["layers"]);
    assert_eq!(exported["config"], stored["config"]);
    // Loaded back, the archive's manifest keeps its annotations (and its digest).
    let other = t.path("store-loaded");
    run_ok(&other, &["load", "-i", &oci.to_string_lossy()], &[]);
    assert_eq!(
        manifest_digest(&other, "notes:1"),
        entry["digest"].as_str().unwrap()
    );
}

#[test]
fn a_new_annotation_changes_the_manifest_and_reuses_every_layer() {
    let Some(t) = context() else { return };
    let first = t.build(&["-t", "notes:1", "--annotation", "k=1"]);
    let before = manifest_digest(&t.root(), "notes:1");
    let ctx = t.context().to_string_lossy().into_owned();
    let args = [
        "build",
        "--progress",
        "plain",
        "-t",
        "notes:1",
        "--annotation",
        "k=2",
        &ctx,
    ];
    let out = t.rbuild(&args);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(log.matches(" CACHED").count(), 2, "{log}");
    // Only the FROM line (`#S.0`) may say DONE: no step ran.
    let ran = log
        .lines()
        .any(|l| l.contains(" DONE") && !l.split(' ').next().unwrap_or("").ends_with(".0"));
    assert!(!ran, "nothing ran: {log}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        first,
        "the same image ID"
    );
    assert_ne!(manifest_digest(&t.root(), "notes:1"), before);
    assert_eq!(
        stored_manifest(&t.root(), "notes:1")["annotations"]["k"],
        "2"
    );
}

#[test]
fn annotations_are_pushed_with_the_manifest() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = context() else { return };
    let reg = Registry::plain();
    let dest = format!("{}/notes/app:1", reg.host());
    let out = format!("type=registry,name={dest},annotation.com.example.pushed=yes");
    t.build(&[
        "-o",
        &out,
        "--annotation",
        "manifest-descriptor:com.example.d=x",
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ]);
    let pushed: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        pushed["annotations"],
        serde_json::json!({"com.example.pushed": "yes"})
    );
    assert_eq!(sha256_of(raw.as_bytes()), manifest_digest(&t.root(), &dest));
}

#[test]
fn what_a_single_platform_image_has_no_place_for_is_refused() {
    let Some(t) = context() else { return };
    let ctx = t.context().to_string_lossy().into_owned();
    let fails = |args: &[&str]| {
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.push(&ctx);
        let out = rbuild_in(&t.root(), &all, &[]);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for (args, says) in [
        (
            vec!["--annotation", "index:k=v"],
            "index annotations not supported for single platform export",
        ),
        (
            vec!["--annotation", "index-descriptor:k=v"],
            "index annotations",
        ),
        (
            vec![
                "--platform",
                "linux/amd64",
                "--annotation",
                "manifest[linux/arm64]:k=v",
            ],
            "no platform linux/arm64",
        ),
        (
            vec![
                "--format",
                "docker",
                "--annotation",
                "manifest-descriptor:k=v",
            ],
            "OCI media types",
        ),
        (
            vec!["--annotation", "layer:k=v"],
            "unknown annotation type \"layer\"",
        ),
        (
            vec!["-o", "type=local,dest=x,annotation.k=v"],
            "writes no image",
        ),
        (
            vec!["-o", "type=oci,dest=x,annotation-index.k=v"],
            "index annotations",
        ),
    ] {
        let err = fails(&args);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let (images, _) = run_ok(&t.root(), &["images", "-q"], &[]);
    assert_eq!(images, "", "nothing was built");
}

/// The JSON blob `digest` of OCI archive `file`.
fn blob(file: &std::path::Path, digest: &serde_json::Value) -> serde_json::Value {
    let hex = digest.as_str().unwrap().trim_start_matches("sha256:");
    member(file, &format!("blobs/sha256/{hex}"))
}

#[test]
fn several_platforms_put_each_annotation_where_buildkit_does() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = context() else { return };
    let reg = Registry::plain();
    let dest = format!("{}/notes/multi:1", reg.host());
    let oci = t.path("multi-oci.tar");
    let log = t.build_log(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "--annotation",
        "com.example.all=1",
        "--annotation",
        "manifest[linux/arm64]:com.example.arm=2",
        "--annotation",
        "manifest-descriptor:com.example.d=3",
        "--annotation",
        "index:com.example.i=4",
        "--annotation",
        "index-descriptor:com.example.x=5",
        "-o",
        &format!("type=registry,name={dest}"),
        "-o",
        &format!(
            "type=oci,dest={},annotation-index.com.example.oci=6,annotation-index-descriptor.com.example.ox=7",
            oci.display()
        ),
    ]);
    assert!(
        log.contains("index-descriptor annotations are not pushed"),
        "{log}"
    );
    let inspect = |reference: &str| -> serde_json::Value {
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", reference]);
        serde_json::from_str(&raw).unwrap()
    };
    // The pushed index: its own annotations; each entry its target platform and the
    // manifest-descriptor annotation; each manifest its manifest annotations.
    let index = inspect(&format!("docker://{dest}"));
    assert_eq!(
        index["annotations"],
        serde_json::json!({"com.example.i": "4"})
    );
    let entries = index["manifests"].as_array().unwrap();
    let archs: Vec<&str> = entries
        .iter()
        .map(|e| e["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{index}");
    let repo = dest.trim_end_matches(":1");
    let mut manifests = Vec::new();
    for entry in entries {
        assert_eq!(
            entry["annotations"],
            serde_json::json!({"com.example.d": "3"})
        );
        let digest = entry["digest"].as_str().unwrap();
        manifests.push(inspect(&format!("docker://{repo}@{digest}"))["annotations"].clone());
    }
    assert_eq!(
        manifests,
        [
            serde_json::json!({"com.example.all": "1"}),
            serde_json::json!({"com.example.all": "1", "com.example.arm": "2"}),
        ]
    );
    // The OCI layout: an index of its own (the output's index annotation added), the
    // index-descriptor annotations on its index.json entry.
    let entry = &member(&oci, "index.json")["manifests"][0];
    assert_eq!(entry["annotations"]["com.example.x"], "5");
    assert_eq!(entry["annotations"]["com.example.ox"], "7");
    let own = blob(&oci, &entry["digest"]);
    assert_eq!(
        own["annotations"],
        serde_json::json!({"com.example.i": "4", "com.example.oci": "6"})
    );
    assert_eq!(own["manifests"], index["manifests"]);
}

#[test]
fn what_a_multi_platform_build_has_no_place_for_is_refused() {
    let Some(t) = context() else { return };
    let two = ["--platform", "linux/amd64,linux/arm64"];
    for (args, says) in [
        (
            vec!["--annotation", "manifest[linux/s390x]:k=v"],
            "no platform linux/s390x",
        ),
        (
            vec!["--format", "docker", "--annotation", "index:k=v"],
            "OCI media types",
        ),
        (
            vec!["--format", "docker", "--annotation", "index-descriptor:k=v"],
            "OCI media types",
        ),
        (vec!["--annotation", "index[linux/amd64]:k=v"], "qualifier"),
        (vec!["-o", "type=oci,dest=x,annotation.k=v"], "--annotation"),
    ] {
        let mut all = two.to_vec();
        all.extend_from_slice(&args);
        let err = t.build_fails(&all);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let (images, _) = run_ok(&t.root(), &["images", "-q"], &[]);
    assert_eq!(images, "", "nothing was built");
}
