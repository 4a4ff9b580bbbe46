//! Content descriptors (OCI image spec `descriptor.md`), platforms, and the layer blobs a
//! build assembles an image from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::nullable;
use crate::digest::Digest;

/// Points at a blob: its media type, digest and size, plus optional annotations and
/// (in an index) the platform it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// The digest of the referenced content.
    pub digest: Digest,
    /// The size of the referenced content in bytes (at most `i64::MAX`, as Go reads it).
    #[serde(deserialize_with = "int64_size")]
    pub size: u64,
    /// URLs the content may be fetched from (foreign layers).
    #[serde(
        default,
        deserialize_with = "nullable::strings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
    /// Arbitrary metadata (`org.opencontainers.image.ref.name`, ...).
    #[serde(
        default,
        deserialize_with = "nullable::string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// The platform of a manifest listed in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// `artifactType`, `data` and fields rbuild does not know, kept (an `index.json`
    /// entry is written back as it was read).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with no annotations and no platform.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            extra: BTreeMap::new(),
        }
    }
}

/// A layer blob already in the store, as a build hands it to image assembly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// Digest of the (compressed) blob.
    pub digest: Digest,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Its media type, OCI or Docker flavour (mapped to the manifest's format).
    pub media_type: String,
}

/// A size as Docker and containerd read it, into Go's `int64`: a larger one is refused
/// where the document is read, naming the field, instead of reaching a download.
fn int64_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let size = u64::deserialize(d)?;
    if i64::try_from(size).is_err() {
        return Err(serde::de::Error::invalid_value(
            serde::de::Unexpected::Unsigned(size),
            &"a size of at most 9223372036854775807 bytes (Go's int64)",
        ));
    }
    Ok(size)
}

/// The platform an image runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub architecture: String,
    /// Operating system (`linux`, ...).
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub os: String,
    /// OS version (Windows).
    #[serde(
        rename = "os.version",
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    /// Required OS features (Windows).
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "nullable::strings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    /// CPU variant (`v7`, `v8`, ...).
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
}

/// This machine's architecture as OCI (Go) names it: `amd64`, `arm64`, ...
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
