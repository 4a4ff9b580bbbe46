//! A multi-platform build's shape: its platforms built at the same time over one walk
//! of the context, the index listed as one image with its platforms, a `type=tar`
//! output with a directory per platform (as BuildKit's), `type=docker` refused as
//! BuildKit refuses it; each index entry labelled with its target platform, whatever
//! its base's.

use crate::platform::multi_base;
use crate::support::{can_mount, run_ok, TestContext};

#[test]
fn two_platforms_build_together_over_one_context_walk() {
    if !can_mount() {
        return;
    }
    let Some((_reg, base)) = multi_base() else {
        return;
    };
    // Each platform's RUN waits (at most 30 s) for the other's mark in a shared cache
    // mount: the build finishes only if both run at the same time.
    let t = TestContext::new(
        &format!(
            "FROM --platform=$BUILDPLATFORM {base} AS meet\nARG TARGETARCH\n\
             RUN --mount=type=cache,id=meet,target=/c,sharing=shared touch /c/$TARGETARCH \
             && i=0; until [ -e /c/amd64 ] && [ -e /c/arm64 ]; do i=$((i+1)); \
             [ $i -lt 300 ] || exit 7; sleep 0.1; done; echo met > /met\n\
             FROM {base}\nCOPY a /a\nCOPY --from=meet /met /met\n"
        ),
        &[("a", "a\n")],
    );
    let tar = t.path("out.tar");
    let dest = format!("type=tar,dest={}", tar.display());
    let two = "linux/amd64,linux/arm64";
    let stderr = t.build_log(&["--platform", two, "-t", "multi:1", "-o", &dest]);
    assert!(
        stderr.contains("2 platforms built in parallel; build context walked 1 time(s)"),
        "{stderr}"
    );
    // The tar has one directory per platform.
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).expect("tar"));
    let mut names: Vec<String> = archive
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .filter(|p| p.ends_with("/a") || p.ends_with("/met"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "linux_amd64/a",
            "linux_amd64/met",
            "linux_arm64/a",
            "linux_arm64/met"
        ]
    );
    // One row for the index, with both platforms; inspect shows the index.
    let (images, _) = run_ok(&t.root(), &["images"], &[]);
    let row = images
        .lines()
        .find(|l| l.starts_with("multi:1 "))
        .unwrap_or_else(|| panic!("no multi:1 in {images}"));
    // The entries name the target platforms, as BuildKit's (containerd-normalized: the
    // base's arm64 config names its variant, v8, the entry does not).
    assert!(row.ends_with("linux/amd64,linux/arm64"), "{images}");
    assert!(images
        .lines()
        .next()
        .unwrap_or_default()
        .ends_with("PLATFORMS"));
    let (json, _) = run_ok(&t.root(), &["inspect", "multi:1"], &[]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("inspect JSON");
    let archs: Vec<&str> = v["index"]["manifests"]
        .as_array()
        .expect("index manifests")
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"], "{json}");
}

#[test]
fn several_platforms_refuse_a_docker_archive_naming_type_oci() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a\n")]);
    let dest = format!("type=docker,dest={}", t.path("d.tar").display());
    let err = t.build_fails(&["--platform", "linux/amd64,linux/arm64", "-o", &dest]);
    assert!(
        err.contains("docker exporter does not currently support exporting manifest lists"),
        "{err}"
    );
    assert!(err.contains("-o type=oci"), "{err}");
    assert!(!t.path("d.tar").exists());
}

#[test]
fn a_build_platform_final_stage_is_labelled_with_each_target_platform() {
    if !can_mount() {
        return;
    }
    let Some((_reg, base)) = multi_base() else {
        return;
    };
    let t = TestContext::new(
        &format!("FROM --platform=$BUILDPLATFORM {base}\nCOPY a /a\n"),
        &[("a", "a\n")],
    );
    let layout = t.path("layout");
    let dest = format!("type=oci,tar=false,dest={}", layout.display());
    t.build(&["--platform", "linux/amd64,linux/arm64", "-o", &dest]);
    let read = |digest: &serde_json::Value| -> serde_json::Value {
        let hex = digest
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("sha256:");
        let text = std::fs::read_to_string(layout.join("blobs/sha256").join(hex)).expect("blob");
        serde_json::from_str(&text).expect("blob JSON")
    };
    let top: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(layout.join("index.json")).unwrap()).unwrap();
    let index = read(&top["manifests"][0]["digest"]);
    let mut labels = Vec::new();
    for entry in index["manifests"].as_array().expect("entries") {
        let config = read(&read(&entry["digest"])["config"]["digest"]);
        labels.push((
            entry["platform"]["architecture"].clone(),
            config["architecture"].clone(),
        ));
    }
    // As BuildKit: the entry and the config name the target platform, not the base's.
    assert_eq!(
        labels,
        [
            (serde_json::json!("amd64"), serde_json::json!("amd64")),
            (serde_json::json!("arm64"), serde_json::json!("arm64")),
        ],
        "{index}"
    );
}
