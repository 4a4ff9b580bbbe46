//! The image configuration (OCI `application/vnd.oci.image.config.v1+json`, with the
//! Docker fields BuildKit keeps: `Healthcheck`, `OnBuild`, `Shell`, `ArgsEscaped`).
//!
//! Owned here rather than taken from `oci-spec` because that crate drops the Docker
//! fields rbuild must keep and inherit, and serializes through `HashMap`s (so the same
//! config would get different digests). Every map is a `BTreeMap`; [`canonical_json`]
//! gives the bytes whose digest names the config.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::decode::{decode_json, JsonError};
use super::nullable;
use crate::digest::Digest;

/// An empty JSON object, the value of `ExposedPorts` and `Volumes` entries. Whatever
/// such a value holds is read and dropped (Go reads it into `struct{}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Empty {}

impl<'de> Deserialize<'de> for Empty {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        nullable::ignore(d).map(|()| Empty {})
    }
}

/// `HEALTHCHECK` settings (durations in nanoseconds, as Docker stores them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(
        default,
        deserialize_with = "nullable::strings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "is_zero"
    )]
    pub interval: i64,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "is_zero"
    )]
    pub timeout: i64,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_period: i64,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "is_zero"
    )]
    pub start_interval: i64,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "is_zero"
    )]
    pub retries: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Fields rbuild does not know, kept as read so that a config re-written for a new
/// image carries them on.
pub type Extra = BTreeMap<String, serde_json::Value>;

/// The runtime part of the image configuration (`config` in the JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        default,
        deserialize_with = "nullable::strings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable::opt_strings",
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable::opt_strings",
        skip_serializing_if = "Option::is_none"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub args_escaped: bool,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        default,
        deserialize_with = "nullable::string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(
        default,
        deserialize_with = "nullable::strings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable::strings",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub shell: Vec<String>,
    /// Fields rbuild does not know (`StopTimeout`, ...), kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl RunConfig {
    /// The value of environment variable `key`, if set.
    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env.iter().find_map(|e| match e.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            None if e == key => Some(""),
            _ => None,
        })
    }

    /// Sets `key=value`: replaces the first entry with that key, else appends.
    pub fn set_env(&mut self, key: &str, value: &str) {
        add_env(&mut self.env, key, value);
    }
}

/// Sets `key=value` in an env list: replaces the FIRST entry whose key is `key` (an entry
/// `key` without `=` counts), else appends (BuildKit's `addEnv`).
pub fn add_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// Splits an env entry at the first `=`; no `=` gives an empty value.
pub fn parse_key_value(entry: &str) -> (&str, &str) {
    entry.split_once('=').unwrap_or((entry, ""))
}

/// One history entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub created_by: String,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub comment: String,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub empty_layer: bool,
    /// `author` and fields rbuild does not know, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The layer list of the image (`rootfs` in the JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type", default = "layers_kind")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub diff_ids: Vec<Digest>,
}

fn layers_kind() -> String {
    "layers".to_owned()
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: layers_kind(),
            diff_ids: Vec::new(),
        }
    }
}

/// Top-level fields of Docker's v1 image JSON that describe the container an image was
/// committed from, not the image, and BuildKit's record of how the base was built.
/// BuildKit drops them when it builds on such an image (its config type has no place
/// for them); so does rbuild.
const BUILD_CONTAINER_FIELDS: &[&str] = &[
    "moby.buildkit.buildinfo.v1",
    "container",
    "container_config",
    "docker_version",
    "id",
    "parent",
    "comment",
    "Size",
];

/// The same inside `config`: the settings of that container's `docker run`.
const BUILD_CONTAINER_RUN_FIELDS: &[&str] = &[
    "Hostname",
    "Domainname",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Image",
    "NetworkDisabled",
    "MacAddress",
];

/// A whole image configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub author: String,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub architecture: String,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub os: String,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub variant: String,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub config: RunConfig,
    #[serde(default, deserialize_with = "nullable::or_default")]
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "nullable::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
    /// `os.version`, `os.features` and fields rbuild does not know, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl ImageConfig {
    /// Parses a config blob as Docker and containerd read one (`null` wherever a value
    /// may be absent, unknown fields kept), for use as the base of a new image: the
    /// fields of Docker's v1 JSON that describe the build container are dropped, as
    /// BuildKit drops them.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, JsonError> {
        let mut config: ImageConfig = decode_json(bytes)?;
        for key in BUILD_CONTAINER_FIELDS {
            config.extra.remove(*key);
        }
        for key in BUILD_CONTAINER_RUN_FIELDS {
            config.config.extra.remove(*key);
        }
        // An unknown field that is `null` is absent, as for the known ones.
        config.extra.retain(|_, v| !v.is_null());
        config.config.extra.retain(|_, v| !v.is_null());
        for h in &mut config.history {
            h.extra.retain(|_, v| !v.is_null());
        }
        Ok(config)
    }
}

/// Canonical JSON bytes of any serializable value: object keys sorted, no insignificant
/// whitespace (through `serde_json::Value`, whose maps are `BTreeMap`s).
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    serde_json::to_vec(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_env_replaces_first() {
        let mut env = vec![
            "key1=val1".to_owned(),
            "key1=val2".to_owned(),
            "k3".to_owned(),
        ];
        add_env(&mut env, "key1", "x");
        add_env(&mut env, "k3", "v");
        add_env(&mut env, "new", "n");
        assert_eq!(env, ["key1=x", "key1=val2", "k3=v", "new=n"]);
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/configs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn configs_written_by_other_tools_are_read() {
        for name in [
            "docker-import.json",
            "docker-classic-builder.json",
            "docker-buildkit.json",
            "buildah-oci.json",
            "skopeo-v2s2.json",
            "kitchen-sink.json",
        ] {
            let config =
                ImageConfig::parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            // Written back and read again, nothing changes.
            let again = ImageConfig::parse(&canonical_json(&config).unwrap()).unwrap();
            assert_eq!(again, config, "{name}");
            for key in BUILD_CONTAINER_FIELDS {
                assert!(!config.extra.contains_key(*key), "{name}: {key}");
            }
        }
    }

    #[test]
    fn nulls_read_as_absent() {
        let c = ImageConfig::parse(&fixture("docker-import.json")).unwrap();
        assert_eq!(c.config, RunConfig::default());
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        let c = ImageConfig::parse(&fixture("docker-classic-builder.json")).unwrap();
        assert_eq!(c.config.on_build, ["RUN echo onbuild"]);
        assert_eq!(
            c.config.healthcheck.as_ref().unwrap().interval,
            5_000_000_000
        );
        assert!(c.config.volumes.is_empty() && c.config.entrypoint.is_none());
        assert!(
            ImageConfig::parse(&fixture("docker-buildkit.json"))
                .unwrap()
                .config
                .args_escaped
        );
    }

    #[test]
    fn unknown_fields_are_kept_and_build_container_fields_dropped() {
        let c = ImageConfig::parse(&fixture("kitchen-sink.json")).unwrap();
        let top: Vec<&str> = c.extra.keys().map(String::as_str).collect();
        assert_eq!(top, ["x-kept"]);
        let run: Vec<&str> = c.config.extra.keys().map(String::as_str).collect();
        assert_eq!(run, ["StopTimeout", "X-Custom"]);
        assert_eq!(c.config.env, ["A=1"]);
        assert_eq!(c.config.entrypoint.as_deref().unwrap(), ["/bin/app", ""]);
        assert_eq!(c.config.labels["b"], "");
        assert_eq!(c.config.exposed_ports.len(), 2);
        assert_eq!(c.config.healthcheck.as_ref().unwrap().retries, 3);
        assert_eq!(c.history[0].extra["author"], "me");
        assert!(c.history[1].empty_layer);
        let text = String::from_utf8(canonical_json(&c).unwrap()).unwrap();
        assert!(text.contains(r#""X-Custom":{"nested":[1,2]}"#), "{text}");
        assert!(
            !text.contains("container") && !text.contains("Hostname"),
            "{text}"
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let err = ImageConfig::parse(br#"{"config":{"Labels":["a"]}}"#).unwrap_err();
        assert_eq!(err.field, "config.Labels");
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let mut cfg = ImageConfig {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        cfg.config.labels.insert("b".into(), "2".into());
        cfg.config.labels.insert("a".into(), "1".into());
        let text = String::from_utf8(canonical_json(&cfg).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"architecture":"amd64","config":{"Labels":{"a":"1","b":"2"}},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
    }
}
