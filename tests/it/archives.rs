//! `rbuild save` and `rbuild load`: round trips in both formats, and archives written by
//! skopeo (docker-archive with plain layer tars), compressed or not.

use std::process::Command;

use crate::support::{have, rbuild_in, TestContext};

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
