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
use super::nullable;

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
    /// The layers, base first (none for an empty image).
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Arbitrary metadata.
    #[serde(
        default,
        deserialize_with = "nullable::string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
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
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub manifests: Vec<Descriptor>,
    /// Arbitrary metadata.
    #[serde(
        default,
        deserialize_with = "nullable::string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
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

impl Index {
    /// The manifest for `os/architecture[/variant]` (an empty `variant` accepts
    /// any; `arm64` treats a missing variant as `v8`), first match in index order.
    /// Entries without a platform (attestations) never match.
    pub fn select(&self, os: &str, architecture: &str, variant: &str) -> Option<&Descriptor> {
        let normal = |arch: &str, v: &str| -> String {
            if arch == "arm64" && v.is_empty() {
                "v8".to_owned()
            } else {
                v.to_owned()
            }
        };
        let wanted = normal(architecture, variant);
        self.manifests.iter().find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == os
                    && p.architecture == architecture
                    && (variant.is_empty() || normal(&p.architecture, &p.variant) == wanted)
            })
        })
    }

    /// The platforms listed, `os/arch[/variant]`, for messages.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .map(|p| {
                let mut s = format!("{}/{}", p.os, p.architecture);
                if !p.variant.is_empty() {
                    s.push('/');
                    s.push_str(&p.variant);
                }
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod select_tests {
    use super::*;
    use crate::digest::Digest;
    use crate::image::Platform;

    fn entry(os: &str, arch: &str, variant: &str, n: u8) -> Descriptor {
        let mut d = Descriptor::new(crate::image::media_types::OCI_MANIFEST, Digest::of(&[n]), 1);
        d.platform = Some(Platform {
            architecture: arch.into(),
            os: os.into(),
            os_version: String::new(),
            os_features: vec![],
            variant: variant.into(),
        });
        d
    }

    #[test]
    fn platforms_are_matched_like_docker() {
        let index = Index {
            manifests: vec![
                entry("unknown", "unknown", "", 0),
                entry("linux", "arm", "v7", 1),
                entry("linux", "arm64", "", 2),
                entry("linux", "amd64", "", 3),
            ],
            ..Index::default()
        };
        let digest = |d: Option<&Descriptor>| d.map(|d| d.digest);
        assert_eq!(
            digest(index.select("linux", "amd64", "")),
            Some(Digest::of(&[3]))
        );
        assert_eq!(
            digest(index.select("linux", "arm64", "v8")),
            Some(Digest::of(&[2]))
        );
        assert_eq!(digest(index.select("linux", "arm", "v6")), None);
        assert_eq!(
            digest(index.select("linux", "arm", "")),
            Some(Digest::of(&[1]))
        );
        assert_eq!(
            index.platforms(),
            [
                "unknown/unknown",
                "linux/arm/v7",
                "linux/arm64",
                "linux/amd64"
            ]
        );
    }
}
