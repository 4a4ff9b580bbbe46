//! `rbuild save` and `rbuild load`: round trips in both formats, archives of several
//! images and tags (read back by rbuild, podman, skopeo and docker), and archives
//! written by skopeo (docker-archive with plain layer tars), compressed or not.

use std::process::Command;

use crate::support::{can_mount, have, podman, rbuild_in, run_ok, tar_member, TestContext};

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The config digest of `image` in store `root`.
fn config_digest(root: &std::path::Path, image: &str) -> String {
    ok(&rbuild_in(
        root,
        &["inspect", "--format", "{{.Id}}", image],
        &[],
    ))
    .trim()
    .to_owned()
}

#[test]
fn saved_images_load_back_in_both_formats() {
    let t = TestContext::new("FROM scratch\nCOPY a /a\nENV X=1\n", &[("a", "a\n")]);
    t.build(&["-t", "saved:1"]);
    let id = config_digest(&t.root(), "saved:1");
    for (format, compress) in [("docker-archive", false), ("oci-archive", true)] {
        let file = t.path(&format!("{format}.tar"));
        let file_arg = file.to_string_lossy().into_owned();
        ok(&t.rbuild(&["save", "--format", format, "-o", &file_arg, "saved:1"]));
        let input = if compress {
            let gz = Command::new("gzip").arg("-k").arg(&file).status().unwrap();
            assert!(gz.success());
            format!("{file_arg}.gz")
        } else {
            file_arg
        };
        let other = t.path(&format!("store-{format}"));
        let said = ok(&rbuild_in(&other, &["load", "-i", &input], &[]));
        assert!(said.contains("Loaded image: saved:1"), "{format}: {said}");
        assert_eq!(
            config_digest(&other, "saved:1"),
            id,
            "{format}: same image ID"
        );
        let check = rbuild_in(&other, &["store", "check"], &[]);
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
    let two = t.rbuild(&["save", "-o", "/dev/null", "saved:1", "nosuch:2"]);
    assert!(!two.status.success());
}

#[test]
fn a_docker_archive_written_by_skopeo_loads_and_a_lying_one_is_refused() {
    if !have("skopeo") {
        return;
    }
    let t = TestContext::new("FROM scratch\nCOPY a /a\nCOPY a /b\n", &[("a", "a\n")]);
    t.build(&["-t", "src:1"]);
    let oci = t.path("src.oci.tar").to_string_lossy().into_owned();
    ok(&t.rbuild(&["save", "--format", "oci-archive", "-o", &oci, "src:1"]));
    let docker = t.path("skopeo.tar").to_string_lossy().into_owned();
    let copy = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            &format!("oci-archive:{oci}"),
            &format!("docker-archive:{docker}:made/by-skopeo:2"),
        ])
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    let other = t.path("store-skopeo");
    let said = ok(&rbuild_in(&other, &["load", "-i", &docker], &[]));
    assert!(said.contains("made/by-skopeo:2"), "{said}");
    assert_eq!(
        config_digest(&other, "made/by-skopeo:2"),
        config_digest(&t.root(), "src:1")
    );
    // The same archive with its manifest.json naming a layer of the wrong content.
    let dir = t.path("unpacked");
    std::fs::create_dir(&dir).unwrap();
    assert!(Command::new("tar")
        .arg("-xf")
        .arg(&docker)
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap()
        .success());
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let layers = v[0]["Layers"].as_array().unwrap();
    let (first, second) = (layers[0].as_str().unwrap(), layers[1].as_str().unwrap());
    let swapped = manifest
        .replacen(first, "@@", 1)
        .replacen(second, first, 1)
        .replacen("@@", second, 1);
    std::fs::write(dir.join("manifest.json"), swapped).unwrap();
    let bad = t.path("bad.tar");
    assert!(Command::new("tar")
        .arg("-cf")
        .arg(&bad)
        .arg("-C")
        .arg(&dir)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let out = rbuild_in(
        &t.path("store-bad"),
        &["load", "-i", &bad.to_string_lossy()],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("has diff ID") && err.contains("the config says"),
        "{err}"
    );
}

#[test]
fn an_archive_whose_files_are_symlinks_to_host_files_is_refused() {
    let t = TestContext::new("FROM scratch\n", &[]);
    let dir = t.path("evil");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", dir.join("manifest.json")).unwrap();
    let evil = t.path("evil.tar");
    let made = Command::new("tar")
        .arg("-cf")
        .arg(&evil)
        .arg("-C")
        .arg(&dir)
        .arg(".")
        .status()
        .unwrap();
    assert!(made.success());
    let out = t.rbuild(&["load", "-i", &evil.to_string_lossy()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("cannot open manifest.json"), "{err}");
}

/// A store with `<repo>/a:1` and `<repo>/a:2` (one image), `<repo>/b:1` and an image
/// without a name; returns the context, the repository (unique per process, as the
/// docker daemon is shared) and the unnamed image's ID.
fn several_images() -> Option<(TestContext, String, String)> {
    if !can_mount() {
        return None;
    }
    let t = TestContext::new(
        "FROM scratch\nARG F=a\nCOPY $F /f\n",
        &[("a", "a\n"), ("b", "b\n"), ("c", "c\n")],
    );
    let repo = format!("rbuild-it-{}/multi", std::process::id());
    t.build(&["-t", &format!("{repo}-a:1")]);
    ok(&t.rbuild(&["tag", &format!("{repo}-a:1"), &format!("{repo}-a:2")]));
    t.build(&["--build-arg", "F=b", "-t", &format!("{repo}-b:1")]);
    let unnamed = t.build(&["--build-arg", "F=c"]);
    Some((t, repo, unnamed))
}

/// `rbuild images` of `root` as (name, ID, digest) rows.
fn listing(root: &std::path::Path) -> Vec<String> {
    let (out, _) = run_ok(root, &["images", "--no-trunc"], &[]);
    let mut rows: Vec<String> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect();
    rows.sort();
    rows
}

#[test]
fn several_images_and_tags_share_one_archive_and_load_back() {
    let Some((t, repo, unnamed)) = several_images() else {
        return;
    };
    let before = listing(&t.root());
    assert_eq!(before.len(), 4, "{before:?}");
    for format in ["docker-archive", "oci-archive"] {
        let file = t.path(&format!("multi-{format}.tar"));
        let file_arg = file.to_string_lossy().into_owned();
        // `<repo>-a` alone: each of its tags; the ID: the image without a name.
        let b = format!("{repo}-b:1");
        let a = format!("{repo}-a");
        let id_prefix = &unnamed["sha256:".len()..][..10];
        let args = [
            "save", "--format", format, "-o", &file_arg, &a, &b, id_prefix,
        ];
        ok(&t.rbuild(&args));
        let index: serde_json::Value =
            serde_json::from_str(&tar_member(&file, "index.json")).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 4, "{index}");
        if format == "docker-archive" {
            let manifest: serde_json::Value =
                serde_json::from_str(&tar_member(&file, "manifest.json")).unwrap();
            let tags: Vec<&serde_json::Value> = manifest
                .as_array()
                .unwrap()
                .iter()
                .map(|e| &e["RepoTags"])
                .collect();
            let expected =
                serde_json::json!([[format!("{repo}-a:1"), format!("{repo}-a:2")], [b], []]);
            assert_eq!(serde_json::json!(tags), expected);
            let repositories: serde_json::Value =
                serde_json::from_str(&tar_member(&file, "repositories")).unwrap();
            assert_eq!(
                repositories[format!("{repo}-a")].as_object().unwrap().len(),
                2
            );
        }
        let other = t.path(&format!("store-multi-{format}"));
        let said = ok(&rbuild_in(&other, &["load", "-i", &file_arg], &[]));
        assert!(
            said.contains(&format!("Loaded image ID: {unnamed}")),
            "{said}"
        );
        assert_eq!(said.lines().count(), 4, "{said}");
        // Every name, ID and manifest digest as they were.
        assert_eq!(listing(&other), before, "{format}");
        let check = rbuild_in(&other, &["store", "check"], &[]);
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn a_multi_image_docker_archive_is_read_by_podman_skopeo_and_docker() {
    let Some((t, repo, unnamed)) = several_images() else {
        return;
    };
    let file = t.path("multi.tar");
    let file_arg = file.to_string_lossy().into_owned();
    let (a1, a2, b1) = (
        format!("{repo}-a:1"),
        format!("{repo}-a:2"),
        format!("{repo}-b:1"),
    );
    ok(&t.rbuild(&["save", "-o", &file_arg, &a1, &a2, &b1, &unnamed]));
    let id = |name: &str| config_digest(&t.root(), name);
    if have("podman") {
        let dir = t.path("podman");
        podman(&dir, &["load", "-i", &file_arg]);
        let listed = podman(
            &dir,
            &[
                "images",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Repository}}:{{.Tag}}",
            ],
        );
        for name in [&a1, &a2, &b1] {
            let row = format!("{} localhost/{name}", id(name));
            assert!(listed.lines().any(|l| l == row), "{row} in\n{listed}");
        }
        assert!(
            listed.contains(&format!("{unnamed} <none>:<none>")),
            "{listed}"
        );
    }
    if have("skopeo") {
        for name in [&a2, &b1] {
            let out = Command::new("skopeo")
                .args([
                    "inspect",
                    "--config",
                    &format!("docker-archive:{file_arg}:{name}"),
                ])
                .output()
                .unwrap();
            let config: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
            let layers = ok(&t.rbuild(&["inspect", "--format", "{{json .RootFS.Layers}}", name]));
            let expected: serde_json::Value = serde_json::from_str(&layers).unwrap();
            assert_eq!(config["rootfs"]["diff_ids"], expected, "{name}");
        }
    }
    let docker = Command::new("docker").args(["version"]).output();
    if docker.is_ok_and(|o| o.status.success()) {
        let loaded = Command::new("docker")
            .arg("load")
            .arg("-i")
            .arg(&file)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&loaded.stdout).into_owned();
        let ids = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", &a1, &b1])
            .output()
            .unwrap();
        let _ = Command::new("docker")
            .args(["rmi", &a1, &a2, &b1, &unnamed])
            .output();
        assert!(
            loaded.status.success(),
            "{}",
            String::from_utf8_lossy(&loaded.stderr)
        );
        assert!(said.contains(&format!("Loaded image: {a2}")), "{said}");
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        assert_eq!(ids, format!("{}\n{}\n", id(&a1), id(&b1)));
    }
}
