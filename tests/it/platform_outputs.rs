//! A multi-platform build's shape: its platforms built at the same time over one walk
//! of the context, the index listed as one image with its platforms, a `type=tar`
//! output with a directory per platform (as BuildKit's), `type=docker` an archive of
//! the index whose `manifest.json` holds this machine's image; each index entry
//! labelled with its target platform, whatever its base's.

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

/// A docker archive of several platforms: the layout's `index.json` holds the index
/// (what containerd-based `docker load` reads), `manifest.json` this machine's image
/// (what classic `docker load`, Docker 20.10's here, reads and can run).
#[test]
fn several_platforms_write_a_docker_archive_of_the_index_and_the_native_image() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\n", &[("a", "a\n")]);
    let archive = t.path("d.tar");
    let dest = format!("type=docker,dest={}", archive.display());
    let name = "rbuild-test/multi-docker:1";
    t.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        name,
        "-o",
        &dest,
    ]);
    let mut files = std::collections::BTreeMap::new();
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).expect("archive"));
    for entry in tar.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let path = entry.path().expect("path").display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        files.insert(path, bytes);
    }
    let json = |path: &str| -> serde_json::Value {
        let bytes = files.get(path).unwrap_or_else(|| panic!("no {path}"));
        serde_json::from_slice(bytes).expect("JSON")
    };
    let blob = |digest: &serde_json::Value| {
        json(&format!(
            "blobs/sha256/{}",
            digest
                .as_str()
                .unwrap_or_default()
                .trim_start_matches("sha256:")
        ))
    };
    let top = json("index.json");
    let index = blob(&top["manifests"][0]["digest"]);
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .expect("index entries")
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    let entries = json("manifest.json");
    let entries = entries.as_array().expect("manifest.json entries");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["RepoTags"], serde_json::json!([name]));
    let native = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let config_path = entries[0]["Config"].as_str().expect("Config");
    assert_eq!(json(config_path)["architecture"], native);
    if !docker_works() {
        return;
    }
    let loaded = std::process::Command::new("docker")
        .args(["load", "-i"])
        .arg(&archive)
        .output()
        .expect("docker load");
    let arch = std::process::Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Architecture}}", name])
        .output()
        .expect("docker inspect");
    let _ = std::process::Command::new("docker")
        .args(["rmi", name])
        .output();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&arch.stdout).trim(), native);
}

fn docker_works() -> bool {
    std::process::Command::new("docker")
        .args(["version"])
        .output()
        .is_ok_and(|o| o.status.success())
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
