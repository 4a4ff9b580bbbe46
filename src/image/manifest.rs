//! Image manifests and indexes, OCI and Docker flavours in one type each (the Docker
//! schema 2 manifest and manifest list have the same shape as their OCI counterparts;
//! only the media types differ).
//!
//! Always serialize through [`canonical_json`](super::canonical_json): the digest of a
//! manifest is the digest of those exact bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::descriptor::Descriptor;
use super::media_types::OCI_INDEX;

/// An image manifest: a config and an ordered list of layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json` or the Docker schema 2 type. Optional
    /// in OCI (then absent), required by Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The artifact type (OCI 1.1 artifacts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image configuration.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The listed manifests (and, for an image layout's `index.json`, their names).
    pub manifests: Vec<Descriptor>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Default for Index {
    /// An empty OCI index.
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::image::canonical_json;

    #[test]
    fn manifest_json_is_canonical_and_round_trips() {
        let d = Digest::of(b"x");
        let mut layer = Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", d, 3);
        layer.annotations.insert("b".into(), "2".into());
        layer.annotations.insert("a".into(), "1".into());
        let m = Manifest {
            schema_version: 2,
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            artifact_type: None,
            config: Descriptor::new("application/vnd.oci.image.config.v1+json", d, 1),
            layers: vec![layer],
            subject: None,
            annotations: BTreeMap::new(),
        };
        let text = String::from_utf8(canonical_json(&m).unwrap()).unwrap();
        let dh = d.to_string();
        assert_eq!(
            text,
            format!(
                r#"{{"config":{{"digest":"{dh}","mediaType":"application/vnd.oci.image.config.v1+json","size":1}},"layers":[{{"annotations":{{"a":"1","b":"2"}},"digest":"{dh}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":3}}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
            )
        );
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }
}
