//! OCI image layouts made by hand: blobs stored under their digests, manifests tagged
//! in `index.json`, images of given layers ([`oci_layout_of`], [`tiny_oci_layout`]) or
//! of a given config over another image's layers ([`add_image`]). Something to push
//! (with skopeo as `oci:DIR:TAG`, or byte for byte with [`super::push_raw`]) without a
//! build, and whose digests the test knows.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The media type of an OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of a Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A layout written by [`tiny_oci_layout`], with its digests (`sha256:...`).
#[derive(Clone, Debug)]
pub struct TinyImage {
    /// The layout directory.
    pub dir: PathBuf,
    /// Its one tag.
    pub tag: String,
    /// Manifest digest.
    pub manifest: String,
}

impl TinyImage {
    /// `oci:DIR:TAG`, the skopeo transport reference.
    pub fn skopeo_ref(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }
}

/// Writes a layout in `dir` whose single layer holds `/hello.txt` with `payload`.
pub fn tiny_oci_layout(dir: &Path, tag: &str, payload: &[u8]) -> TinyImage {
    TinyImage {
        dir: dir.to_owned(),
        tag: tag.to_owned(),
        manifest: oci_layout_of(dir, tag, &[layer_tar(payload)]),
    }
}

/// Writes a layout in `dir` holding one amd64 image tagged `tag` whose layers are the
/// tar streams `tars` (gzipped here), bottom first; returns the manifest digest.
pub fn oci_layout_of(dir: &Path, tag: &str, tars: &[Vec<u8>]) -> String {
    let mut layers = Vec::new();
    for tar in tars {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).expect("gzip into memory");
        let layer_gz = gz.finish().expect("gzip into memory");
        layers.push((put_blob(dir, &layer_gz), layer_gz.len() as u64));
    }
    let diff_ids: Vec<String> = tars.iter().map(|t| digest(t)).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config_bytes = config.to_string().into_bytes();
    let config = put_blob(dir, &config_bytes);
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, size)| {
            descriptor(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                d,
                *size as usize,
            )
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config, config_bytes.len()),
        "layers": layer_descriptors,
    });
    tag_manifest(dir, OCI_MANIFEST, manifest.to_string().as_bytes(), tag)
}

/// A tar stream with one regular file, `hello.txt`, root-owned, mode 0644, mtime 0.
fn layer_tar(payload: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_path("hello.txt").expect("short ASCII path");
    header.set_size(payload.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, payload).expect("tar into memory");
    builder.into_inner().expect("tar into memory")
}

fn descriptor(media_type: &str, digest: &str, size: usize) -> serde_json::Value {
    serde_json::json!({ "mediaType": media_type, "digest": digest, "size": size })
}

/// Stores `bytes` in layout `dir` under their digest; returns `sha256:...`.
pub fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = digest(bytes);
    let path = blob_path(dir, &digest);
    std::fs::create_dir_all(path.parent().expect("blobs dir")).expect("create blobs dir");
    std::fs::write(path, bytes).expect("write a layout blob");
    digest
}

/// Where blob `digest` (`sha256:...`) lives in layout `dir`.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Stores `manifest` (of `media_type`) in layout `dir` and lists it in `index.json`
/// under `tag`, beside what is there (a new layout gets its `oci-layout` file); returns
/// its digest.
pub fn tag_manifest(dir: &Path, media_type: &str, manifest: &[u8], tag: &str) -> String {
    let digest = put_blob(dir, manifest);
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value = match std::fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("index JSON"),
        Err(_) => serde_json::json!({ "schemaVersion": 2, "manifests": [] }),
    };
    let mut entry = descriptor(media_type, &digest, manifest.len());
    entry["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": tag });
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(entry);
    std::fs::write(&index_path, index.to_string()).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    digest
}

/// Adds to layout `dir` an image with `config_text` over the layers of `manifest`
/// (Docker media types when `docker`), tagged `tag`.
pub fn add_image(
    dir: &Path,
    manifest: &serde_json::Value,
    config_text: &str,
    docker: bool,
    tag: &str,
) {
    let (config_type, layer_type, manifest_type) = if docker {
        (
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            DOCKER_MANIFEST,
        )
    } else {
        (
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            OCI_MANIFEST,
        )
    };
    let config = put_blob(dir, config_text.as_bytes());
    let layers: Vec<serde_json::Value> = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| {
            descriptor(
                layer_type,
                l["digest"].as_str().expect("digest"),
                json_size(&l["size"]),
            )
        })
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(config_type, &config, config_text.len()),
        "layers": layers,
    });
    tag_manifest(dir, manifest_type, m.to_string().as_bytes(), tag);
}

fn json_size(size: &serde_json::Value) -> usize {
    size.as_u64().expect("size") as usize
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    rbuild::digest::Digest::of(bytes).to_string()
}
