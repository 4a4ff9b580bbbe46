//! Media types of the OCI image spec and of Docker's image manifest v2 schema 2, and
//! the mapping between their layer types.

use std::fmt;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer, gzip (deprecated by the spec, still met in the wild).
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip (the only layer type schema 2 defines for distribution).
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, uncompressed (accepted by Docker and containerd, not in the spec text).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign layer, gzip.
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// The manifest flavour an image is written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// OCI media types (the default).
    #[default]
    Oci,
    /// Docker image manifest v2 schema 2 media types.
    Docker,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Oci => "oci",
            Format::Docker => "docker",
        })
    }
}

impl Format {
    /// The manifest media type.
    pub fn manifest(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }

    /// The index (manifest list) media type.
    pub fn index(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    /// The config media type.
    pub fn config(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }

    /// The layer media type in this format for a layer of type `media_type` (either
    /// flavour). `None` for a type the format cannot express: zstd has no Docker type
    /// (BuildKit, too, requires OCI media types for zstd), and unknown types.
    pub fn layer(self, media_type: &str) -> Option<&'static str> {
        let (oci, docker) = match media_type {
            OCI_LAYER | DOCKER_LAYER => (OCI_LAYER, Some(DOCKER_LAYER)),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => (OCI_LAYER_GZIP, Some(DOCKER_LAYER_GZIP)),
            OCI_LAYER_ZSTD => (OCI_LAYER_ZSTD, None),
            OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_FOREIGN_GZIP => {
                (OCI_LAYER_NONDIST_GZIP, Some(DOCKER_LAYER_FOREIGN_GZIP))
            }
            _ => return None,
        };
        match self {
            Format::Oci => Some(oci),
            Format::Docker => docker,
        }
    }
}

/// Whether `media_type` is an image manifest (OCI or Docker).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// Whether `media_type` is an image config (OCI or Docker).
pub fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

/// Whether `media_type` is an index or manifest list (OCI or Docker).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// The media type a manifest or index declares in its `mediaType`, or what its shape
/// says it is (`schemaVersion` and `manifests`: an OCI index; `schemaVersion` and
/// `config`: an OCI manifest); `None` for anything else (not JSON, an image config,
/// whose `config` is the container's, ...).
pub fn declared(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        media_type: Option<String>,
        schema_version: Option<serde::de::IgnoredAny>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
    }
    let shape: Shape = serde_json::from_slice(bytes).ok()?;
    if shape.media_type.is_none() && shape.schema_version.is_none() {
        return None;
    }
    match shape {
        Shape {
            media_type: Some(m),
            ..
        } => Some(m),
        Shape {
            manifests: Some(_), ..
        } => Some(OCI_INDEX.to_owned()),
        Shape {
            config: Some(_), ..
        } => Some(OCI_MANIFEST.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_types_map_both_ways() {
        assert_eq!(
            Format::Docker.layer(OCI_LAYER_GZIP),
            Some(DOCKER_LAYER_GZIP)
        );
        assert_eq!(Format::Oci.layer(DOCKER_LAYER_GZIP), Some(OCI_LAYER_GZIP));
        assert_eq!(Format::Oci.layer(OCI_LAYER_ZSTD), Some(OCI_LAYER_ZSTD));
        assert_eq!(Format::Docker.layer(OCI_LAYER_ZSTD), None);
        assert_eq!(Format::Docker.layer(OCI_LAYER), Some(DOCKER_LAYER));
        assert_eq!(Format::Oci.layer("text/plain"), None);
    }

    #[test]
    fn shapes_tell_manifests_and_indexes_from_configs() {
        let manifest = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(declared(manifest).as_deref(), Some(OCI_MANIFEST));
        let typed = br#"{"mediaType":"application/x","config":{}}"#;
        assert_eq!(declared(typed).as_deref(), Some("application/x"));
        // An image config has a `config` too (the container's), and no schemaVersion.
        let config = br#"{"architecture":"amd64","os":"linux","config":{"Env":[]}}"#;
        assert_eq!(declared(config), None);
    }
}
