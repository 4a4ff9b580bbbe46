//! A tiny OCI image layout made by hand: one gzip layer holding one file, a config and
//! a manifest, tagged in `index.json`. Something to push with skopeo (`oci:DIR:TAG`)
//! without a build, and whose digests the test knows.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A layout written by [`tiny_oci_layout`], with its digests (`sha256:...`).
#[derive(Clone, Debug)]
pub struct TinyImage {
    /// The layout directory.
    pub dir: PathBuf,
    /// Its one tag.
    pub tag: String,
    /// Manifest digest.
    pub manifest: String,
    /// Config digest.
    pub config: String,
    /// Compressed layer digest.
    pub layer: String,
    /// Compressed layer size in bytes.
    pub layer_size: u64,
}

impl TinyImage {
    /// `oci:DIR:TAG`, the skopeo transport reference.
    pub fn skopeo_ref(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }
}

/// Writes a layout in `dir` whose single layer holds `/hello.txt` with `payload`.
pub fn tiny_oci_layout(dir: &Path, tag: &str, payload: &[u8]) -> TinyImage {
    let layout = oci_layout_of(dir, tag, &[layer_tar(payload)]);
    let (layer, layer_size) = layout.layers[0].clone();
    TinyImage {
        dir: dir.to_owned(),
        tag: tag.to_owned(),
        manifest: layout.manifest,
        config: layout.config,
        layer,
        layer_size,
    }
}

/// The digests of a layout written by [`oci_layout_of`].
#[derive(Clone, Debug)]
pub struct Layout {
    /// Manifest digest.
    pub manifest: String,
    /// Config digest.
    pub config: String,
    /// Compressed digest and size of each layer, bottom first.
    pub layers: Vec<(String, u64)>,
}

/// Writes a layout in `dir` holding one amd64 image tagged `tag` whose layers are the
/// tar streams `tars` (gzipped here), bottom first.
pub fn oci_layout_of(dir: &Path, tag: &str, tars: &[Vec<u8>]) -> Layout {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("create the layout's blob dir");
    let mut layers = Vec::new();
    for tar in tars {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).expect("gzip into memory");
        let layer_gz = gz.finish().expect("gzip into memory");
        layers.push((put_blob(&blobs, &layer_gz), layer_gz.len() as u64));
    }
    let diff_ids: Vec<String> = tars.iter().map(|t| digest(t)).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config_bytes = config.to_string().into_bytes();
    let config = put_blob(&blobs, &config_bytes);
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
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config, config_bytes.len()),
        "layers": layer_descriptors,
    });
    let manifest_bytes = manifest.to_string().into_bytes();
    let manifest = put_blob(&blobs, &manifest_bytes);
    let mut entry = descriptor(
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
        manifest_bytes.len(),
    );
    entry["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": tag });
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [entry] });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    Layout {
        manifest,
        config,
        layers,
    }
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

/// Stores `bytes` under their digest; returns `sha256:...`.
fn put_blob(blobs: &Path, bytes: &[u8]) -> String {
    let digest = digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(blobs.join(hex), bytes).expect("write a layout blob");
    digest
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    rbuild::digest::Digest::of(bytes).to_string()
}
