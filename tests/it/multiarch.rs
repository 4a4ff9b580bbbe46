//! The multi-platform base of the platform tests: Debian's `busybox-static` for amd64
//! and arm64, one rootfs layer each (`/bin/busybox`, applet symlinks, `/tmp`), in a
//! two-platform OCI index (arm64 listed with variant `v8`, as Docker Hub lists it).
//!
//! The `.deb`s are fetched with `apt-get download` (CI adds the arm64 architecture in
//! `scripts/test.sh`) and the layout is made once per `target/` directory, then reused;
//! [`push_busybox_multi`] pushes it to a test registry with skopeo.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::registry::{put_blob, tag_manifest, Registry};

/// The tag of the index in the layout.
const TAG: &str = "latest";
/// The platforms of the base: Debian architecture, OCI architecture, variant.
const ARCHES: [(&str, &str, &str); 2] = [("amd64", "amd64", ""), ("arm64", "arm64", "v8")];
/// Applets linked to `/bin/busybox` in the layer (no RUN is needed to make them).
const APPLETS: &[&str] = &[
    "sh", "uname", "cat", "echo", "ls", "mkdir", "cp", "mv", "rm", "touch", "env", "true", "false",
    "test", "sed", "grep", "id", "printf", "sleep", "wc", "head", "tr", "stat",
];
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The OCI layout holding the two-platform index tagged `latest`; `None` (a skip,
/// a failure under `CI`) when the `.deb`s cannot be had.
pub fn busybox_multi_layout() -> Option<PathBuf> {
    static LAYOUT: OnceLock<Option<PathBuf>> = OnceLock::new();
    LAYOUT.get_or_init(make_layout).clone()
}

/// Pushes the base to `reg` as `REG/busybox-multi:latest` (the index and both
/// manifests); returns that reference.
pub fn push_busybox_multi(reg: &Registry) -> Option<String> {
    let layout = busybox_multi_layout()?;
    let reference = format!("{}/busybox-multi:{TAG}", reg.host());
    let out = Command::new("skopeo")
        .args(["copy", "--all", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{TAG}", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo push of the multi-arch base: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(reference)
}

fn make_layout() -> Option<PathBuf> {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-multi");
    let layout = cache.join("layout");
    if layout.join("index.json").is_file() {
        return Some(layout);
    }
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs).expect("deb cache dir");
    let staging = tempfile::tempdir_in(&cache).expect("staging dir");
    let mut entries = Vec::new();
    for (deb_arch, arch, variant) in ARCHES {
        let busybox = busybox_of(&deb(&debs, deb_arch)?);
        let manifest = image(staging.path(), &busybox, arch, variant);
        let mut platform = serde_json::json!({ "os": "linux", "architecture": arch });
        if !variant.is_empty() {
            platform["variant"] = variant.into();
        }
        entries.push(serde_json::json!({
            "mediaType": MANIFEST, "digest": manifest.0, "size": manifest.1,
            "platform": platform,
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX, "manifests": entries,
    });
    tag_manifest(staging.path(), INDEX, index.to_string().as_bytes(), TAG);
    // Another test binary may have won the race: its layout is as good as ours.
    let staged = staging.keep();
    if std::fs::rename(&staged, &layout).is_err() {
        let _ = std::fs::remove_dir_all(&staged);
    }
    Some(layout)
}

/// The `busybox-static` `.deb` of `arch` in `dir`, downloaded when missing.
fn deb(dir: &Path, arch: &str) -> Option<PathBuf> {
    let find = || {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(&format!("_{arch}.deb")))
    };
    if let Some(found) = find() {
        return Some(found);
    }
    let out = Command::new("apt-get")
        .args(["download", &format!("busybox-static:{arch}")])
        .current_dir(dir)
        .output();
    let found = find();
    if found.is_none() {
        let why = out.map_or_else(
            |e| e.to_string(),
            |o| String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "apt-get download busybox-static:{arch} failed (scripts/test.sh adds arm64): {why}"
        );
        eprintln!("skipping: no busybox-static:{arch} ({why})");
    }
    found
}

/// The `/bin/busybox` of a `busybox-static` `.deb`.
fn busybox_of(deb: &Path) -> Vec<u8> {
    let out = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .output()
        .expect("running dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb --fsys-tarfile {}",
        deb.display()
    );
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    for entry in archive.entries().expect("deb data tar") {
        let mut entry = entry.expect("deb data tar entry");
        if entry.path().expect("entry path").as_ref() == Path::new("./bin/busybox") {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read busybox");
            return bytes;
        }
    }
    panic!("no ./bin/busybox in {}", deb.display());
}

/// Writes the image of `busybox` for `arch` into layout `dir`: (manifest digest, size).
fn image(dir: &Path, busybox: &[u8], arch: &str, variant: &str) -> (String, usize) {
    let tar = rootfs(busybox);
    let diff_id = crate::registry::digest(&tar);
    let layer = put_blob(dir, &tar);
    let mut config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": { "Env": ["PATH=/bin"], "Cmd": ["sh"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        // One entry per layer: buildah (benches/multiplatform.sh) counts them.
        "history": [{ "created_by": format!("busybox-static:{arch} (tests/it/multiarch.rs)") }],
    });
    if !variant.is_empty() {
        config["variant"] = variant.into();
    }
    let config = config.to_string().into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": put_blob(dir, &config), "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer, "size": tar.len(),
        }],
    });
    let bytes = manifest.to_string().into_bytes();
    (put_blob(dir, &bytes), bytes.len())
}

/// An uncompressed layer: `bin/`, `bin/busybox`, its applet links, `tmp/` (1777).
fn rootfs(busybox: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, path: &str, mode: u32, size: usize| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(path).expect("short path");
        h.set_mode(mode);
        h.set_size(size as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for (path, mode) in [("bin/", 0o755), ("tmp/", 0o1777)] {
        let mut h = header(tar::EntryType::Directory, path, mode, 0);
        h.set_cksum();
        builder.append(&h, std::io::empty()).expect("tar dir");
    }
    let mut h = header(tar::EntryType::Regular, "bin/busybox", 0o755, busybox.len());
    h.set_cksum();
    builder.append(&h, busybox).expect("tar busybox");
    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, &format!("bin/{applet}"), 0o777, 0);
        h.set_link_name("busybox").expect("link name");
        h.set_cksum();
        builder.append(&h, std::io::empty()).expect("tar link");
    }
    builder.into_inner().expect("tar into memory")
}
