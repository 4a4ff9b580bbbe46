//! `rbuild load`: images from an unpacked archive directory into the store, as
//! `docker load` and `podman load` take them.
//!
//! - An OCI layout (`oci-layout`, `index.json`, `blobs/`): every blob is copied in with
//!   its digest checked; each `index.json` entry is named by its
//!   `io.containerd.image.name` or `org.opencontainers.image.ref.name` annotation when
//!   that is a full name (a bare tag names nothing).
//! - A docker archive (`manifest.json`: `Config`, `RepoTags`, `Layers`): the config
//!   and each layer file are stored; a layer's diff ID (its uncompressed digest) must
//!   be the config's, and a Docker schema 2 manifest is written for them.
//!
//! An archive may hold several images, each under several names (`rbuild save a b`,
//! `docker save`): all are loaded, every name given. The caller holds the store's
//! shared gc lock until the images are named.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde_json::Value;

use super::error::{Error, Result};
use crate::digest::{Digest, Hasher};
use crate::image::{media_types, Descriptor};
use crate::store::{ImageName, Store};

/// An image loaded: its manifest (or index) and the names it was given.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub descriptor: Descriptor,
    pub names: Vec<ImageName>,
}

/// Loads the images of the archive unpacked at `dir`. A docker archive that is also
/// an OCI layout (`oci-layout`, as `docker save` 25+ and rbuild write them) is read as
/// the layout, so its manifests come back byte for byte (digests, annotations).
pub fn import_dir(store: &Store, dir: &Path) -> Result<Vec<Loaded>> {
    let layout = dir.join("index.json").is_file();
    if layout && dir.join("oci-layout").is_file() {
        return import_oci(store, dir);
    }
    if dir.join("manifest.json").is_file() {
        return import_docker(store, dir);
    }
    if layout {
        return import_oci(store, dir);
    }
    Err(invalid(
        dir,
        "neither a docker archive (manifest.json) nor an OCI layout (index.json)",
    ))
}

pub(super) fn invalid(dir: &Path, reason: &str) -> Error {
    Error::Invalid {
        what: format!("archive {}", dir.display()),
        reason: reason.to_owned(),
    }
}

fn read_json(dir: &Path, rel: &str) -> Result<Value> {
    let mut bytes = Vec::new();
    open_in(dir, rel)?
        .read_to_end(&mut bytes)
        .map_err(|e| invalid(dir, &format!("cannot read {rel}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(dir, &format!("{rel} is not JSON: {e}")))
}

/// Copies the file `rel` of `dir` into the store; its digest (and `expected`, if given).
fn store_file(
    store: &Store,
    dir: &Path,
    rel: &str,
    expected: Option<Digest>,
) -> Result<(Digest, u64)> {
    let mut file = open_in(dir, rel)?;
    let mut writer = store.blob_writer()?;
    std::io::copy(&mut file, &mut writer)
        .map_err(|e| invalid(dir, &format!("cannot copy {rel}: {e}")))?;
    Ok(writer.commit(expected)?)
}

/// Opens `rel` below `dir` without following any symlink and without leaving `dir`
/// (`..`, absolute paths): an archive's `manifest.json` that is a symlink to a host
/// file must not be read.
pub(super) fn open_in(dir: &Path, rel: &str) -> Result<File> {
    let root = File::open(dir).map_err(|e| invalid(dir, &e.to_string()))?;
    crate::context::open_beneath(&root, Path::new(rel.trim_start_matches("./")))
        .map_err(|e| invalid(dir, &format!("cannot open {rel}: {e}")))
}

/// The OCI layout at `dir`.
fn import_oci(store: &Store, dir: &Path) -> Result<Vec<Loaded>> {
    let blobs = dir.join("blobs/sha256");
    let entries =
        std::fs::read_dir(&blobs).map_err(|e| invalid(dir, &format!("blobs/sha256: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| invalid(dir, &e.to_string()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let digest: Digest = format!("sha256:{name}").parse().map_err(|_| {
            invalid(
                dir,
                &format!("blobs/sha256/{name} is not named by a digest"),
            )
        })?;
        if !store.has_blob(&digest) {
            store_file(store, dir, &format!("blobs/sha256/{name}"), Some(digest))?;
        }
    }
    let index = read_json(dir, "index.json")?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for m in manifests {
        let descriptor: Descriptor = serde_json::from_value(m.clone())
            .map_err(|e| invalid(dir, &format!("index.json entry: {e}")))?;
        if !store.has_blob(&descriptor.digest) {
            return Err(invalid(
                dir,
                &format!("blob {} is missing", descriptor.digest),
            ));
        }
        let names: Vec<ImageName> = [
            "io.containerd.image.name",
            "org.opencontainers.image.ref.name",
        ]
        .iter()
        .filter_map(|k| m["annotations"][*k].as_str())
        .filter(|n| n.contains(':') || n.contains('/'))
        .filter_map(|n| ImageName::parse(familiar(n)).ok())
        .take(1)
        .collect();
        out.push(Loaded {
            descriptor: bare(descriptor),
            names,
        });
    }
    name_all(store, &out)?;
    Ok(out)
}

/// A name as docker shows it: `docker.io/library/app:1` is `app:1`, `docker.io/x/app`
/// is `x/app` (the store keeps names as written, so `saved:1` must come back as that).
fn familiar(name: &str) -> &str {
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
}

/// A descriptor without the annotations of its index entry.
fn bare(mut descriptor: Descriptor) -> Descriptor {
    descriptor.annotations = Default::default();
    descriptor
}

/// The docker archive at `dir`.
fn import_docker(store: &Store, dir: &Path) -> Result<Vec<Loaded>> {
    let entries = read_json(dir, "manifest.json")?;
    let entries = entries.as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for entry in entries {
        let config_rel = entry["Config"]
            .as_str()
            .ok_or_else(|| invalid(dir, "manifest.json entry without Config"))?;
        let (config_digest, config_size) = store_file(store, dir, config_rel, None)?;
        let config: Value = serde_json::from_slice(&store.read_blob(&config_digest)?)
            .map_err(|e| invalid(dir, &format!("{config_rel} is not JSON: {e}")))?;
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let layer_rels: Vec<&str> = entry["Layers"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if layer_rels.len() != diff_ids.len() {
            return Err(invalid(
                dir,
                &format!(
                    "{} layers for {} diff IDs in {config_rel}",
                    layer_rels.len(),
                    diff_ids.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        for (rel, diff_id) in layer_rels.iter().zip(&diff_ids) {
            layers.push(docker_layer(store, dir, rel, diff_id)?);
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::DOCKER_MANIFEST,
            "config": {"mediaType": media_types::DOCKER_CONFIG, "digest": config_digest.to_string(), "size": config_size},
            "layers": layers,
        });
        let bytes = crate::image::canonical_json(&manifest).map_err(|source| Error::Encode {
            what: "manifest",
            source,
        })?;
        let (digest, size) = store.put_bytes(&bytes)?;
        let names = entry["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|n| ImageName::parse(familiar(n)).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.push(Loaded {
            descriptor: Descriptor::new(media_types::DOCKER_MANIFEST, digest, size),
            names,
        });
    }
    name_all(store, &out)?;
    Ok(out)
}

/// One layer file of a docker archive: stored as it is (plain or gzip, as `docker
/// save` writes either), its diff ID checked against the config's.
fn docker_layer(store: &Store, dir: &Path, rel: &str, diff_id: &str) -> Result<Value> {
    let fail = |e: std::io::Error| invalid(dir, &format!("cannot copy {rel}: {e}"));
    let mut input = BufReader::new(open_in(dir, rel)?);
    let gzip = input.fill_buf().map_err(fail)?.starts_with(&[0x1f, 0x8b]);
    let mut writer = store.blob_writer()?;
    // One pass over the file: what the reader takes goes into the blob as it is read.
    let mut tee = Tee {
        inner: input,
        copy: &mut writer,
    };
    let actual = if gzip {
        let mut hasher = Hasher::new(std::io::sink());
        std::io::copy(
            &mut flate2::read::MultiGzDecoder::new(&mut tee),
            &mut hasher,
        )
        .map_err(fail)?;
        // Whatever follows the last gzip member is part of the blob too.
        std::io::copy(&mut tee, &mut std::io::sink()).map_err(fail)?;
        Some(hasher.finish().0)
    } else {
        std::io::copy(&mut tee, &mut std::io::sink()).map_err(fail)?;
        None
    };
    let (digest, size) = writer.commit(None)?;
    // A plain layer's diff ID is its digest.
    let actual = actual.unwrap_or(digest);
    if actual.to_string() != diff_id {
        return Err(invalid(
            dir,
            &format!("layer {rel} has diff ID {actual}, the config says {diff_id}"),
        ));
    }
    let media_type = if gzip {
        media_types::DOCKER_LAYER_GZIP
    } else {
        media_types::DOCKER_LAYER
    };
    Ok(serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}))
}

/// A reader that writes what it reads into `copy`.
struct Tee<'a, R, W> {
    inner: R,
    copy: &'a mut W,
}

impl<R: Read, W: Write> Read for Tee<'_, R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Gives each loaded image its names (a name another image had moves to this one).
fn name_all(store: &Store, loaded: &[Loaded]) -> Result<()> {
    for image in loaded {
        for name in &image.names {
            store.set_name(name, &image.descriptor)?;
        }
    }
    Ok(())
}
