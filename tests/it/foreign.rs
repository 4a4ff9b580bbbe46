//! Images made by other tools: configs written by `docker import`, Docker's classic
//! builder, BuildKit, Buildah and skopeo (`testdata/configs/`, byte for byte but for
//! their layer list) pushed to the real registry and used as `FROM`; manifests with
//! annotations and no layers; a config rbuild cannot use, refused for that image only.

use std::path::Path;

use crate::pushpull::{base, skopeo};
use crate::registry::{
    add_image, available, blob_path, digest, http_client, push_raw, put_blob, put_manifest,
    tag_manifest, upload, Registry, OCI_MANIFEST,
};
use crate::support::{run_fails, run_ok, serve_bytes, TestContext};

/// The image `name` of store `root`, as an OCI layout of its own in `dir`; returns the
/// manifest as JSON.
fn copy_out(root: &Path, name: &str, dir: &Path) -> serde_json::Value {
    let dest = format!("oci:{}:src", dir.display());
    skopeo(&[
        "copy",
        "-q",
        &format!("oci:{}:{name}", root.display()),
        &dest,
    ]);
    let raw = skopeo(&["inspect", "--raw", &dest]);
    serde_json::from_str(&raw).expect("manifest JSON")
}

/// `config_text` with its `"diff_ids"` value replaced by `diff_ids` (everything else,
/// nulls and unknown fields included, stays byte for byte).
fn with_diff_ids(config_text: &str, diff_ids: &serde_json::Value) -> String {
    let start = config_text.find("\"diff_ids\":").expect("diff_ids") + "\"diff_ids\":".len();
    let rest = &config_text[start..];
    let end = if rest.trim_start().starts_with("null") {
        rest.find("null").expect("null") + 4
    } else {
        rest.find(']').expect("end of diff_ids") + 1
    };
    format!("{}{}{}", &config_text[..start], diff_ids, &rest[end..])
}

/// The diff IDs of the image whose manifest is `manifest` in layout `dir`.
fn diff_ids(dir: &Path, manifest: &serde_json::Value) -> serde_json::Value {
    let config = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(dir, config)).expect("config"))
            .expect("config JSON");
    config["rootfs"]["diff_ids"].clone()
}

fn fixture(name: &str) -> String {
    let path = format!("{}/testdata/configs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn configs_other_tools_wrote_serve_as_bases() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::plain();
    let layout = tempfile::tempdir().expect("temp dir");
    let manifest = copy_out(&t.root(), "base:1", layout.path());
    let ids = diff_ids(layout.path(), &manifest);
    let made_by = [
        ("docker-import.json", true),
        ("docker-classic-builder.json", true),
        ("docker-buildkit.json", true),
        ("buildah-oci.json", false),
        ("skopeo-v2s2.json", true),
        ("kitchen-sink.json", false),
    ];
    let host = reg.host();
    for (file, docker) in made_by {
        let tag = file.trim_end_matches(".json");
        add_image(
            layout.path(),
            &manifest,
            &with_diff_ids(&fixture(file), &ids),
            docker,
            tag,
        );
        push_raw(layout.path(), tag, host, &format!("foreign/{tag}"));
    }
    let child = TestContext::new("", &[]);
    for (file, _) in made_by {
        let tag = file.trim_end_matches(".json");
        let image = format!("{host}/foreign/{tag}:1");
        std::fs::write(
            child.context().join("Dockerfile"),
            format!(
                "FROM {image}\nRUN cat /base.txt > /tmp/seen.txt && echo \"$PATH\"\nCMD [\"sh\"]\n"
            ),
        )
        .expect("Dockerfile");
        let out = child.rbuild(&[
            "build",
            "--progress",
            "plain",
            "-t",
            &format!("{tag}:child"),
            child.context().to_str().expect("utf-8"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file}: {stderr}");
        // The classic builder's config carries `ONBUILD RUN echo onbuild`: it runs here.
        if file == "docker-classic-builder.json" {
            assert!(stderr.contains("RUN echo onbuild"), "{stderr}");
        }
        let (inspect, _) = run_ok(&child.root(), &["inspect", &format!("{tag}:child")], &[]);
        let v: serde_json::Value = serde_json::from_str(&inspect).expect("inspect JSON");
        let config = &v["config"];
        let text = config.to_string();
        for dropped in [
            "container_config",
            "docker_version",
            "Hostname",
            "AttachStdin",
            ":null",
        ] {
            assert!(!text.contains(dropped), "{file}: {dropped} in {text}");
        }
        assert_eq!(config["config"]["ArgsEscaped"], true, "{file}");
        let env = config["config"]["Env"].to_string();
        assert!(env.contains("PATH=/"), "{file}: {env}");
        if file == "kitchen-sink.json" {
            assert_eq!(config["config"]["StopTimeout"], 10, "{text}");
            assert_eq!(config["config"]["X-Custom"]["nested"][1], 2, "{text}");
            assert_eq!(config["x-kept"]["k"], true, "{text}");
        }
    }
    let (images, stderr) = run_ok(&child.root(), &["images"], &[]);
    assert_eq!(
        images.lines().count(),
        1 + 2 * made_by.len(),
        "{images}\n{stderr}"
    );
}

#[test]
fn manifests_with_annotations_and_no_layers_are_used() {
    if !available(&["skopeo"]) {
        return;
    }
    let reg = Registry::plain();
    let layout = tempfile::tempdir().expect("temp dir");
    let dir = layout.path();
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Labels":null},"rootfs":{"type":"layers","diff_ids":[]},"history":null}"#;
    let config_digest = put_blob(dir, config);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": config.len(), "annotations": {"a": "b"}, "urls": null},
        "layers": [],
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "x": null},
    });
    tag_manifest(dir, OCI_MANIFEST, manifest.to_string().as_bytes(), "empty");
    let host = reg.host();
    let dest = format!("docker://{host}/foreign/empty:1");
    skopeo(&[
        "copy",
        "-q",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:empty", dir.display()),
        &dest,
    ]);
    let t = TestContext::new(
        &format!("FROM {host}/foreign/empty:1\nCOPY a.txt /\n"),
        &[("a.txt", "a")],
    );
    t.build(&["-t", "on-empty:1"]);
    let (inspect, _) = run_ok(&t.root(), &["inspect", "on-empty:1"], &[]);
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("inspect JSON");
    assert_eq!(
        v["manifest"]["layers"].as_array().map(Vec::len),
        Some(1),
        "{inspect}"
    );
}

#[test]
fn a_config_rbuild_cannot_use_is_refused_for_that_image_only() {
    if !available(&["skopeo"]) {
        return;
    }
    let Some(t) = base("base:1") else { return };
    let reg = Registry::plain();
    let layout = tempfile::tempdir().expect("temp dir");
    let manifest = copy_out(&t.root(), "base:1", layout.path());
    let ids = diff_ids(layout.path(), &manifest);
    let bad = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Env":"PATH=/bin"}},"rootfs":{{"type":"layers","diff_ids":{ids}}}}}"#
    );
    add_image(layout.path(), &manifest, &bad, false, "bad");
    let host = reg.host();
    let src = format!("oci:{}:bad", layout.path().display());
    skopeo(&[
        "copy",
        "-q",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{host}/foreign/bad:1"),
    ]);
    // A pull refuses it, naming the field, and names nothing.
    let err = run_fails(&t.root(), &["pull", &format!("{host}/foreign/bad:1")], &[]);
    assert!(
        err.contains("field `config.Env`") && err.contains("invalid type"),
        "{err}"
    );
    let (images, _) = run_ok(&t.root(), &["images"], &[]);
    // By name: a hexadecimal ID may well contain "bad".
    assert!(!images.contains("foreign/bad"), "{images}");
    // Put into the store by another tool (the store is an OCI layout), it does not
    // break the rest: images, du, prune, and builds from other images still work.
    skopeo(&[
        "copy",
        "-q",
        "--preserve-digests",
        &src,
        &format!("oci:{}:bad:1", t.root().display()),
    ]);
    let (images, warnings) = run_ok(&t.root(), &["images"], &[]);
    assert!(
        images.contains("base:1") && images.contains("bad:1"),
        "{images}"
    );
    assert!(
        warnings.contains("image bad:1") && warnings.contains("config.Env"),
        "{warnings}"
    );
    run_ok(&t.root(), &["du"], &[]);
    run_ok(&t.root(), &["prune", "--force"], &[]);
    let child = TestContext::new("FROM base:1\nRUN echo ok > /ok\n", &[]);
    std::fs::remove_dir_all(child.dir.path().join("ctx")).ok();
    std::fs::create_dir_all(child.context()).expect("ctx");
    std::fs::write(
        child.context().join("Dockerfile"),
        "FROM base:1\nRUN echo ok > /ok\n",
    )
    .expect("Dockerfile");
    run_ok(
        &t.root(),
        &[
            "build",
            "-t",
            "child:1",
            child.context().to_str().expect("utf-8"),
        ],
        &[],
    );
    std::fs::write(
        child.context().join("Dockerfile"),
        "FROM bad:1\nRUN echo ok > /ok\n",
    )
    .expect("Dockerfile");
    let err = run_fails(
        &t.root(),
        &["build", child.context().to_str().expect("utf-8")],
        &[],
    );
    assert!(
        err.contains("Dockerfile:1") && err.contains("field `config.Env`"),
        "{err}"
    );
}

/// Runs a command; panics with its stderr on failure.
fn sh(script: &str) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An OCI layout in `dir` tagged `gnu` whose one layer GNU tar wrote (`./` prefixes,
/// GNU headers, its own order and padding): busybox, a file, a private directory.
fn gnu_tar_layout(dir: &Path) {
    let rootfs = dir.join("rootfs");
    sh(&format!(
        "set -e; r={r}; mkdir -p $r/bin $r/etc $r/secret $r/tmp; cp /bin/busybox $r/bin/; ln -s busybox $r/bin/sh; \
         echo made-by-gnu-tar > $r/etc/motd; chmod 700 $r/secret; echo s > $r/secret/s; chmod 1777 $r/tmp; \
         tar --format=gnu -C $r -cf {d}/layer.tar . && gzip -n {d}/layer.tar",
        r = rootfs.display(),
        d = dir.display()
    ));
    let layout = dir.join("layout");
    let gz = std::fs::read(dir.join("layer.tar.gz")).expect("layer");
    let tar = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .expect("gunzip");
        out
    };
    let layer = put_blob(&layout, &gz);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Env": null},
        "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]},
    })
    .to_string();
    let config_digest = put_blob(&layout, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": gz.len()}],
    })
    .to_string();
    tag_manifest(&layout, OCI_MANIFEST, manifest.as_bytes(), "gnu");
}

#[test]
fn snapshots_of_layers_other_tools_wrote_pass_store_check() {
    if !available(&["skopeo", "tar", "gzip"]) || !crate::support::can_mount() {
        return;
    }
    let reg = Registry::plain();
    let work = tempfile::tempdir().expect("temp dir");
    gnu_tar_layout(work.path());
    let host = reg.host();
    let src = format!("oci:{}:gnu", work.path().join("layout").display());
    let image = format!("{host}/foreign/gnu:1");
    skopeo(&[
        "copy",
        "-q",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src,
        &format!("docker://{image}"),
    ]);
    let t = TestContext::new(&format!("FROM {image}\nRUN cat /etc/motd > /seen\n"), &[]);
    t.build(&["-t", "on-gnu:1"]);
    // Healthy: the snapshot of the GNU tar layer is not called damaged, and --repair
    // removes nothing.
    let (ok, report) = crate::integrity::store_check(&t.root(), &[]);
    assert!(ok && !report.contains("damage"), "{report}");
    let snapshots = |root: &Path| {
        std::fs::read_dir(root.join("snapshots"))
            .map(Iterator::count)
            .ok()
    };
    let before = snapshots(&t.root());
    let (ok, report) = crate::integrity::store_check(&t.root(), &["--repair"]);
    assert!(ok && !report.contains("removed"), "{report}");
    assert_eq!(snapshots(&t.root()), before);
    // Damage is still found: a file of that snapshot changed on disk.
    let snap = std::fs::read_dir(t.root().join("snapshots"))
        .expect("snapshots")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("etc/motd").is_file())
        .expect("the GNU layer's snapshot");
    crate::integrity::flip_byte(&snap.join("etc/motd"));
    let (ok, report) = crate::integrity::store_check(&t.root(), &[]);
    assert!(!ok && report.contains("damage"), "{report}");
}

/// A gzip layer with one file.
fn gzip_layer(name: &str, content: &str) -> (Vec<u8>, Vec<u8>) {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).expect("path");
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, content.as_bytes()).expect("tar");
    let tar = builder.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    (tar, gz.finish().expect("gzip"))
}

#[test]
fn a_foreign_layer_is_fetched_from_its_urls() {
    if !available(&[]) {
        return;
    }
    let reg = Registry::plain();
    let host = reg.host();
    let (tar, gz) = gzip_layer("foreign.txt", "from a URL\n");
    let layer_digest = digest(&gz);
    let port = serve_bytes(gz.clone());
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(&tar)]}})
    .to_string();
    let config_digest = put_blob(dir, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                    "digest": layer_digest, "size": gz.len(),
                    "urls": [format!("http://127.0.0.1:{port}/layer.tar.gz")]}],
    })
    .to_string();
    // The layer is not pushed: it is fetched from its URL.
    let http = http_client();
    let config_path = blob_path(dir, &config_digest);
    upload(&http, host, "foreign/nondist", &config_digest, &config_path);
    put_manifest(
        &http,
        host,
        "foreign/nondist",
        OCI_MANIFEST,
        manifest.into_bytes(),
    );
    let t = TestContext::new(
        &format!("FROM {host}/foreign/nondist:1\nCOPY a.txt /\n"),
        &[("a.txt", "a")],
    );
    let out = t.path("out");
    t.build(&["-o", &format!("type=local,dest={}", out.display())]);
    assert_eq!(
        std::fs::read_to_string(out.join("foreign.txt")).expect("foreign.txt"),
        "from a URL\n"
    );
}
