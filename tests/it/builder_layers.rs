//! A builder stage's layers: stored uncompressed (nothing reads them compressed), the
//! image's compressed; a later image that takes a builder's layer in gets the bytes a
//! direct build gives, and the step's record then names the compressed blob.

use std::path::Path;

use crate::support::{build_at_epoch, can_mount, manifest_digest, run_ok, TestContext};

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

const DOCKERFILE: &str = "FROM scratch AS builder\nCOPY big.txt /big.txt\n\
FROM scratch\nCOPY --from=builder /big.txt /copy.txt\nCOPY a.txt /a.txt\n";

fn context() -> Option<TestContext> {
    if !can_mount() {
        return None;
    }
    let big = "a line that compresses well\n".repeat(20_000);
    Some(TestContext::new(
        DOCKERFILE,
        &[("big.txt", big.as_str()), ("a.txt", "a\n")],
    ))
}

/// The media types of the layers the store's cache records name, sorted.
fn record_media_types(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join("cache/records")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if let Some(t) = record["layer"]["mediaType"].as_str() {
            out.push(t.to_owned());
        }
    }
    out.sort();
    out
}

fn layer_media_types(root: &Path, image: &str) -> Vec<String> {
    let (out, _) = run_ok(root, &["inspect", image], &[]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let layers = v["manifest"]["layers"].as_array().unwrap();
    layers
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_builder_stages_layers_are_compressed_only_when_an_image_takes_them() {
    let Some(t) = context() else { return };
    build_at_epoch(&t, &["-t", "app:1"], "1700000000");
    assert_eq!(layer_media_types(&t.root(), "app:1"), [GZIP, GZIP]);
    // The builder's COPY is a tar; the image's two COPYs are gzip.
    assert_eq!(record_media_types(&t.root()), [TAR, GZIP, GZIP]);

    // The builder as the target: a cache hit, its layer compressed now...
    let (_, log) = build_at_epoch(&t, &["--target", "builder", "-t", "b:1"], "1700000000");
    assert!(log.contains("CACHED"), "{log}");
    assert_eq!(layer_media_types(&t.root(), "b:1"), [GZIP]);
    assert_eq!(record_media_types(&t.root()), [GZIP, GZIP, GZIP]);
    // ...to the bytes a store that never saw the builder as a builder makes.
    let fresh = TestContext::new(DOCKERFILE, &[]);
    let direct = build_at_epoch_in(&fresh.root(), &t, &["--target", "builder", "-t", "b:1"]);
    assert!(!direct.contains("CACHED"), "{direct}");
    assert_eq!(
        manifest_digest(&t.root(), "b:1"),
        manifest_digest(&fresh.root(), "b:1")
    );
    // The next time, the record's blob is used as it is.
    let (_, log) = build_at_epoch(&t, &["--target", "builder", "-t", "b:2"], "1700000000");
    assert!(log.contains("CACHED"), "{log}");
    assert_eq!(
        manifest_digest(&t.root(), "b:2"),
        manifest_digest(&t.root(), "b:1")
    );
    let (check, _) = run_ok(&t.root(), &["store", "check"], &[]);
    assert!(check.contains("clean"), "{check}");
}

#[test]
fn a_max_cache_export_holds_the_builders_layers_compressed() {
    let Some(t) = context() else { return };
    let cache = t.path("cache");
    let to = format!("type=local,dest={},mode=max", cache.display());
    build_at_epoch(&t, &["-t", "app:1", "--cache-to", &to], "1700000000");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        cache
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(digest)).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "{manifest}");
    for layer in layers {
        assert_eq!(layer["mediaType"], GZIP, "{manifest}");
        assert!(blob(layer["digest"].as_str().unwrap()).is_file());
    }
}

/// Builds `t`'s context in the store `root`, at the test epoch; returns the log.
fn build_at_epoch_in(root: &Path, t: &TestContext, args: &[&str]) -> String {
    let ctx = t.context().to_string_lossy().into_owned();
    let mut all = vec!["build", "--progress", "plain"];
    all.extend_from_slice(args);
    all.push(&ctx);
    let out = crate::support::rbuild_in(root, &all, &[("SOURCE_DATE_EPOCH", "1700000000")]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "build failed:\n{log}");
    log
}
